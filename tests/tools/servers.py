"""Loopback servers for the tool tests: any ASGI app under a real uvicorn, and a
fake OpenAI-compatible model that asks for tool calls on both APIs, streamed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.conftest import TEST_TIME_UNIT


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Serve `app` on a free 127.0.0.1 port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="none")
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(int(200 * TEST_TIME_UNIT)):
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started, "loopback server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10 * TEST_TIME_UNIT)
        sock.close()


# (name, arguments text) per call the fake model makes in one step.
Calls = list[tuple[str, str]]


def _sse(events: list[dict[str, Any]]) -> bytes:
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events).encode()


def _pieces(text: str, size: int = 5) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


@dataclass
class FakeToolModel:
    """Answers like an OpenAI-compatible server: the first step of a turn asks for
    `calls(user_text, tool_names)`; once tool results are in the conversation it
    says what they were, in `<chunk>`s."""

    calls: Callable[[str, list[str]], Calls] = lambda _text, _names: []
    requests: list[tuple[str, dict[str, Any], float]] = field(default_factory=list)
    reply_prefix: str = "Done"

    def app(self) -> Starlette:
        async def responses(request: Request) -> Response:
            return await self._answer("responses", await request.json())

        async def chat(request: Request) -> Response:
            return await self._answer("chat", await request.json())

        return Starlette(
            routes=[
                Route("/v1/responses", responses, methods=["POST"]),
                Route("/v1/chat/completions", chat, methods=["POST"]),
            ]
        )

    # --- reading the request ----------------------------------------------------------

    @staticmethod
    def user_text(api: str, body: dict[str, Any]) -> str:
        items = body.get("input") if api == "responses" else body.get("messages")
        for item in reversed(items or []):
            if item.get("role") == "user":
                content = item.get("content")
                if isinstance(content, list):
                    return "".join(c.get("text", "") for c in content)
                return str(content)
        return ""

    @staticmethod
    def tool_outputs(api: str, body: dict[str, Any]) -> list[str]:
        if api == "responses":
            return [
                str(i["output"])
                for i in body.get("input") or []
                if i.get("type") == "function_call_output"
            ]
        return [str(m["content"]) for m in body.get("messages") or [] if m.get("role") == "tool"]

    @staticmethod
    def tool_names(api: str, body: dict[str, Any]) -> list[str]:
        tools = body.get("tools") or []
        if api == "responses":
            return [t["name"] for t in tools]
        return [t["function"]["name"] for t in tools]

    # --- answering ----------------------------------------------------------------------

    async def _answer(self, api: str, body: dict[str, Any]) -> Response:
        self.requests.append((api, body, time.perf_counter()))
        outputs = self.tool_outputs(api, body)
        calls: Calls = []
        if not outputs and body.get("tool_choice", "auto") != "none":
            calls = self.calls(self.user_text(api, body), self.tool_names(api, body))
        text = "" if calls else f"<chunk>{self.reply_prefix}: {' | '.join(outputs)}</chunk>"
        if not body.get("stream", True):
            return JSONResponse(self._whole(api, text, calls))
        events = (self._responses_events if api == "responses" else self._chat_events)(text, calls)
        return StreamingResponse(
            iter([_sse(events) + b"data: [DONE]\n\n"]), media_type="text/event-stream"
        )

    @staticmethod
    def _responses_events(text: str, calls: Calls) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = [{"type": "response.created", "response": {"id": "r1"}}]
        for piece in _pieces(text) if text else []:
            events.append({"type": "response.output_text.delta", "delta": piece})
        for n, (name, arguments) in enumerate(calls):
            item = {"type": "function_call", "id": f"fc_{n}", "call_id": f"call_{n}", "name": name}
            events.append({"type": "response.output_item.added", "item": {**item, "arguments": ""}})
            for piece in _pieces(arguments):
                events.append(
                    {
                        "type": "response.function_call_arguments.delta",
                        "item_id": f"fc_{n}",
                        "delta": piece,
                    }
                )
            events.append(
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": f"fc_{n}",
                    "arguments": arguments,
                }
            )
            events.append(
                {"type": "response.output_item.done", "item": {**item, "arguments": arguments}}
            )
        events.append({"type": "response.completed", "response": {"id": "r1", "output": []}})
        return events

    @staticmethod
    def _chat_events(text: str, calls: Calls) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for piece in _pieces(text) if text else []:
            events.append({"choices": [{"index": 0, "delta": {"content": piece}}]})
        for n, (name, arguments) in enumerate(calls):
            head = {
                "index": n,
                "id": f"call_{n}",
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            events.append({"choices": [{"index": 0, "delta": {"tool_calls": [head]}}]})
            for piece in _pieces(arguments):
                frag = {"index": n, "function": {"arguments": piece}}
                events.append({"choices": [{"index": 0, "delta": {"tool_calls": [frag]}}]})
        reason = "tool_calls" if calls else "stop"
        events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
        return events

    @staticmethod
    def _whole(api: str, text: str, calls: Calls) -> dict[str, Any]:
        if api == "responses":
            output: list[dict[str, Any]] = []
            if text:
                output.append(
                    {"type": "message", "content": [{"type": "output_text", "text": text}]}
                )
            output += [
                {
                    "type": "function_call",
                    "id": f"fc_{n}",
                    "call_id": f"call_{n}",
                    "name": name,
                    "arguments": args,
                }
                for n, (name, args) in enumerate(calls)
            ]
            return {"id": "r1", "output": output}
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{n}",
                    "type": "function",
                    "function": {"name": name, "arguments": args},
                }
                for n, (name, args) in enumerate(calls)
            ]
        return {
            "choices": [
                {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
            ]
        }
