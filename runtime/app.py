"""The runtime's ASGI application: `create_app(settings, pipeline_factory=...)`.

Routes, listed in one place: GET /health, GET /metrics, POST /ota/ and
/ota/activate (Starlette), WS /ws (devices) and WS /voice (browsers), the two
sockets handled on raw ASGI for speed. Background tasks (record flusher, idle
sweeper, loop-lag probe, config listener) start with the lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import socket as socketlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from runtime import composition
from runtime.api_client import ApiRefused, ApiUnavailable, InternalApi
from runtime.metrics import Gauge, Metrics
from runtime.records import RecordSink
from runtime.session.context import PipelineFactory, RuntimeContext
from runtime.session.memory import PendingTurns
from runtime.session.socket import AsgiSocket, Receive, Scope, Send
from runtime.settings import RuntimeSettings

log = logging.getLogger("opendot.runtime")

MAX_OTA_BODY = 64 * 1024


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


def _device_ws_url(settings: RuntimeSettings, request: Request) -> str:
    if settings.device_ws_url:
        return settings.device_ws_url
    if settings.public_http_url:
        base = settings.public_http_url.rstrip("/")
        return "wss" + base[5:] + "/ws" if base.startswith("https") else "ws" + base[4:] + "/ws"
    # uvicorn's proxy-header support has already applied a trusted X-Forwarded-Proto.
    scheme = "wss" if request.url.scheme in ("https", "wss") else "ws"
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{scheme}://{host}/ws"


def _client_ip(request: Request) -> str | None:
    return request.client.host.removeprefix("::ffff:") if request.client else None


async def _json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_OTA_BODY or not body.strip():
        return {}
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def create_app(
    settings: RuntimeSettings | None = None,
    *,
    pipeline_factory: PipelineFactory | None = None,
    api_transport: httpx.AsyncBaseTransport | None = None,
    readiness: Callable[[], Mapping[str, Any]] | None = None,
) -> RuntimeApp:
    settings = settings or RuntimeSettings()
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
    version = _version()
    probe = readiness or composition.readiness

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

    async def health(_request: Request) -> Response:
        try:
            providers = dict(probe())
        except Exception as exc:  # readiness must never break health
            providers = {"error": str(exc)}
        return JSONResponse(
            {
                "ok": not ctx.registry.draining,
                "version": version,
                "sessions": ctx.registry.counts(),
                "providers": providers,
                "recordsBuffered": records.pending,
                "otaEndpoint": "/ota/",
                "deviceWebSocketEndpoint": "/ws",
            },
            status_code=503 if ctx.registry.draining else 200,
        )

    async def metrics_endpoint(_request: Request) -> Response:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    async def ota(request: Request) -> Response:
        h = request.headers
        payload = {
            "deviceId": h.get("device-id"),
            "clientId": h.get("client-id"),
            "serialNumber": h.get("serial-number"),
            "userAgent": h.get("user-agent"),
            "ipAddress": _client_ip(request),
            "authorization": h.get("authorization"),
            "websocketUrl": _device_ws_url(settings, request),
            "activationVersion": h.get("activation-version"),
            "systemInfo": await _json_body(request),
        }
        return await _proxy("/device-activations/bootstrap", payload)

    async def ota_activate(request: Request) -> Response:
        h = request.headers
        body = await _json_body(request)
        # Only the fields the activation needs: a device does not get to add its own.
        payload = {
            "deviceId": h.get("device-id"),
            "clientId": h.get("client-id"),
            "serialNumber": body.get("serial_number") or h.get("serial-number"),
            "algorithm": body.get("algorithm"),
            "challenge": body.get("challenge"),
            "hmac": body.get("hmac"),
            "ipAddress": _client_ip(request),
            "userAgent": h.get("user-agent"),
        }
        return await _proxy("/device-activations/activate", payload)

    async def _proxy(path: str, payload: Mapping[str, Any]) -> Response:
        try:
            status, data = await api.post_raw(path, payload)
        except ApiUnavailable as exc:
            metrics.api_errors.inc(endpoint="ota")
            log.warning("OTA proxy failed: %s", exc)
            return JSONResponse({"error": "Platform API unavailable."}, status_code=502)
        if status >= 500:
            return JSONResponse({"error": "Platform API error."}, status_code=502)
        return JSONResponse(data, status_code=status)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[Any]] = [
            asyncio.create_task(records.run(), name="records"),
            asyncio.create_task(_sweep(ctx), name="idle-sweep"),
            asyncio.create_task(_loop_lag(metrics), name="loop-lag"),
        ]
        if settings.postgres_uri and settings.listen_for_config:
            from runtime.config_watch import watch_device_config

            tasks.append(
                asyncio.create_task(
                    watch_device_config(ctx, settings.postgres_uri), name="config-watch"
                )
            )
        if pipeline_factory is None and settings.warm_local_engines:
            # Off the event loop: sockets are served while the models load.
            tasks.append(
                asyncio.create_task(asyncio.to_thread(composition.warm_local_engines), name="warm")
            )
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
            await records.drain(min(5.0, settings.shutdown_drain_s + 1))
            for task in list(ctx.background):
                task.cancel()
            await asyncio.gather(*ctx.background, return_exceptions=True)
            await api.aclose()

    http = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/ota/", ota, methods=["POST", "GET"]),
            Route("/ota", ota, methods=["POST", "GET"]),
            Route("/ota/activate", ota_activate, methods=["POST"]),
            Route("/ota/activate/", ota_activate, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    return RuntimeApp(ctx, http)


async def _sweep(ctx: RuntimeContext) -> None:
    loop = asyncio.get_running_loop()
    idle = ctx.settings.idle_timeout_s
    interval = max(0.05, min(1.0, idle / 4))
    while True:
        await asyncio.sleep(interval)
        ctx.registry.sweep(loop.time(), idle)


async def _loop_lag(metrics: Metrics, interval: float = 0.05) -> None:
    loop = asyncio.get_running_loop()
    while True:
        expected = loop.time() + interval
        await asyncio.sleep(interval)
        metrics.loop_lag.observe(max(0.0, loop.time() - expected))


__all__ = ["ApiRefused", "RuntimeApp", "create_app"]
