"""OpenAI-compatible LLM: Responses API and Chat Completions, streamed over SSE.

Why raw httpx and not the `openai` SDK: openai 3.x moved to `httpx2`/`httpcore2`,
which our SSRF-guarded transport, shared connection pool and respx mocks do not
cover (respx would need `using="httpcore2"` and a second HTTP stack), and the SDK
costs 0.6-1.0 s of import and ~40 MiB for two POST endpoints and an SSE parser.
Owning the request also lets us enforce what the SDK would not: operator keys
only go to the operator's origin, `extra_headers` cannot replace credentials,
`extra_parameters` cannot turn off streaming.

Works with any OpenAI-compatible `base_url` (OpenAI, Ollama, vLLM, OpenRouter,
Groq...), always through `netguard`.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from runtime.pipeline.errors import (
    ConfigRefused,
    ProviderBadResponse,
    ProviderError,
    ProviderUnavailable,
)
from runtime.pipeline.interfaces import (
    LlmOutput,
    LlmRequest,
    Message,
    ToolCall,
    ToolCalls,
    ToolResult,
)
from runtime.providers.http import CallPolicy, redact, shared_client, stream_body
from runtime.providers.keys import ProviderKey
from runtime.providers.llm_settings import LlmConfig, parse_llm_settings
from runtime.providers.netguard import Resolver, precheck_url, vet_url
from runtime.providers.sse import SseError, SseParser

log = logging.getLogger(__name__)


class Pacer:
    """At most `rate` request starts per second, without a lock (one loop, no await
    between reading and booking the slot)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0

    def book(self) -> float:
        """Reserve the next slot; return how long to wait for it."""
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval
        return slot - now

    async def wait(self) -> None:
        delay = self.book()
        if delay > 0:
            await asyncio.sleep(delay)


_PACERS: collections.OrderedDict[tuple[str, float], Pacer] = collections.OrderedDict()
_PACERS_MAX = 4096


def pacer_for(scope: str, rate: float) -> Pacer:
    """One pacer per agent (or other scope) and rate, shared by its sessions."""
    key = (scope, rate)
    pacer = _PACERS.get(key)
    if pacer is None:
        pacer = _PACERS[key] = Pacer(rate)
        while len(_PACERS) > _PACERS_MAX:
            _PACERS.popitem(last=False)
    _PACERS.move_to_end(key)
    return pacer


def _chat_call_piece(piece: Mapping[str, Any], turn: _Turn) -> None:
    """One streamed fragment of a Chat Completions tool call, joined by its index."""
    key = f"chat-{piece.get('index', 0)}"
    call = turn.pending.get(key)
    if call is None:
        # Some OpenAI-compatible servers leave the id out; the loop needs one to pair results.
        call = turn.pending[key] = _PendingCall(call_id=f"call_{uuid.uuid4().hex[:16]}")
    if isinstance(piece.get("id"), str) and piece["id"]:
        call.call_id = piece["id"]
    function = piece.get("function")
    if isinstance(function, Mapping):
        if isinstance(function.get("name"), str) and not call.name:
            call.name = function["name"]
        if isinstance(function.get("arguments"), str):
            call.arguments += function["arguments"]


def endpoint(base_url: str, api: str) -> str:
    suffix = "/responses" if api == "responses" else "/chat/completions"
    base = base_url.rstrip("/")
    return base if base.endswith(suffix) else base + suffix


def _responses_items(request: LlmRequest) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for item in request.messages:
        if isinstance(item, Message):
            kind = "output_text" if item.role == "assistant" else "input_text"
            items.append({"role": item.role, "content": [{"type": kind, "text": item.content}]})
        elif isinstance(item, ToolCalls):
            if item.text:
                items.append(
                    {"role": "assistant", "content": [{"type": "output_text", "text": item.text}]}
                )
            # Without the item ids: a function_call item with its id would require the
            # reasoning item that preceded it, which a stateless replay does not keep.
            items += [
                {
                    "type": "function_call",
                    "call_id": call.call_id,
                    "name": call.name,
                    "arguments": call.arguments,
                }
                for call in item.calls
            ]
        elif isinstance(item, ToolResult):
            items.append(
                {"type": "function_call_output", "call_id": item.call_id, "output": item.output}
            )
    return items


def responses_body(config: LlmConfig, request: LlmRequest, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "instructions": request.instructions,
        "input": _responses_items(request),
        "stream": config.stream,
    }
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "name": tool.name,
                "description": tool.description,
                "parameters": dict(tool.parameters),
            }
            for tool in request.tools
        ]
        body["tool_choice"] = request.tool_choice
        body["parallel_tool_calls"] = True
    if config.temperature is not None:
        body["temperature"] = config.temperature
    if config.max_output_tokens is not None:
        body["max_output_tokens"] = config.max_output_tokens
    if config.reasoning_effort not in ("", "default", "none"):
        body["reasoning"] = {"effort": config.reasoning_effort}
    text: dict[str, Any] = {}
    if config.verbosity not in ("", "default"):
        text["verbosity"] = config.verbosity
    if config.json_mode:
        text["format"] = {"type": "json_object"}
    if text:
        body["text"] = text
    if config.stop:
        body["stop"] = list(config.stop)
    if config.seed is not None:
        body["seed"] = config.seed
    body.update(config.extra_parameters)
    return body


def _chat_messages(request: LlmRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if request.instructions:
        messages.append({"role": "system", "content": request.instructions})
    for item in request.messages:
        if isinstance(item, Message):
            messages.append({"role": item.role, "content": item.content})
        elif isinstance(item, ToolCalls):
            messages.append(
                {
                    "role": "assistant",
                    "content": item.text or None,
                    "tool_calls": [
                        {
                            "id": call.call_id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": call.arguments},
                        }
                        for call in item.calls
                    ],
                }
            )
        elif isinstance(item, ToolResult):
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": item.output})
    return messages


def chat_body(config: LlmConfig, request: LlmRequest, model: str) -> dict[str, Any]:
    messages = _chat_messages(request)
    body: dict[str, Any] = {"model": model, "messages": messages, "stream": config.stream}
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": dict(tool.parameters),
                },
            }
            for tool in request.tools
        ]
        body["tool_choice"] = request.tool_choice
    if config.temperature is not None:
        body["temperature"] = config.temperature
    if config.max_output_tokens is not None:
        body["max_completion_tokens"] = config.max_output_tokens
    if config.reasoning_effort not in ("", "default"):
        body["reasoning_effort"] = config.reasoning_effort
    if config.stop:
        body["stop"] = list(config.stop)
    if config.seed is not None:
        body["seed"] = config.seed
    if config.json_mode:
        body["response_format"] = {"type": "json_object"}
    body.update(config.extra_parameters)
    return body


def _event_error(data: Mapping[str, Any]) -> str:
    err = data.get("error")
    if isinstance(err, Mapping):
        return str(err.get("message") or err.get("code") or err)
    response = data.get("response")
    if isinstance(response, Mapping) and isinstance(response.get("error"), Mapping):
        return str(response["error"].get("message") or response["error"])
    return str(data.get("message") or err or "the provider reported an error")


def responses_output_text(response: Mapping[str, Any]) -> str:
    """Visible text of a complete Responses object (non-streamed, or `response.completed`)."""
    if isinstance(response.get("output_text"), str):
        return str(response["output_text"])
    parts: list[str] = []
    for item in response.get("output") or []:
        if not isinstance(item, Mapping):
            continue
        for content in item.get("content") or []:
            if isinstance(content, Mapping) and content.get("type") == "output_text":
                parts.append(str(content.get("text") or ""))
    return "".join(parts)


@dataclass
class _PendingCall:
    call_id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class _Turn:
    streamed: bool = False
    incomplete: str | None = None
    # Calls whose arguments are still streaming: Responses by item id, Chat by index.
    pending: dict[str, _PendingCall] = field(default_factory=dict)
    emitted: set[str] = field(default_factory=set)

    def finish_call(self, call: _PendingCall) -> list[LlmOutput]:
        if not call.name or call.call_id in self.emitted:
            return []
        self.emitted.add(call.call_id)
        self.streamed = True
        return [ToolCall(call.call_id, call.name, call.arguments)]

    def flush_calls(self) -> list[LlmOutput]:
        out: list[LlmOutput] = []
        for key in list(self.pending):
            out += self.finish_call(self.pending.pop(key))
        return out


class OpenAICompatibleLLM:
    """One agent's OpenAI-compatible model; `stream` runs one turn."""

    def __init__(
        self,
        *,
        settings: Mapping[str, Any],
        model: str,
        base_url: str,
        key: ProviderKey | None,
        allow_private: bool,
        pacer: Pacer | None = None,
        client: httpx.AsyncClient | None = None,
        first_byte_timeout_s: float = 8.0,
        connect_timeout_s: float = 5.0,
        name: str = "openai-llm",
        resolver: Resolver | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self._base_url = base_url.rstrip("/")
        self._key = key
        self._allow_private = allow_private
        self._settings = dict(settings)
        self._pacer = pacer
        self._client = client
        self._first_byte_timeout_s = first_byte_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._resolver = resolver
        self._vetted: str | None = None
        # Refuse bad configuration when the pipeline is built, not mid-turn.
        self._config = parse_llm_settings(self._settings, provider=name)
        precheck_url(self._base_url, allow_private=allow_private, provider=name)
        if key is not None:
            key.check_destination(self._base_url, name)

    def __repr__(self) -> str:
        return f"OpenAICompatibleLLM(model={self.model!r}, base_url={self._base_url!r})"

    async def stream(self, request: LlmRequest) -> AsyncIterator[LlmOutput]:
        config = self._config
        if request.settings:
            merged = {**self._settings, **request.settings}
            config = parse_llm_settings(merged, provider=self.name)
        model = request.model or self.model
        if not model:
            raise ConfigRefused(self.name, "no model is configured for the llm stage.")
        url = endpoint(self._base_url, config.api)
        if self._vetted != url:
            # The clear refusal comes here, before anything is sent; after that the
            # connection-time guard re-checks every address (DNS rebinding).
            await vet_url(
                url, allow_private=self._allow_private, provider=self.name, resolver=self._resolver
            )
            self._vetted = url
        body = (responses_body if config.api == "responses" else chat_body)(config, request, model)
        headers = {"Content-Type": "application/json"}
        headers["Accept"] = "text/event-stream" if config.stream else "application/json"
        headers.update(config.extra_headers)
        secrets: tuple[str, ...] = ()
        if self._key is not None:
            headers["Authorization"] = f"Bearer {self._key.reveal()}"
            secrets = (self._key.reveal(),)
        policy = CallPolicy(
            provider=self.name,
            timeout_s=config.timeout_s,
            first_byte_timeout_s=min(self._first_byte_timeout_s, config.timeout_s),
            connect_timeout_s=self._connect_timeout_s,
            max_retries=config.max_retries,
            secrets=secrets,
        )
        if self._pacer is not None:
            await self._pacer.wait()
        client = self._client or shared_client(allow_private=self._allow_private)
        http_request = client.build_request(
            "POST", url, content=json.dumps(body).encode(), headers=headers
        )
        pieces = stream_body(client, http_request, policy)
        try:
            if not config.stream:
                raw = b"".join([piece async for piece in pieces])
                for out in self._whole(raw, config.api):
                    yield out
                return
            turn = _Turn()
            parser = SseParser()
            parse = self._responses_event if config.api == "responses" else self._chat_event
            async for piece in pieces:
                try:
                    events = parser.feed(piece)
                except SseError as exc:
                    raise ProviderBadResponse(self.name, str(exc)) from None
                for event in events:
                    for out in parse(event.data, turn, policy):
                        yield out
            for event in parser.finish():
                for out in parse(event.data, turn, policy):
                    yield out
            for out in turn.flush_calls():
                yield out
            if not turn.streamed and not turn.emitted:
                raise self._empty(turn.incomplete)
        finally:
            await pieces.aclose()

    # --- event handling (pure) --------------------------------------------------------

    def _load(self, data: str, policy: CallPolicy) -> dict[str, Any] | None:
        if not data or data.strip() == "[DONE]":
            return None
        try:
            loaded = json.loads(data)
        except ValueError:
            raise ProviderBadResponse(
                self.name, "the stream carried an event that is not JSON"
            ) from None
        if not isinstance(loaded, dict):
            return None
        if "error" in loaded and loaded.get("error") and "type" not in loaded:
            # Chat-style providers (OpenRouter, vLLM) report mid-stream failures this way.
            raise ProviderUnavailable(self.name, redact(_event_error(loaded), policy.secrets))
        return loaded

    def _responses_event(self, data: str, turn: _Turn, policy: CallPolicy) -> list[LlmOutput]:
        event = self._load(data, policy)
        if event is None:
            return []
        kind = event.get("type")
        if kind == "response.output_text.delta":
            delta = event.get("delta")
            if isinstance(delta, str) and delta:
                turn.streamed = True
                return [delta]
            return []
        if kind in ("response.failed", "error"):
            raise ProviderUnavailable(self.name, redact(_event_error(event), policy.secrets))
        if kind in ("response.output_item.added", "response.output_item.done"):
            return self._function_item(event.get("item"), turn, done=kind.endswith("done"))
        if kind == "response.function_call_arguments.delta":
            call = turn.pending.get(str(event.get("item_id")))
            delta = event.get("delta")
            if call is not None and isinstance(delta, str):
                call.arguments += delta
            return []
        if kind == "response.function_call_arguments.done":
            call = turn.pending.get(str(event.get("item_id")))
            if call is not None and isinstance(event.get("arguments"), str):
                call.arguments = event["arguments"]
            return []
        response = event.get("response")
        if kind in ("response.completed", "response.incomplete") and isinstance(response, Mapping):
            details = response.get("incomplete_details")
            if isinstance(details, Mapping) and details.get("reason"):
                turn.incomplete = str(details["reason"])
            out: list[LlmOutput] = []
            for item in response.get("output") or []:
                out += self._function_item(item, turn, done=True)
            if not turn.streamed:
                text = responses_output_text(response)
                if text:
                    turn.streamed = True
                    out.insert(0, text)
            return out
        return []

    @staticmethod
    def _function_item(item: object, turn: _Turn, *, done: bool) -> list[LlmOutput]:
        if not isinstance(item, Mapping) or item.get("type") != "function_call":
            return []
        key = str(item.get("id") or item.get("call_id") or "")
        call = turn.pending.setdefault(key, _PendingCall())
        call.call_id = str(item.get("call_id") or call.call_id or key)
        call.name = str(item.get("name") or call.name)
        if isinstance(item.get("arguments"), str) and (done or not call.arguments):
            call.arguments = item["arguments"] or call.arguments
        if not done:
            return []
        return turn.finish_call(turn.pending.pop(key))

    def _chat_event(self, data: str, turn: _Turn, policy: CallPolicy) -> list[LlmOutput]:
        event = self._load(data, policy)
        if event is None:
            return []
        out: list[LlmOutput] = []
        for choice in event.get("choices") or []:
            if not isinstance(choice, Mapping):
                continue
            delta = choice.get("delta") or {}
            delta = delta if isinstance(delta, Mapping) else {}
            content = delta.get("content")
            if isinstance(content, str) and content:
                turn.streamed = True
                out.append(content)
            for piece in delta.get("tool_calls") or []:
                if isinstance(piece, Mapping):
                    _chat_call_piece(piece, turn)
            reason = choice.get("finish_reason")
            if reason in ("length", "content_filter"):
                turn.incomplete = str(reason)
            if reason:
                out += turn.flush_calls()
        return out

    def _whole(self, raw: bytes, api: str) -> list[LlmOutput]:
        """A non-streamed answer: its text and its tool calls."""
        try:
            data = json.loads(raw)
        except ValueError:
            raise ProviderBadResponse(self.name, "the answer is not JSON") from None
        if not isinstance(data, dict):
            raise ProviderBadResponse(self.name, "the answer is not a JSON object")
        turn = _Turn()
        calls: list[LlmOutput] = []
        if api == "responses":
            text = responses_output_text(data)
            for item in data.get("output") or []:
                calls += self._function_item(item, turn, done=True)
            details = data.get("incomplete_details")
            reason = details.get("reason") if isinstance(details, Mapping) else None
        else:
            choices = data.get("choices") or [{}]
            first = choices[0] if isinstance(choices[0], Mapping) else {}
            message = first.get("message") or {}
            message = message if isinstance(message, Mapping) else {}
            text = str(message.get("content") or "")
            for index, piece in enumerate(message.get("tool_calls") or []):
                if isinstance(piece, Mapping):
                    _chat_call_piece({**piece, "index": index}, turn)
            calls = turn.flush_calls()
            reason = first.get("finish_reason")
            reason = reason if reason in ("length", "content_filter") else None
        if not text and not calls:
            raise self._empty(reason)
        return ([text] if text else []) + calls

    def _empty(self, reason: str | None) -> ProviderError:
        if reason:
            return ProviderBadResponse(
                self.name,
                f"the model ended before visible text ({reason}). Increase max output tokens "
                "or use a non-reasoning/low-latency model.",
            )
        return ProviderBadResponse(self.name, "the model returned no visible text.")
