"""The bridge's pure and near-pure parts without sockets: targets and keys, the
playback ledger, the fallback breaker, the bridge's uplink batching, queueing
while connecting, truncation, and the tools seam (with a function-backed
connection, like httpx's MockTransport)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from pydantic import SecretStr

from runtime.pipeline.errors import ConfigRefused, ProviderError, ProviderUnavailable
from runtime.pipeline.interfaces import ToolResult, ToolSpec
from runtime.protocol.realtime import (
    AudioDelta,
    FunctionCall,
    ResponseCreated,
    ResponseDone,
    ServerEvent,
)
from runtime.protocol.realtime_session import MessageItem, SessionConfig
from runtime.providers.settings import ProviderSettings
from runtime.realtime.bridge import RealtimeBridge, memory_items
from runtime.realtime.config import RealtimeConfig, is_speech_to_speech
from runtime.realtime.playback import PlaybackLedger
from runtime.realtime.services import FallbackBreaker, apology
from runtime.realtime.target import resolve_target, safety_identifier

KEY = "sk-operator-0123456789abcdef"


def settings(**env: Any) -> ProviderSettings:
    values = {"OPENAI_API_KEY": KEY, **env}
    return ProviderSettings(_env_file=None, **values)  # type: ignore[call-arg]


# --- targets ------------------------------------------------------------------------


def test_openai_target_uses_the_operator_key_on_its_own_origin() -> None:
    config = RealtimeConfig.from_agent({"architecture": "speech_to_speech", "name": "A"})
    target = resolve_target(config, settings(), {}, "user-1")
    assert target.ws_url == "wss://api.openai.com/v1/realtime?model=gpt-realtime-2"
    assert target.client_secrets_url == "https://api.openai.com/v1/realtime/client_secrets"
    headers = target.headers()
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["OpenAI-Safety-Identifier"] == safety_identifier("user-1")
    assert "user-1" not in json.dumps(headers)
    assert KEY not in repr(target)


def test_azure_target_takes_its_resource_url_and_api_key_header() -> None:
    names = "OPENAI_API_KEY,AZURE_RT=https://res.openai.azure.com"
    env = settings(OPENDOT_PROVIDER_KEY_NAMES=names)
    env._extra_keys["AZURE_RT"] = SecretStr("azure-secret-value")
    block = {
        "provider": "azure",
        "baseUrl": "https://res.openai.azure.com/openai/v1",
        "apiKeyName": "AZURE_RT",
        "model": "my-realtime",
    }
    config = RealtimeConfig.from_agent({"realtime": block})
    target = resolve_target(config, env, {}, None)
    assert target.ws_url == "wss://res.openai.azure.com/openai/v1/realtime?model=my-realtime"
    assert target.headers() == {"api-key": "azure-secret-value"}
    with pytest.raises(ConfigRefused, match="needs baseUrl"):
        resolve_target(RealtimeConfig(provider="azure"), env, {}, None)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"baseUrl": "https://attacker.example/v1"}, "only sent to https://api.openai.com"),
        ({"baseUrl": "ftp://x.example"}, "must start with http"),
        ({"baseUrl": "http://169.254.169.254/v1", "apiKeyName": ""}, "cloud metadata"),
        ({"baseUrl": "http://10.0.0.5/v1", "apiKeyName": ""}, "private-network"),
        ({"apiKeyName": "OPENDOT_SECRETS_KEY"}, "platform secret"),
        ({"apiKeyName": "SOMEBODY_ELSES_KEY"}, "neither a key the operator offers"),
        ({"apiKeyName": ""}, "apiKeyName is empty"),
    ],
)
def test_refusals_say_why(block: dict[str, str], message: str) -> None:
    config = RealtimeConfig.from_agent({"realtime": block})
    with pytest.raises(ConfigRefused, match=message):
        resolve_target(config, settings(), {}, "u")


def test_a_keyless_compatible_server_is_allowed_where_the_operator_allows_it() -> None:
    keyless = RealtimeConfig.from_agent(
        {"realtime": {"baseUrl": "http://10.0.0.5:8000/v1", "apiKeyName": ""}}
    )
    target = resolve_target(keyless, settings(OPENDOT_ALLOW_PRIVATE_BASE_URLS=True), {}, None)
    assert target.ws_url == "ws://10.0.0.5:8000/v1/realtime?model=gpt-realtime-2"
    assert target.headers() == {}


def test_session_config_from_the_agent() -> None:
    agent = {
        "architecture": "speech_to_speech",
        "name": "Dot",
        "realtime": {"model": "gpt-realtime-mini", "reasoningEffort": "high"},
        "pipeline": [{"id": "stt", "settings": {"language": "de"}}],
    }
    config = RealtimeConfig.from_agent(agent)
    assert is_speech_to_speech(agent) and not is_speech_to_speech({"architecture": "sandwich"})
    session = config.session()
    assert session.reasoning_effort is None  # only gpt-realtime-2 takes it
    assert session.transcription_language == "de" and session.model is None
    assert config.session(manual=True).turn_detection is None
    assert config.session(with_model=True).model == "gpt-realtime-mini"
    assert apology(config.language)[1] == "de"
    assert apology("xx-YY") == apology("en-US")


# --- playback and breaker --------------------------------------------------------------


def test_ledger_counts_what_was_sent_minus_what_the_device_still_holds() -> None:
    ledger = PlaybackLedger(60)
    ledger.queued("a", 10)
    for _ in range(7):
        ledger.sent()
    assert ledger.playing() == "a"
    assert ledger.played_ms("a", unplayed_ms=240) == 7 * 60 - 240
    ledger.queued("b", 2)
    for _ in range(5):
        ledger.sent()  # the rest of a, then both of b
    assert ledger.playing() == "b"
    # 180 ms not yet played: b's 120 ms and 60 ms of a.
    assert ledger.played_ms("a", unplayed_ms=180) == 600 - 60
    assert ledger.played_ms("b", unplayed_ms=180) == 0
    assert ledger.played_ms("zzz", unplayed_ms=0) == 0
    ledger.queued("b", 0)
    ledger.flushed()
    ledger.reset()
    assert ledger.playing() is None


def test_breaker_cools_down_longer_after_each_failure() -> None:
    now = [0.0]
    breaker = FallbackBreaker(base_s=30, max_s=100, max_keys=2, clock=lambda: now[0])
    assert breaker.allows("dot")
    assert breaker.failed("dot") == 30 and not breaker.allows("dot")
    now[0] = 31
    assert breaker.allows("dot")
    assert breaker.failed("dot") == 60
    assert breaker.failed("dot") == 100  # capped
    breaker.succeeded("dot")
    assert breaker.allows("dot")
    for key in ("a", "b", "c"):
        breaker.failed(key)
    assert breaker.allows("a")  # the oldest was forgotten (bounded)


# --- the bridge, on a function-backed connection ---------------------------------------


class FakeConnection:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.incoming: asyncio.Queue[str | ProviderError] = asyncio.Queue()
        self.messages_sent = self.bytes_sent = 0

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def recv(self) -> str:
        item = await self.incoming.get()
        if isinstance(item, ProviderError):
            raise item
        return item

    async def close(self) -> None:
        pass

    def push(self, event: ServerEvent) -> None:
        self.incoming.put_nowait(event.to_json())


class Recorder:
    def __init__(self) -> None:
        self.events: list[ServerEvent] = []
        self.failures: list[ProviderError] = []

    def on_event(self, event: ServerEvent) -> None:
        self.events.append(event)

    def on_failure(self, error: ProviderError) -> None:
        self.failures.append(error)


class Tools:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def specs(self) -> list[ToolSpec]:
        return [ToolSpec("get_time", "The time", {"type": "object", "properties": {}})]

    async def call(self, name: str, arguments: str, call_id: str = "") -> ToolResult:
        self.calls.append((name, arguments, call_id))
        return ToolResult(call_id, name, '{"time": "12:00"}')


async def settle(predicate: Any) -> None:
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


async def test_bridge_queues_while_connecting_then_sends_in_order() -> None:
    conn = FakeConnection()
    gate = asyncio.Event()

    async def connector() -> Any:
        await gate.wait()
        return conn

    recorder = Recorder()
    commits: list[float] = []
    bridge = RealtimeBridge(
        connector, SessionConfig(), recorder, append_ms=120, on_commit_sent=commits.append
    )
    bridge.open(memory_items([("hi", "hello"), ("", "only me")]))
    frame = b"\x10\x00" * 960  # 60 ms at 16 kHz
    for _ in range(5):
        bridge.feed(frame)
    bridge.commit()
    assert bridge.state == "connecting"
    gate.set()
    await settle(lambda: len(conn.sent) >= 8)
    kinds = [e["type"] for e in conn.sent]
    assert kinds[:4] == ["session.update"] + ["conversation.item.create"] * 3
    appends = [e for e in conn.sent if e["type"] == "input_audio_buffer.append"]
    ms = [len(base64.b64decode(e["audio"])) / 48 for e in appends]
    assert len(appends) < 5 and all(m >= 120 for m in ms[:-1])  # batches, not frames
    assert 280 <= sum(ms) <= 300  # all of it, at 24 kHz (less the resampler's few ms)
    assert kinds[-2:] == ["input_audio_buffer.commit", "response.create"]
    assert len(commits) == 1 and commits[0] > 0  # listen stop -> commit, while connecting
    replayed = [e["item"] for e in conn.sent if e["type"] == "conversation.item.create"]
    assert replayed[-1] == MessageItem("assistant", "only me").to_dict()
    await bridge.close()
    bridge.feed(frame)  # after close: ignored
    assert bridge.state == "closed"


async def test_bridge_keeps_only_recent_audio_while_the_provider_is_slow() -> None:
    gate = asyncio.Event()
    conn = FakeConnection()

    async def connector() -> Any:
        await gate.wait()
        return conn

    bridge = RealtimeBridge(connector, SessionConfig(), Recorder(), append_ms=120)
    bridge.open()
    frame = b"\x10\x00" * 960
    for _ in range(8 * 1000 // 60):  # 8 s of audio while connecting
        bridge.feed(frame)
    bridge.commit(respond=False)
    gate.set()
    await settle(lambda: conn.sent and conn.sent[-1]["type"] == "input_audio_buffer.commit")
    appends = [e for e in conn.sent if e["type"] == "input_audio_buffer.append"]
    kept_ms = sum(len(base64.b64decode(e["audio"])) / 48 for e in appends)
    assert 4800 <= kept_ms <= 5000  # the last 5 s, whole batches
    await bridge.close()


async def test_bridge_truncates_within_the_audio_received_and_cancels_only_live_responses() -> None:
    conn = FakeConnection()

    async def connector() -> Any:
        return conn

    recorder = Recorder()
    bridge = RealtimeBridge(connector, SessionConfig(), recorder)
    bridge.open()
    conn.push(ResponseCreated("r1"))
    conn.push(AudioDelta("r1", "item", b"\0\0" * 24_000))  # one second
    await settle(lambda: len(recorder.events) == 2)
    assert bridge.audio_ms("item") == 1000
    assert bridge.truncate("item", 5000) is None  # all of it was heard
    assert bridge.truncate("", 10) is None
    assert bridge.truncate("item", 400) == 400
    bridge.cancel()
    bridge.cancel()  # no response in progress any more: nothing sent
    conn.push(ResponseDone("r1", "cancelled"))
    await settle(lambda: len(recorder.events) == 3)
    await settle(lambda: any(e["type"] == "response.cancel" for e in conn.sent))
    kinds = [e["type"] for e in conn.sent]
    assert kinds.count("response.cancel") == 1 and kinds.count("conversation.item.truncate") == 1
    conn.incoming.put_nowait(ProviderUnavailable("realtime", "gone"))
    await settle(lambda: bridge.state == "failed")
    assert [str(f) for f in recorder.failures] == ["realtime: gone"]
    bridge.feed(b"\0\0")  # a failed bridge sends nothing
    await bridge.close()


async def test_bridge_offers_tools_and_answers_calls() -> None:
    conn = FakeConnection()

    async def connector() -> Any:
        return conn

    tools = Tools()
    bridge = RealtimeBridge(connector, SessionConfig(), Recorder(), tools=tools)
    bridge.open()
    await settle(lambda: conn.sent)
    offered = conn.sent[0]["session"]["tools"]
    assert offered == [
        {
            "type": "function",
            "name": "get_time",
            "description": "The time",
            "parameters": {"type": "object", "properties": {}},
        }
    ]
    conn.push(FunctionCall("r1", "fc1", "call_1", "get_time", "{}"))
    await settle(lambda: len(conn.sent) >= 3)
    assert tools.calls == [("get_time", "{}", "call_1")]
    output, follow_up = conn.sent[1:3]
    assert output["item"] == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": '{"time": "12:00"}',
    }
    assert follow_up == {"type": "response.create"}
    assert bridge.tool_calls_pending == 0
    await bridge.close()


async def test_a_refused_connect_is_reported_once() -> None:
    async def connector() -> Any:
        raise ProviderUnavailable("realtime", "HTTP 503")

    recorder = Recorder()
    bridge = RealtimeBridge(connector, SessionConfig(), recorder)
    bridge.open()
    bridge.open()  # a second open is a no-op
    await settle(lambda: recorder.failures)
    assert bridge.state == "failed" and not bridge.usable
    await bridge.close()
    assert len(recorder.failures) == 1
