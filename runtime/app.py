"""The runtime's ASGI application: `create_app(settings, pipeline_factory=...)`.

`create_app` builds what every session shares (`RuntimeContext`) and composes
the HTTP routes (`runtime.routes`: /health, /metrics, /ota/, /ota/activate),
the lifespan (`runtime.lifespan`: background tasks and the shutdown order) and
the two sockets, WS /ws (devices) and WS /voice (browsers), which `RuntimeApp`
dispatches on raw ASGI for speed.

HTTP passes two pure ASGI middlewares first: CORS for the console's origins
(OPENDOT_CORS_ORIGINS, the API's allow-list; never `*`), so a browser can read
/health and the routes it calls, preflight included; then the body limit
(RUNTIME_MAX_BODY_BYTES, 413 with a sentence, counted as the body streams).
"""

from __future__ import annotations

import logging
import socket as socketlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from runtime import composition
from runtime.api_client import ApiRefused, InternalApi
from runtime.http_limits import BodyLimit
from runtime.lifespan import Engines, lifespan
from runtime.metrics import Gauge, Metrics
from runtime.records import RecordSink
from runtime.routes import routes
from runtime.session.context import PipelineFactory, RuntimeContext
from runtime.session.memory import PendingTurns
from runtime.session.socket import AsgiSocket, Receive, Scope, Send
from runtime.settings import RuntimeSettings
from runtime.tools import vision

if TYPE_CHECKING:
    from runtime.realtime.services import RealtimeServices

log = logging.getLogger("opendot.runtime")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("opendot")
    except Exception:  # pragma: no cover - not installed
        return "0.0.0"


class RuntimeApp:
    """Dispatches WebSockets to the session handlers and everything else to Starlette."""

    def __init__(self, ctx: RuntimeContext, http: Starlette) -> None:
        self.ctx = ctx
        self.http = http

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            path = scope.get("path", "").rstrip("/")
            if path == "/ws":
                from runtime.session.endpoints import device_endpoint

                await device_endpoint(self.ctx, AsgiSocket(scope, receive, send))
                return
            if path == "/voice":
                from runtime.session.endpoints import browser_endpoint

                await browser_endpoint(self.ctx, AsgiSocket(scope, receive, send))
                return
            sock = AsgiSocket(scope, receive, send)
            if await sock.connected():
                await sock.deny(404, "Not found")
            return
        await self.http(scope, receive, send)


def create_app(
    settings: RuntimeSettings | None = None,
    *,
    pipeline_factory: PipelineFactory | None = None,
    api_transport: httpx.AsyncBaseTransport | None = None,
    readiness: Callable[[], Mapping[str, Any]] | None = None,
    realtime: RealtimeServices | None = None,
) -> RuntimeApp:
    settings = settings or RuntimeSettings()
    ctx = _context(settings, pipeline_factory, api_transport)
    if realtime is not None:
        ctx.realtime = realtime
    warm = pipeline_factory is None and settings.warm_local_engines
    engines = Engines(state="loading" if warm else "off")
    http = Starlette(
        routes=routes(ctx, readiness or composition.readiness, _version(), engines),
        middleware=[
            # Outermost, so that a refusal below (413) still reaches the browser readably.
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type"],
                allow_credentials=False,
                max_age=600,
            ),
            Middleware(
                BodyLimit,
                max_bytes=settings.max_body_bytes,
                own_limit=frozenset({vision.PATH}),  # a photo: its route caps it at 2 MiB
            ),
        ],
        lifespan=lifespan(ctx, engines),
    )
    return RuntimeApp(ctx, http)


def _context(
    settings: RuntimeSettings,
    pipeline_factory: PipelineFactory | None,
    api_transport: httpx.AsyncBaseTransport | None,
) -> RuntimeContext:
    metrics = Metrics()
    api = InternalApi(
        settings.platform_api_internal_url,
        settings.runtime_internal_secret.get_secret_value(),
        timeout_s=settings.api_timeout_s,
        transport=api_transport,
    )
    pending = PendingTurns(per_device=max(1, settings.memory_max_turns))
    records = RecordSink(
        api,
        metrics,
        max_buffered=settings.records_buffer_max,
        flush_interval_s=settings.records_flush_interval_s,
        stuck_after_s=settings.records_stuck_after_s,
        on_turns_persisted=pending.persisted,
    )
    ctx = RuntimeContext(
        settings=settings,
        metrics=metrics,
        api=api,
        records=records,
        pipelines=pipeline_factory or composition.pipeline_factory(),
        pending=pending,
        instance=settings.instance_id or socketlib.gethostname(),
    )

    def session_gauge() -> dict[Any, float]:
        return {(("kind", k),): float(v) for k, v in ctx.registry.counts().items()}

    metrics.add_gauge(Gauge("opendot_sessions", "Live sessions by kind.", session_gauge))
    metrics.add_gauge(
        Gauge(
            "opendot_records_buffered",
            "Records waiting for the API.",
            lambda: {(): float(records.pending)},
        )
    )
    metrics.add_gauge(
        Gauge(
            "opendot_records_flusher_up",
            "1 while the record flusher runs (or rides out an API outage); 0 when it is "
            "dead or one pass is stuck.",
            lambda: {(): 1.0 if records.healthy else 0.0},
        )
    )
    return ctx


__all__ = ["ApiRefused", "RuntimeApp", "create_app"]
