"""The two WebSocket endpoints: authenticate the upgrade, then hand over to a session.

Authentication happens *before* the upgrade is accepted, so a bad credential
gets a plain HTTP 401 (the ASGI denial-response extension), not an accepted
socket that closes at once. An unreachable API is a 503 for the same reason:
the device retries, which is right, instead of believing it was refused.
"""

from __future__ import annotations

import logging

from runtime.api_client import ApiRefused, ApiUnavailable
from runtime.session.context import RuntimeContext
from runtime.session.socket import AsgiSocket

log = logging.getLogger("opendot.runtime.endpoints")


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if not token:
        # The firmware adds "Bearer " only when the stored token has no space; a bare
        # token is accepted too.
        return scheme or None
    return token.strip() if scheme.lower() == "bearer" else None


async def device_endpoint(ctx: RuntimeContext, socket: AsgiSocket) -> None:
    from runtime.session.device import DeviceSession

    if not await socket.connected():
        return
    if ctx.registry.draining:
        ctx.metrics.sessions_rejected.inc(kind="device", reason="draining")
        await socket.deny(503, "Runtime is shutting down.")
        return
    # Clients that cannot set headers may use query parameters (as xiaozhi-server allows).
    token = _bearer(socket.header("authorization") or socket.query("authorization"))
    protocol = socket.header("protocol-version") or socket.query("protocol-version")
    if not token:
        ctx.metrics.sessions_rejected.inc(kind="device", reason="auth")
        await socket.deny(401, "Device authentication failed")
        return
    try:
        grant = await ctx.api.verify_device(
            token=token,
            device_id=socket.header("device-id") or socket.query("device-id"),
            client_id=socket.header("client-id") or socket.query("client-id"),
            ip_address=socket.client_ip,
            user_agent=socket.header("user-agent"),
            protocol_version=int(protocol) if protocol and protocol.strip().isdigit() else 1,
        )
    except ApiRefused as exc:
        ctx.metrics.sessions_rejected.inc(kind="device", reason="auth")
        log.info("device refused: %s", exc)
        await socket.deny(401, "Device authentication failed")
        return
    except ApiUnavailable as exc:
        ctx.metrics.sessions_rejected.inc(kind="device", reason="api")
        ctx.metrics.api_errors.inc(endpoint="device_verify")
        log.warning("device verify unavailable: %s", exc)
        await socket.deny(503, "Platform API unavailable")
        return
    await socket.accept()
    await DeviceSession(ctx, socket, grant, protocol_header=protocol).run()


async def browser_endpoint(ctx: RuntimeContext, socket: AsgiSocket) -> None:
    from runtime.session.browser import BrowserSession

    if not await socket.connected():
        return
    if ctx.registry.draining:
        ctx.metrics.sessions_rejected.inc(kind="browser", reason="draining")
        await socket.deny(503, "Runtime is shutting down.")
        return
    token = socket.query("voice_token") or _bearer(socket.header("authorization"))
    if not token:
        ctx.metrics.sessions_rejected.inc(kind="browser", reason="auth")
        await socket.deny(401, "Voice session authentication failed")
        return
    try:
        grant = await ctx.api.verify_voice(
            token=token, ip_address=socket.client_ip, user_agent=socket.header("user-agent")
        )
    except ApiRefused:
        ctx.metrics.sessions_rejected.inc(kind="browser", reason="auth")
        await socket.deny(401, "Voice session authentication failed")
        return
    except ApiUnavailable as exc:
        ctx.metrics.sessions_rejected.inc(kind="browser", reason="api")
        log.warning("voice verify unavailable: %s", exc)
        await socket.deny(503, "Platform API unavailable")
        return
    await socket.accept()
    await BrowserSession(ctx, socket, grant).run()
