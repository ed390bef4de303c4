"""One spoken turn through every offline part, without the runtime around it:
Opus in -> decode -> VAD -> local STT -> echo LLM -> Piper -> resample -> Opus out."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from runtime.audio.opus import OpusDecoder, OpusEncoder, PcmFramer
from runtime.audio.resample import StreamResampler
from runtime.audio.synthetic import speech_pcm
from runtime.pipeline.interfaces import (
    LlmRequest,
    Message,
    SttOptions,
    TtsOptions,
    VadEventKind,
    VadOptions,
)
from runtime.pipeline.vad import SileroVAD
from runtime.protocol.chunks import ChunkParser
from runtime.providers.echo_llm import EchoLLM
from runtime.providers.local_stt import LocalWhisperSTT, whisper_engine
from runtime.providers.local_tts import PiperTTS, is_silent, piper_voice


async def _one(item: bytes) -> AsyncIterator[bytes]:
    yield item


async def test_a_spoken_question_gets_a_spoken_echo() -> None:
    question = speech_pcm("what is the capital of france", 16_000, lead_ms=400, tail_ms=900)
    framer = PcmFramer(16_000, 60)
    with OpusEncoder(16_000, 60) as device_encoder:
        uplink = [device_encoder.encode(f) for f in framer.push(question) + framer.flush()]

    # Runtime side: decode, detect the end of speech, keep the utterance.
    vad = SileroVAD().open(VadOptions(endpointing_ms=300))
    utterance = bytearray()
    ended = False
    with OpusDecoder(16_000) as decoder:
        for packet in uplink:
            pcm = decoder.decode(packet)
            utterance += pcm
            kinds = [event.kind for event in await vad.feed(pcm)]
            if VadEventKind.SPEECH_END in kinds:
                ended = True
                break
    vad.close()
    assert ended

    transcripts = [
        t
        async for t in LocalWhisperSTT(whisper_engine()).stream(
            _one(bytes(utterance)), SttOptions()
        )
    ]
    heard = transcripts[-1].text
    assert re.findall(r"[a-z]+", heard.lower()) == ["what", "is", "the", "capital", "of", "france"]

    parser = ChunkParser()
    spoken: list[str] = []
    request = LlmRequest(instructions="", messages=[Message("user", heard)])
    async for delta in EchoLLM().stream(request):
        spoken += parser.feed(delta)
    spoken += parser.finish()
    assert spoken[0].startswith("(echo) You said: What is the capital of France")

    # Downlink: Piper at 22.05 kHz -> 24 kHz -> 60 ms Opus frames, last one padded.
    tts = PiperTTS(piper_voice())
    resampler = StreamResampler(22_050, 24_000)
    down_framer = PcmFramer(24_000, 60)
    packets: list[bytes] = []
    with OpusEncoder() as encoder:
        for text in spoken:
            async for chunk in tts.stream(text, TtsOptions()):
                assert chunk.sample_rate == 22_050
                for frame in down_framer.push(resampler.process(chunk.pcm)):
                    packets.append(encoder.encode(frame))
        for frame in down_framer.push(resampler.flush()) + down_framer.flush():
            packets.append(encoder.encode(frame))

    # The device decodes every packet into exactly 60 ms of audible speech.
    with OpusDecoder(24_000) as device_decoder:
        reply = [device_decoder.decode(p) for p in packets]
    assert {len(pcm) for pcm in reply} == {2880}
    assert len(reply) > 20  # more than 1.2 s of reply
    assert not is_silent(b"".join(reply))
