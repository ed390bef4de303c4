"""OpenAI-compatible LLM over respx-mocked SSE (Responses and Chat Completions),
plus the exfiltration and SSRF attempts an agent config could make."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from runtime.pipeline.errors import (
    ConfigRefused,
    ProviderAuthError,
    ProviderBadResponse,
    ProviderUnavailable,
)
from runtime.pipeline.interfaces import LlmRequest, Message
from runtime.providers.keys import KeyResolver, ProviderKey
from runtime.providers.llm_settings import parse_llm_settings
from runtime.providers.openai_llm import OpenAICompatibleLLM, Pacer, endpoint, pacer_for
from runtime.providers.settings import ProviderSettings

BASE = "https://api.openai.com/v1"
KEY = "sk-operator-key-0123456789"

REQUEST = LlmRequest(
    instructions="Be brief.",
    messages=[
        Message("user", "Hi"),
        Message("assistant", "Hello."),
        Message("user", "What is two plus two?"),
    ],
)


async def public_resolver(host: str, port: int) -> list[str]:
    """DNS stand-in for the mocked hosts (tests have no DNS); a public address."""
    return ["162.159.140.245"]


def operator_key() -> ProviderKey:
    settings = ProviderSettings(OPENAI_API_KEY=KEY, _env_file=None)  # type: ignore[call-arg,arg-type]
    key = KeyResolver(settings, {}, "u").resolve("OPENAI_API_KEY", provider="llm")
    assert key is not None
    return key


def llm(settings: dict[str, Any] | None = None, **kw: Any) -> OpenAICompatibleLLM:
    values: dict[str, Any] = {
        "settings": settings or {},
        "model": "gpt-5-mini",
        "base_url": BASE,
        "key": operator_key(),
        "allow_private": False,
        "resolver": public_resolver,
    }
    values.update(kw)
    return OpenAICompatibleLLM(**values)


def sse(*events: object, done: bool = False) -> bytes:
    lines = [f"data: {json.dumps(e)}\n\n" for e in events]
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


class Pieces(httpx.AsyncByteStream):
    """Streams a body in awkward splits, optionally failing or stalling at the end."""

    def __init__(self, body: bytes, size: int = 7, then: str = "end") -> None:
        self.body, self.size, self.then, self.closed = body, size, then, False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self.body), self.size):
            yield self.body[i : i + self.size]
        if self.then == "fail":
            raise httpx.RemoteProtocolError("peer closed connection without sending complete body")
        if self.then == "stall":
            await asyncio.Event().wait()

    async def aclose(self) -> None:
        self.closed = True


RESPONSES_STREAM = sse(
    {"type": "response.created", "response": {"id": "r1"}},
    {"type": "response.output_text.delta", "delta": "<chunk>Four"},
    {"type": "response.output_text.delta", "delta": ".</chunk>"},
    {"type": "response.completed", "response": {"output_text": "<chunk>Four.</chunk>"}},
)
CHAT_STREAM = sse(
    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
    {"choices": [{"index": 0, "delta": {"content": "Fo"}}]},
    {"choices": [{"index": 0, "delta": {"content": "ur."}}]},
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    done=True,
)


async def collect(provider: OpenAICompatibleLLM, request: LlmRequest = REQUEST) -> list[str]:
    return [delta async for delta in provider.stream(request)]


@respx.mock
async def test_responses_stream_and_request_shape() -> None:
    route = respx.post(f"{BASE}/responses").mock(
        return_value=httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=Pieces(RESPONSES_STREAM)
        )
    )
    provider = llm(
        {
            "temperature": "0.4",
            "max_output_tokens": "256",
            "reasoning_effort": "low",
            "verbosity": "medium",
            "stop_sequences": ["</done>"],
            "seed": "7",
            "json_mode": True,
            "extra_headers": [{"key": "X-Title", "value": "OpenDot"}],
            "extra_parameters": '{"store": false, "metadata": {"agent": "a1"}}',
        }
    )
    assert await collect(provider) == ["<chunk>Four", ".</chunk>"]
    sent = route.calls.last.request
    body = json.loads(sent.content)
    assert body == {
        "model": "gpt-5-mini",
        "instructions": "Be brief.",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
            {"role": "assistant", "content": [{"type": "output_text", "text": "Hello."}]},
            {"role": "user", "content": [{"type": "input_text", "text": "What is two plus two?"}]},
        ],
        "stream": True,
        "temperature": 0.4,
        "max_output_tokens": 256,
        "reasoning": {"effort": "low"},
        "text": {"verbosity": "medium", "format": {"type": "json_object"}},
        "stop": ["</done>"],
        "seed": 7,
        "store": False,
        "metadata": {"agent": "a1"},
    }
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["x-title"] == "OpenDot"
    assert sent.headers["accept"] == "text/event-stream"


@respx.mock
async def test_chat_completions_stream_and_request_shape() -> None:
    route = respx.post(f"{BASE}/chat/completions").mock(
        return_value=httpx.Response(200, stream=Pieces(CHAT_STREAM, size=5))
    )
    provider = llm(
        {
            "api": "chat_completions",
            "max_output_tokens": 100,
            "reasoning_effort": "default",
            "json_mode": True,
        }
    )
    assert "".join(await collect(provider)) == "Four."
    body = json.loads(route.calls.last.request.content)
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["messages"][1:] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "What is two plus two?"},
    ]
    assert body["max_completion_tokens"] == 100
    assert body["response_format"] == {"type": "json_object"}
    assert "reasoning_effort" not in body
    assert body["stream"] is True


@respx.mock
async def test_responses_text_from_completed_when_nothing_streamed() -> None:
    completed = {
        "type": "response.completed",
        "response": {
            "output": [{"type": "message", "content": [{"type": "output_text", "text": "Hi."}]}]
        },
    }
    respx.post(f"{BASE}/responses").mock(return_value=httpx.Response(200, content=sse(completed)))
    assert await collect(llm()) == ["Hi."]


@respx.mock
async def test_incomplete_without_text_says_why() -> None:
    incomplete = {
        "type": "response.incomplete",
        "response": {"incomplete_details": {"reason": "max_output_tokens"}, "output": []},
    }
    respx.post(f"{BASE}/responses").mock(return_value=httpx.Response(200, content=sse(incomplete)))
    with pytest.raises(ProviderBadResponse, match=r"max_output_tokens\). Increase max output"):
        await collect(llm())


@respx.mock
async def test_response_failed_event_raises() -> None:
    failed = {"type": "response.failed", "response": {"error": {"message": "server overloaded"}}}
    respx.post(f"{BASE}/responses").mock(return_value=httpx.Response(200, content=sse(failed)))
    with pytest.raises(ProviderUnavailable, match="server overloaded"):
        await collect(llm())


@respx.mock
async def test_chat_error_object_mid_stream_raises_after_the_deltas() -> None:
    body = sse(
        {"choices": [{"delta": {"content": "Par"}}]}, {"error": {"message": "upstream died"}}
    )
    respx.post(f"{BASE}/chat/completions").mock(return_value=httpx.Response(200, content=body))
    got: list[str] = []
    with pytest.raises(ProviderUnavailable, match="upstream died"):
        async for delta in llm({"api": "chat_completions"}).stream(REQUEST):
            got.append(delta)
    assert got == ["Par"]


@respx.mock
async def test_mid_stream_connection_failure() -> None:
    body = Pieces(sse({"type": "response.output_text.delta", "delta": "Hel"}), then="fail")
    route = respx.post(f"{BASE}/responses").mock(return_value=httpx.Response(200, stream=body))
    got: list[str] = []
    with pytest.raises(ProviderUnavailable):
        async for delta in llm().stream(REQUEST):
            got.append(delta)
    assert got == ["Hel"] and route.call_count == 1 and body.closed


@respx.mock
async def test_429_then_success_within_the_agents_retries() -> None:
    route = respx.post(f"{BASE}/responses").mock(
        side_effect=[
            httpx.Response(429, headers={"retry-after": "0"}),
            httpx.Response(200, content=RESPONSES_STREAM),
        ]
    )
    assert "".join(await collect(llm({"max_retries": 1}))) == "<chunk>Four.</chunk>"
    assert route.call_count == 2


@respx.mock
async def test_max_retries_zero_means_one_attempt() -> None:
    route = respx.post(f"{BASE}/responses").mock(return_value=httpx.Response(500))
    with pytest.raises(ProviderUnavailable):
        await collect(llm({"max_retries": 0}))
    assert route.call_count == 1


@respx.mock
async def test_non_streaming_mode() -> None:
    route = respx.post(f"{BASE}/chat/completions").mock(
        return_value=httpx.Response(200, json={"choices": [{"message": {"content": "Four."}}]})
    )
    provider = llm({"api": "chat_completions", "response_features": []})
    assert await collect(provider) == ["Four."]
    assert json.loads(route.calls.last.request.content)["stream"] is False


@respx.mock
async def test_cancellation_closes_the_stream(unit: float) -> None:
    body = Pieces(sse({"type": "response.output_text.delta", "delta": "Hel"}), then="stall")
    respx.post(f"{BASE}/responses").mock(return_value=httpx.Response(200, stream=body))
    gen = llm().stream(REQUEST)
    assert isinstance(gen, AsyncGenerator)
    assert await asyncio.wait_for(anext(gen), 5 * unit) == "Hel"
    await gen.aclose()
    assert body.closed


@respx.mock
async def test_key_never_reaches_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    respx.post(f"{BASE}/responses").mock(
        return_value=httpx.Response(
            401, json={"error": {"message": f"Incorrect API key provided: {KEY}."}}
        )
    )
    with pytest.raises(ProviderAuthError) as info:
        await collect(llm())
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    assert KEY not in caplog.text
    assert KEY not in repr(llm())


# --- exfiltration and SSRF through agent config --------------------------------------------


def test_operator_key_is_not_sent_to_an_agent_chosen_base_url() -> None:
    with pytest.raises(ConfigRefused, match=r"only sent to https://api\.openai\.com"):
        llm(base_url="https://attacker.example/v1")


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:8788/api",
        "http://169.254.169.254/latest",
        "http://10.0.0.1/v1",
        "http://[::1]/v1",
        "http://localhost:8787/v1",
    ],
)
async def test_private_base_urls_are_refused_before_any_request(base_url: str) -> None:
    with respx.mock(assert_all_called=False) as router:
        catch_all = router.route().mock(return_value=httpx.Response(200))
        with pytest.raises(ConfigRefused, match="address"):
            # Literal addresses are refused when the pipeline is built, names when resolved.
            provider = llm(base_url=base_url, key=None, resolver=None)  # the real resolver
            await collect(provider)
    assert catch_all.call_count == 0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"extra_headers": {"Authorization": "Bearer x"}}, "may not set Authorization"),
        ({"extra_headers": [{"key": "Host", "value": "evil"}]}, "may not set Host"),
        ({"extra_headers": {"Proxy-Authorization": "x"}}, "may not set Proxy-Authorization"),
        ({"extra_headers": {"X-A": "a\r\nAuthorization: b"}}, "invalid characters"),
        ({"extra_parameters": '{"stream": false}'}, "may not set stream"),
        ({"extra_parameters": "[1]"}, "must be a JSON object"),
        ({"extra_parameters": "{"}, "not valid JSON"),
        ({"stop_sequences": ["a", "b", "c", "d", "e"]}, "at most 4"),
        ({"temperature": 5}, "between 0 and 2"),
        ({"api": "completions"}, "responses or chat_completions"),
    ],
)
def test_settings_refused_with_a_clear_sentence(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigRefused, match=message):
        llm(settings)


def test_defaults_follow_protocols() -> None:
    config = parse_llm_settings({}, provider="llm")
    assert (config.api, config.stream, config.timeout_s, config.max_retries) == (
        "responses",
        True,
        70.0,
        2,
    )
    assert config.requests_per_second == 50.0


def test_endpoint_suffix_not_doubled() -> None:
    assert endpoint("https://x.example/v1/", "responses") == "https://x.example/v1/responses"
    assert endpoint("https://x.example/v1/responses", "responses") == (
        "https://x.example/v1/responses"
    )
    assert endpoint("https://x.example/v1", "chat_completions") == (
        "https://x.example/v1/chat/completions"
    )


def test_pacer_is_per_agent() -> None:
    a, b = pacer_for("agent-a", 2.0), pacer_for("agent-b", 2.0)
    assert a is pacer_for("agent-a", 2.0) and a is not b
    assert a.book() == 0.0
    assert a.book() > 0.0  # the second request of agent a waits for its slot
    assert b.book() == 0.0  # agent b is not slowed by agent a


def test_pacer_spacing() -> None:
    pacer = Pacer(4.0)
    waits = [pacer.book() for _ in range(3)]
    assert waits[0] == 0.0
    assert waits[2] > waits[1] > 0.0


# --- a real OpenAI-compatible server on loopback (operator allows private addresses) -----------


async def test_loopback_server_when_operator_allows_it(unit: float) -> None:
    requests: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":")[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        requests.append(head + await reader.readexactly(length))
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        )
        for delta in ("Hello", " from", " Ollama"):
            data = sse({"choices": [{"delta": {"content": delta}}]})
            writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}/v1"
    try:
        with pytest.raises(ConfigRefused, match="loopback"):
            llm({"api": "chat_completions"}, base_url=base, key=None)
        allowed = llm(
            {"api": "chat_completions"}, base_url=base, key=None, allow_private=True, model="llama3"
        )
        text = "".join(await asyncio.wait_for(collect(allowed), 10 * unit))
        assert text == "Hello from Ollama"
        assert len(requests) == 1
        assert b"authorization" not in requests[0].lower()
        assert json.loads(requests[0].split(b"\r\n\r\n", 1)[1])["model"] == "llama3"
    finally:
        server.close()
        await server.wait_closed()
