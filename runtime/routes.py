"""The runtime's HTTP routes: /health, /metrics, the OTA proxy, firmware files and
the browser's Realtime client secret.

Each handler is a module-level function that takes the request and what it
needs (the `RuntimeContext`, a readiness probe); `routes()` binds them and is
the one list of paths. The two sockets (/ws, /voice) are not here: they are
dispatched on raw ASGI by `runtime.app.RuntimeApp`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from runtime.api_client import ApiUnavailable
from runtime.firmware_files import FirmwareFiles
from runtime.lifespan import Engines
from runtime.realtime.client_secret import client_secret
from runtime.session.context import RuntimeContext
from runtime.settings import RuntimeSettings

log = logging.getLogger("opendot.runtime")

MAX_OTA_BODY = 64 * 1024

Readiness = Callable[[], Mapping[str, Any]]


def routes(
    ctx: RuntimeContext, readiness: Readiness, version: str, engines: Engines
) -> list[Route]:
    ota_bootstrap = partial(ota, ctx=ctx)
    activate = partial(ota_activate, ctx=ctx)
    return [
        Route(
            "/health",
            partial(health, ctx=ctx, readiness=readiness, version=version, engines=engines),
            methods=["GET"],
        ),
        Route("/metrics", partial(metrics, ctx=ctx), methods=["GET"]),
        Route("/ota/", ota_bootstrap, methods=["POST", "GET"]),
        Route("/ota", ota_bootstrap, methods=["POST", "GET"]),
        Route("/ota/activate", activate, methods=["POST"]),
        Route("/ota/activate/", activate, methods=["POST"]),
        Route(
            "/realtime/client-secret",
            partial(client_secret, ctx=ctx),
            methods=["POST", "OPTIONS"],
        ),
        Route(
            "/ota/firmware/{token}",
            FirmwareFiles(ctx.settings, ctx.api).serve,
            methods=["GET"],
        ),
    ]


async def health(
    request: Request,
    *,
    ctx: RuntimeContext,
    readiness: Readiness,
    version: str,
    engines: Engines,
) -> Response:
    try:
        providers = dict(readiness())
    except Exception as exc:  # readiness must never break health
        providers = {"error": str(exc)}
    draining = ctx.registry.draining
    return JSONResponse(
        {
            "ok": not draining,
            "version": version,
            "sessions": ctx.registry.counts(),
            "providers": providers,
            "engines": engines.to_json(),
            "recordsBuffered": ctx.records.pending,
            "otaEndpoint": "/ota/",
            "deviceWebSocketEndpoint": "/ws",
        },
        status_code=503 if draining else 200,
        headers=_console_cors(request, ctx),
    )


def _console_cors(request: Request, ctx: RuntimeContext) -> dict[str, str]:
    """The console reads /health (which providers this runtime offers) from its own
    origin: a plain GET, so the allow-listed origin in the answer is all CORS needs."""
    origin = (request.headers.get("origin") or "").rstrip("/")
    if not origin or origin not in ctx.settings.cors_origins:
        return {"Vary": "Origin"}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


async def metrics(_request: Request, *, ctx: RuntimeContext) -> Response:
    return PlainTextResponse(ctx.metrics.render(), media_type="text/plain; version=0.0.4")


async def ota(request: Request, *, ctx: RuntimeContext) -> Response:
    """A Dot's bootstrap: its headers and system info, forwarded to the API."""
    h = request.headers
    payload = {
        "deviceId": h.get("device-id"),
        "clientId": h.get("client-id"),
        "serialNumber": h.get("serial-number"),
        "userAgent": h.get("user-agent"),
        "ipAddress": _client_ip(request),
        "authorization": h.get("authorization"),
        "websocketUrl": _device_ws_url(ctx.settings, request),
        "activationVersion": h.get("activation-version"),
        "systemInfo": await _json_body(request),
    }
    return await _proxy(ctx, "/device-activations/bootstrap", payload)


async def ota_activate(request: Request, *, ctx: RuntimeContext) -> Response:
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
    return await _proxy(ctx, "/device-activations/activate", payload)


async def _proxy(ctx: RuntimeContext, path: str, payload: Mapping[str, Any]) -> Response:
    try:
        status, data = await ctx.api.post_raw(path, payload)
    except ApiUnavailable as exc:
        ctx.metrics.api_errors.inc(endpoint="ota")
        log.warning("OTA proxy failed: %s", exc)
        return JSONResponse({"error": "Platform API unavailable."}, status_code=502)
    if status >= 500:
        return JSONResponse({"error": "Platform API error."}, status_code=502)
    return JSONResponse(data, status_code=status)


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
