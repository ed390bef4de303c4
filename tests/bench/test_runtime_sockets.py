"""`opendot bench runtime`'s real-socket part: its provider fakes speak what the runtime's
own provider adapters read, and the bench runs end to end in its smallest form."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from pydantic import SecretStr

from opendot.bench import runtime_sockets
from opendot.bench.provider_fakes import REPLY_TEXT, TRANSCRIPT, TTS_SECONDS, ProviderFakes
from opendot.bench.summary import SUMMARISERS
from runtime.pipeline.interfaces import LlmRequest, Message, SttOptions, TtsOptions
from runtime.providers.deepgram import DeepgramSTT, DeepgramTTS
from runtime.providers.endpoint import Endpoint
from runtime.providers.http import aclose_shared_clients
from runtime.providers.keys import ProviderKey
from runtime.providers.openai_llm import OpenAICompatibleLLM


def endpoint(base: str) -> Endpoint:
    key = ProviderKey("DEEPGRAM_API_KEY", "operator", (base,), SecretStr("dg_test_key_1234567"))
    # The fakes are on loopback; allowed for this test only.
    return Endpoint(provider="deepgram", base_url=base, key=key, allow_private=True, max_retries=0)


async def audio(seconds: float) -> AsyncIterator[bytes]:
    for _ in range(int(seconds / 0.06)):
        yield bytes(1920)  # 60 ms of 16 kHz PCM16
        await asyncio.sleep(0)


async def test_the_fakes_speak_what_the_provider_adapters_read() -> None:
    fakes = ProviderFakes(agent=None)
    port = await fakes.start()
    base = f"http://127.0.0.1:{port}"
    try:
        transcripts = [
            t async for t in DeepgramSTT(endpoint(base)).stream(audio(1.2), SttOptions())
        ]
        # One interim after a second of audio, then the final the Finalize asked for.
        assert [(t.text, t.is_final) for t in transcripts] == [
            (TRANSCRIPT, False),
            (TRANSCRIPT, True),
        ]
        assert fakes.stats.stt_sockets == 1 and fakes.stats.stt_open == 0
        assert abs(fakes.stats.stt_audio_seconds - 1.2) < 0.07

        llm = OpenAICompatibleLLM(
            settings={}, model="gpt-4.1-mini", base_url=f"{base}/v1", key=None, allow_private=True
        )
        request = LlmRequest(instructions="", messages=[Message("user", TRANSCRIPT)])
        assert "".join([str(piece) async for piece in llm.stream(request)]) == REPLY_TEXT

        tts = DeepgramTTS(endpoint(base))
        chunks = [c async for c in tts.stream(REPLY_TEXT, TtsOptions(sample_rate=16_000))]
        assert sum(len(c.pcm) for c in chunks) == int(16_000 * TTS_SECONDS) * 2
        assert {c.sample_rate for c in chunks} == {16_000}
    finally:
        await aclose_shared_clients()
        await fakes.stop()


def test_the_real_socket_bench_runs_end_to_end() -> None:
    results = asyncio.run(runtime_sockets.measure(quick=True, max_devices=20))
    latency = results["latency"]
    assert latency["turns"] == 15
    assert 0 < latency["stt_p50_ms"] <= latency["first_audio_p99_ms"]
    # Manual listening: the provider hears every frame the device sent.
    expected = runtime_sockets.SPEECH_FRAMES * 0.06
    assert abs(results["stt_audio_s_per_turn"] - expected) < 0.07
    assert results["memory"]["stt_sockets_open"] == results["memory"]["devices"]
    (level,) = results["capacity"]["levels"]
    assert level["devices"] == 20 and level["dropped"] == 0
    assert level["stt_sockets_open"] >= 20
    table = runtime_sockets.format_table(results)
    assert "listen stop -> first Opus frame" in table and "original Node" in table
    rows = {r.metric: r for r in SUMMARISERS["runtime"]({"sockets": results}, True)}
    p99 = rows["real sockets: listen stop -> first Opus frame p99"]
    assert p99.value == latency["first_audio_p99_ms"] and p99.target == "<= 15 ms"
