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
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from runtime.pipeline.errors import (
    ConfigRefused,
    ProviderBadResponse,
    ProviderError,
    ProviderUnavailable,
)
from runtime.pipeline.interfaces import LlmRequest
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


def endpoint(base_url: str, api: str) -> str:
    suffix = "/responses" if api == "responses" else "/chat/completions"
    base = base_url.rstrip("/")
    return base if base.endswith(suffix) else base + suffix


def responses_body(config: LlmConfig, request: LlmRequest, model: str) -> dict[str, Any]:
    items = []
    for message in request.messages:
        kind = "output_text" if message.role == "assistant" else "input_text"
        items.append({"role": message.role, "content": [{"type": kind, "text": message.content}]})
    body: dict[str, Any] = {
        "model": model,
        "instructions": request.instructions,
        "input": items,
        "stream": config.stream,
    }
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


def chat_body(config: LlmConfig, request: LlmRequest, model: str) -> dict[str, Any]:
    messages: list[dict[str, str]] = []
    if request.instructions:
        messages.append({"role": "system", "content": request.instructions})
    messages += [{"role": m.role, "content": m.content} for m in request.messages]
    body: dict[str, Any] = {"model": model, "messages": messages, "stream": config.stream}
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
class _Turn:
    streamed: bool = False
    incomplete: str | None = None


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

    async def stream(self, request: LlmRequest) -> AsyncIterator[str]:
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
                yield self._whole_text(raw, config.api, policy)
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
                    for text in parse(event.data, turn, policy):
                        turn.streamed = True
                        yield text
            for event in parser.finish():
                for text in parse(event.data, turn, policy):
                    turn.streamed = True
                    yield text
            if not turn.streamed:
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

    def _responses_event(self, data: str, turn: _Turn, policy: CallPolicy) -> list[str]:
        event = self._load(data, policy)
        if event is None:
            return []
        kind = event.get("type")
        if kind == "response.output_text.delta":
            delta = event.get("delta")
            return [delta] if isinstance(delta, str) and delta else []
        if kind in ("response.failed", "error"):
            raise ProviderUnavailable(self.name, redact(_event_error(event), policy.secrets))
        response = event.get("response")
        if kind in ("response.completed", "response.incomplete") and isinstance(response, Mapping):
            details = response.get("incomplete_details")
            if isinstance(details, Mapping) and details.get("reason"):
                turn.incomplete = str(details["reason"])
            if not turn.streamed:
                text = responses_output_text(response)
                return [text] if text else []
        return []

    def _chat_event(self, data: str, turn: _Turn, policy: CallPolicy) -> list[str]:
        event = self._load(data, policy)
        if event is None:
            return []
        out: list[str] = []
        for choice in event.get("choices") or []:
            if not isinstance(choice, Mapping):
                continue
            delta = choice.get("delta") or {}
            content = delta.get("content") if isinstance(delta, Mapping) else None
            if isinstance(content, str) and content:
                out.append(content)
            if choice.get("finish_reason") in ("length", "content_filter"):
                turn.incomplete = str(choice["finish_reason"])
        return out

    def _whole_text(self, raw: bytes, api: str, policy: CallPolicy) -> str:
        try:
            data = json.loads(raw)
        except ValueError:
            raise ProviderBadResponse(self.name, "the answer is not JSON") from None
        if not isinstance(data, dict):
            raise ProviderBadResponse(self.name, "the answer is not a JSON object")
        if api == "responses":
            text = responses_output_text(data)
            details = data.get("incomplete_details")
            reason = details.get("reason") if isinstance(details, Mapping) else None
        else:
            choices = data.get("choices") or [{}]
            message = choices[0].get("message") or {} if isinstance(choices[0], Mapping) else {}
            text = str(message.get("content") or "")
            reason = choices[0].get("finish_reason") if isinstance(choices[0], Mapping) else None
            reason = reason if reason in ("length", "content_filter") else None
        if not text:
            raise self._empty(reason)
        return text

    def _empty(self, reason: str | None) -> ProviderError:
        if reason:
            return ProviderBadResponse(
                self.name,
                f"the model ended before visible text ({reason}). Increase max output tokens "
                "or use a non-reasoning/low-latency model.",
            )
        return ProviderBadResponse(self.name, "the model returned no visible text.")
