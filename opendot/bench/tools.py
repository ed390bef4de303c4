"""`opendot bench tools`: what the runtime adds to a tool turn, and what the Dot's MCP
handshake costs per socket with and without the cached tool list.

Everything runs on this machine over a real loopback WebSocket: the runtime's
MCP client (`DeviceMcp`) on one end, the simulated Dot's MCP server (the
firmware's answers, zero delay) on the other, JSON on the wire as a Dot sends it.
The model is a zero-delay scripted LLM, so the figures are the runtime's own:

- overhead: from the model's `ToolCall` leaving the LLM stream, through the
  tool loop, the executor (name mapping, schema check), `tools/call` over the
  socket, the device's answer, back to the next model request being issued.
- handshake: from the server hello to the device's tools being usable by a
  turn (`ready`), and to the handshake's last answer (`done`), for a socket
  with a cold cache (initialize + every tools/list page) and a warm one
  (initialize only, not awaited).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--calls", type=int, default=400, help="tool turns to time")
    parser.add_argument("--sockets", type=int, default=200, help="handshakes to time (each kind)")


def run(args: argparse.Namespace) -> int:
    results = asyncio.run(measure(calls=args.calls, sockets=args.sockets))
    print(json.dumps(results, indent=2) if args.json else format_table(results))
    return 0


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(p99 * 1000, 3),
        "n": len(ordered),
    }


@contextlib.asynccontextmanager
async def _dot() -> AsyncIterator[tuple[Any, Any]]:
    """A loopback WebSocket whose far end answers MCP as the simulated Dot."""
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    from runtime.simulator.mcp_tools import SimulatedTools

    tools = SimulatedTools(page_size=2)

    async def device(ws: Any) -> None:
        async for message in ws:
            envelope = json.loads(message)
            reply = await tools.handle(envelope["payload"])
            if reply is not None:
                await ws.send(json.dumps({"type": "mcp", "payload": reply}))

    async with serve(device, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", compression=None) as ws:
            yield ws, tools


async def _client(ws: Any, cache: Any) -> tuple[Any, asyncio.Task[None]]:
    from runtime.tools.device import DeviceMcp

    def send(payload: dict[str, Any]) -> None:
        asyncio.get_running_loop().create_task(
            ws.send(json.dumps({"type": "mcp", "session_id": "s", "payload": payload}))
        )

    client = DeviceMcp(send, device_uuid="bench", firmware_version="1.7.2", cache=cache)

    async def pump() -> None:
        async for message in ws:
            client.on_payload(json.loads(message)["payload"])

    return client, asyncio.create_task(pump())


async def _handshakes(sockets: int) -> dict[str, Any]:
    from runtime.tools.device import DeviceToolCache

    out: dict[str, Any] = {}
    for kind in ("cold", "warm"):
        ready: list[float] = []
        done: list[float] = []
        async with _dot() as (ws, tools):
            warm = DeviceToolCache()
            for _ in range(sockets):
                cache = warm if kind == "warm" else DeviceToolCache()
                if kind == "warm" and warm.get(("bench", "1.7.2", False)) is None:
                    primer, pump = await _client(ws, warm)
                    primer.start()
                    assert primer._task is not None
                    await primer._task
                    pump.cancel()
                client, pump = await _client(ws, cache)
                tools.requests.clear()
                start = time.perf_counter()
                client.start()
                await client.ready.wait()
                ready.append(time.perf_counter() - start)
                assert client._task is not None
                await client._task
                done.append(time.perf_counter() - start)
                requests = len(tools.requests)
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump
        out[kind] = {"ready": _ms(ready), "done": _ms(done), "requests": requests}
    return out


async def _overhead(calls: int) -> dict[str, Any]:
    from runtime.pipeline.interfaces import LlmRequest, Message, ToolCall, ToolResult
    from runtime.tools.box import ToolBox
    from runtime.tools.device import DeviceToolCache
    from runtime.tools.loop import run_tool_loop

    marks: dict[str, float] = {}

    class ScriptedLlm:
        name = "scripted"

        async def stream(self, request: LlmRequest) -> AsyncIterator[Any]:
            if isinstance(request.messages[-1], ToolResult):
                marks["next_request"] = time.perf_counter()
                yield "<chunk>done</chunk>"
                return
            marks["emitted"] = time.perf_counter()
            yield ToolCall("c1", "self_audio_speaker_set_volume", '{"volume": 42}')

    samples: list[float] = []
    async with _dot() as (ws, _tools):
        client, pump = await _client(ws, DeviceToolCache())
        client.start()
        await client.ready.wait()
        box = ToolBox([client])
        request = LlmRequest("", [Message("user", "volume 42")])
        for _ in range(calls):
            async for _piece in run_tool_loop(ScriptedLlm(), request, box):
                pass
            samples.append(marks["next_request"] - marks["emitted"])
        pump.cancel()
    return _ms(samples[min(20, len(samples) // 10) :])  # the first calls warm the path


async def measure(*, calls: int = 400, sockets: int = 200) -> dict[str, Any]:
    return {
        "tool_turn_overhead": await _overhead(calls),
        "mcp_handshake": await _handshakes(sockets),
    }


def format_table(results: dict[str, Any]) -> str:
    o = results["tool_turn_overhead"]
    h = results["mcp_handshake"]
    lines = [
        "tool turn overhead (call emitted -> device result -> next model request)",
        f"  p50 {o['p50_ms']} ms   p99 {o['p99_ms']} ms   ({o['n']} calls)",
        "MCP handshake per socket (server hello -> tools usable / handshake done)",
    ]
    for kind in ("cold", "warm"):
        r = h[kind]
        lines.append(
            f"  {kind:5} ready p50 {r['ready']['p50_ms']} ms p99 {r['ready']['p99_ms']} ms; "
            f"done p50 {r['done']['p50_ms']} ms p99 {r['done']['p99_ms']} ms; "
            f"{r['requests']} requests"
        )
    return "\n".join(lines)
