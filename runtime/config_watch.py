"""Apply agent changes and memory resets to connected devices without a reconnect.

The API's trigger runs `pg_notify('opendot_device_config', <device uuid>)`
whenever a device's binding or its bound agent changes. Every runtime process
LISTENs; the one holding that device's session refetches the agent through
`/api/internal/device-runtime/config`, and the device's next turn uses it.
When the device now follows a *different* agent, its conversation is reset
(here and in the database): the old agent's words are not the new one's past.

`opendot_device_memory` (payload: device uuid) says a device's memory was reset
elsewhere; the process holding it drops what it remembers.

A NOTIFY sent while the listener is disconnected is lost, so after every
reconnect the listener refetches the configuration of every device connected
to this process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import asyncpg

from runtime.api_client import ApiError
from runtime.session.context import RuntimeContext

log = logging.getLogger("opendot.runtime.config")

CHANNEL = "opendot_device_config"
MEMORY_CHANNEL = "opendot_device_memory"
KEEPALIVE_S = 15.0
REFRESH_ALL_CONCURRENCY = 8


def _agent_id(agent: Mapping[str, Any] | None) -> str | None:
    return str(agent["id"]) if agent and agent.get("id") else None


async def refresh_device(ctx: RuntimeContext, device_uuid: str) -> bool:
    """Refetch a connected device's agent; False when it is not connected here."""
    session = ctx.registry.devices.get(device_uuid)
    if session is None:
        return False
    try:
        agent = await ctx.api.device_config(device_uuid)
    except ApiError as exc:
        log.warning("config refresh for %s failed: %s", device_uuid, exc)
        return False
    if ctx.registry.devices.get(device_uuid) is not session:
        return False  # replaced meanwhile; the new socket got the agent from verify
    previous = _agent_id(session.agent)
    session.update_agent(agent)
    log.info("device %s: configuration updated", device_uuid)
    if _agent_id(agent) != previous:
        try:
            await ctx.reset_device_memory(device_uuid)
        except ApiError as exc:
            ctx.metrics.api_errors.inc(endpoint="memory_reset")
            log.warning("memory reset for %s failed: %s", device_uuid, exc)
    return True


async def refresh_all(ctx: RuntimeContext) -> int:
    """Refetch every connected device (a NOTIFY may have been missed); how many refreshed."""
    gate = asyncio.Semaphore(REFRESH_ALL_CONCURRENCY)

    async def one(device_uuid: str) -> bool:
        async with gate:
            return await refresh_device(ctx, device_uuid)

    results = await asyncio.gather(*(one(d) for d in list(ctx.registry.devices)))
    return sum(results)


def _enqueue(queue: asyncio.Queue[tuple[str, str]]) -> Any:
    def on_notify(_conn: object, _pid: int, channel: str, payload: object) -> None:
        queue.put_nowait((channel, str(payload).strip()))

    return on_notify


def _wake_on_close(queue: asyncio.Queue[tuple[str, str]]) -> Any:
    def on_close(_conn: object) -> None:
        queue.put_nowait(("", ""))  # the loop sees the closed connection at once

    return on_close


def _dispatch(ctx: RuntimeContext, channel: str, device_uuid: str) -> None:
    if channel == MEMORY_CHANNEL:
        if ctx.forget_device_memory(device_uuid):
            log.info("device %s: memory reset elsewhere; forgotten", device_uuid)
    else:
        ctx.spawn(refresh_device(ctx, device_uuid), name="config-refresh")


async def watch_device_config(ctx: RuntimeContext, dsn: str) -> None:
    backoff = 0.5
    while True:
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(dsn, timeout=10)
            listener = _enqueue(queue)
            await conn.add_listener(CHANNEL, listener)
            await conn.add_listener(MEMORY_CHANNEL, listener)
            conn.add_termination_listener(_wake_on_close(queue))
            backoff = 0.5
            if ctx.registry.devices:
                # Signals sent while no listener was subscribed are gone: catch up.
                ctx.spawn(_catch_up(ctx), name="config-catch-up")
            while not conn.is_closed():
                try:
                    channel, device_uuid = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    await conn.execute("select 1")  # notices a silently dead connection
                    continue
                if channel:
                    _dispatch(ctx, channel, device_uuid)
            log.warning("config listener connection closed")
        except asyncio.CancelledError:
            raise
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            log.warning("config listener lost (%s); retrying in %.1f s", exc, backoff)
        finally:
            if conn is not None and not conn.is_closed():
                await conn.close(timeout=2)
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 30.0)


async def _catch_up(ctx: RuntimeContext) -> None:
    count = await refresh_all(ctx)
    log.info("config listener reconnected; refreshed %d connected devices", count)
