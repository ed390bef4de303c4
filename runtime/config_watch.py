"""Apply agent changes to connected devices without a reconnect.

The API's trigger runs `pg_notify('opendot_device_config', <device uuid>)`
whenever a device's binding or its bound agent changes. Every runtime process
LISTENs; the one holding that device's session refetches the agent through
`/api/internal/device-runtime/config`, and the device's next turn uses it.
The listener reconnects with backoff; a missed signal costs only staleness
until the device's next socket (verify returns the current agent).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg

from runtime.api_client import ApiError
from runtime.session.context import RuntimeContext

log = logging.getLogger("opendot.runtime.config")

CHANNEL = "opendot_device_config"


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
    session.update_agent(agent)
    log.info("device %s: configuration updated", device_uuid)
    return True


def _enqueue(queue: asyncio.Queue[str]) -> Any:
    def on_notify(_conn: object, _pid: int, _channel: str, payload: object) -> None:
        queue.put_nowait(str(payload))

    return on_notify


async def watch_device_config(ctx: RuntimeContext, dsn: str) -> None:
    backoff = 0.5
    while True:
        queue: asyncio.Queue[str] = asyncio.Queue()
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(dsn, timeout=10)
            await conn.add_listener(CHANNEL, _enqueue(queue))
            backoff = 0.5
            while not conn.is_closed():
                try:
                    device_uuid = await asyncio.wait_for(queue.get(), timeout=15)
                except TimeoutError:
                    await conn.execute("select 1")  # notices a dead connection
                    continue
                ctx.spawn(refresh_device(ctx, device_uuid.strip()), name="config-refresh")
        except asyncio.CancelledError:
            raise
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            log.warning("config listener lost (%s); retrying in %.1f s", exc, backoff)
        finally:
            if conn is not None and not conn.is_closed():
                await conn.close(timeout=2)
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 30.0)
