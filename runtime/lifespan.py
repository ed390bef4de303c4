"""The runtime's lifespan: background tasks while it serves, and the shutdown order.

While serving: the record flusher, the idle sweeper, the loop-lag probe, the
Postgres listener for agent and memory changes (when a database is set), and
the warm-up of the offline engines (when the real pipeline factory is used).
On shutdown: drain the sessions (running turns may finish), stop the tasks,
flush the records, cancel the sessions' own background work, close the API
client and the shared provider HTTP clients (their pooled connections would
otherwise be left to the garbage collector, with "unclosed" warnings).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.applications import Starlette

from runtime import composition
from runtime.metrics import Metrics
from runtime.session.context import RuntimeContext

log = logging.getLogger("opendot.runtime")

Lifespan = Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]


@dataclass
class Engines:
    """Whether the offline engines are loaded, for /health: `opendot up` says ready
    only once they are (the first turn would otherwise pay about a second for them).

    `off`: this runtime does not preload them (test doubles, or
    RUNTIME_WARM_LOCAL_ENGINES=false); `loading`; `ready` (`loaded` names the
    engines that loaded: one whose extra is missing is skipped, not awaited).
    """

    state: Literal["off", "loading", "ready"] = "off"
    loaded: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "loaded": list(self.loaded)}


async def _warm(engines: Engines) -> None:
    try:
        engines.loaded = await asyncio.to_thread(composition.warm_local_engines)
    except Exception as exc:  # never leave /health saying "loading" for ever
        log.warning("warming the offline engines failed: %s", exc)
    engines.state = "ready"


def lifespan(ctx: RuntimeContext, engines: Engines) -> Lifespan:
    @contextlib.asynccontextmanager
    async def run(_app: Starlette) -> AsyncIterator[None]:
        settings = ctx.settings
        tasks: list[asyncio.Task[Any]] = [
            ctx.records.start(),
            asyncio.create_task(sweep(ctx), name="idle-sweep"),
            asyncio.create_task(loop_lag(ctx.metrics), name="loop-lag"),
        ]
        if settings.postgres_uri and settings.listen_for_config:
            from runtime.config_watch import watch_device_config

            tasks.append(
                asyncio.create_task(
                    watch_device_config(ctx, settings.postgres_uri), name="config-watch"
                )
            )
        if engines.state == "loading":
            # Off the event loop: sockets are served while the models load.
            tasks.append(asyncio.create_task(_warm(engines), name="warm"))
        # Everything imported and built so far lives as long as the process: keep it
        # out of the collector's full passes, which otherwise stall every socket.
        gc.freeze()
        try:
            yield
        finally:
            if not ctx.registry.draining:
                await ctx.registry.drain(settings.shutdown_drain_s)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await ctx.records.drain(min(5.0, settings.shutdown_drain_s + 1))
            for task in list(ctx.background):
                task.cancel()
            await asyncio.gather(*ctx.background, return_exceptions=True)
            await ctx.api.aclose()
            http = sys.modules.get("runtime.providers.http")
            if http is not None:  # only when a session ever built a cloud provider
                await http.aclose_shared_clients()

    return run


async def sweep(ctx: RuntimeContext) -> None:
    loop = asyncio.get_running_loop()
    idle = ctx.settings.idle_timeout_s
    interval = max(0.05, min(1.0, idle / 4))
    while True:
        await asyncio.sleep(interval)
        ctx.registry.sweep(loop.time(), idle)


async def loop_lag(metrics: Metrics, interval: float = 0.05) -> None:
    loop = asyncio.get_running_loop()
    while True:
        expected = loop.time() + interval
        await asyncio.sleep(interval)
        metrics.loop_lag.observe(max(0.0, loop.time() - expected))
