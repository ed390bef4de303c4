"""The runtime's HTTP routes: /health, /metrics, the OTA proxy, firmware files and
the browser's Realtime client secret.

Each handler is a module-level function that takes the request and what it
needs (the `RuntimeContext`, a readiness probe); `routes()` binds them and is
the one list of paths. The two sockets (/ws, /voice) are not here: they are
dispatched on raw ASGI by `runtime.app.RuntimeApp`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from runtime.api_client import ApiUnavailable
from runtime.firmware_files import FirmwareFiles
from runtime.lifespan import Engines
from runtime.pipeline.errors import ProviderError
from runtime.protocol.jsontext import load_value
from runtime.providers.keys import KeyResolver
from runtime.realtime.client_secret import client_secret
from runtime.session.context import RuntimeContext
from runtime.settings import RuntimeSettings
from runtime.tools import vision
from shared.tools_config import normalize_tools

log = logging.getLogger("opendot.runtime")

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
            methods=["POST"],  # the preflight is the CORS middleware's
        ),
        Route(
            "/ota/firmware/{token}",
            FirmwareFiles(ctx.settings, ctx.api).serve,
            methods=["GET"],
        ),
        Route(vision.PATH, partial(vision_explain, ctx=ctx), methods=["POST"]),
    ]


async def health(
    _request: Request,
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
    records = ctx.records.status()
    # Not ok while draining, and not while records are being lost: a dead or stuck
    # flusher saves no session, turn or event of any tenant until someone looks.
    ok = not ctx.registry.draining and ctx.records.healthy
    return JSONResponse(
        {
            "ok": ok,
            "version": version,
            "sessions": ctx.registry.counts(),
            "providers": providers,
            "engines": engines.to_json(),
            "records": records,
            "recordsBuffered": records["buffered"],
            "otaEndpoint": "/ota/",
            "deviceWebSocketEndpoint": "/ws",
        },
        status_code=200 if ok else 503,
    )


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
    # py-xiaozhi (a widely used third-party client) wraps the v2 fields in
    # {"Payload": {...}}; the firmware sends them bare. Both must reach the API, or
    # its serial number and HMAC are never checked.
    wrapped = body.get("Payload", body.get("payload"))
    if isinstance(wrapped, dict):
        body = wrapped
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


async def vision_explain(request: Request, *, ctx: RuntimeContext) -> Response:
    """The Dot's camera tool: a photo and a question in, the vision model's answer out."""
    secret = ctx.settings.runtime_internal_secret.get_secret_value()
    auth = request.headers.get("authorization") or ""
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    grant = vision.check_token(secret, token) if token else "A vision token is required."
    if isinstance(grant, str):
        return JSONResponse({"success": False, "message": grant}, status_code=401)
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > vision.MAX_BODY_BYTES:
            limit = vision.MAX_IMAGE_BYTES // 1024 // 1024
            return JSONResponse(
                {"success": False, "message": f"The photo is larger than {limit} MiB."},
                status_code=413,
            )
    whole = bytes(body)

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": whole, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=4)
    except Exception:  # malformed multipart: a 400, never a 500
        return JSONResponse(
            {"success": False, "message": "The upload is not multipart form data."},
            status_code=400,
        )
    upload, question = form.get("file"), form.get("question")
    image = await upload.read() if isinstance(upload, UploadFile) else b""
    await form.close()
    if not image or vision.sniff_image(image) is None:
        return JSONResponse(
            {"success": False, "message": "The upload has no JPEG, PNG, WebP or GIF image."},
            status_code=400,
        )
    session = ctx.registry.sessions.get(grant.session_id)
    if session is not None and getattr(session, "device_uuid", None) == grant.device_uuid:
        agent, secrets, user = session.agent, session.user_secrets, session.user_id  # type: ignore[attr-defined]
    else:
        # The socket lives on another container: the agent's operator keys still work.
        agent, secrets, user = await ctx.api.device_config(grant.device_uuid), {}, None
    settings = normalize_tools((agent or {}).get("tools"))["vision"]
    if not settings["enabled"]:
        return JSONResponse(
            {"success": False, "message": "Vision is switched off for this agent."},
            status_code=403,
        )
    keys = KeyResolver(ctx.provider_settings, secrets, user)
    try:
        answer = await vision.explain(
            image,
            str(question or ""),
            settings,
            settings=ctx.provider_settings,
            keys=keys,
        )
    except ProviderError as exc:
        log.info("vision failed: %s", exc)
        return JSONResponse({"success": False, "message": str(exc)}, status_code=502)
    return JSONResponse({"success": True, "result": answer})


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
    """The device's JSON object, cleaned like every device message (`protocol.text`);
    {} for anything else. The size is bounded before this (`http_limits.BodyLimit`)."""
    body = await request.body()
    if not body.strip():
        return {}
    loaded = load_value(body)
    return loaded if isinstance(loaded, dict) else {}
