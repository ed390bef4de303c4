"""Client of the platform API's internal endpoints (docs/internal-api.md).

Every call carries `X-OpenDot-Runtime-Secret`, has a timeout, and maps transport
failures to `ApiUnavailable` and refusals to `ApiRefused`, so callers handle two
outcomes instead of httpx's exception zoo. Persistence does not go through here
directly: see `runtime.records.RecordSink`, which batches and retries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger("opendot.runtime.api")

SECRET_HEADER = "X-OpenDot-Runtime-Secret"  # noqa: S105 - a header name


class ApiError(Exception):
    """The internal API did not give a usable answer."""


class ApiUnavailable(ApiError):
    """Network failure, timeout or 5xx: the API may answer later."""


class ApiRefused(ApiError):
    """A 4xx answer: the API understood and said no."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class DeviceGrant:
    user_id: str
    device: Mapping[str, Any]
    agent: Mapping[str, Any] | None
    memory: list[dict[str, str]] = field(default_factory=list)
    secrets: Mapping[str, str] = field(default_factory=dict)
    requested_at: float = 0.0  # time.monotonic() when verify was asked: `memory` is from then

    @property
    def device_uuid(self) -> str:
        return str(self.device.get("id", ""))


@dataclass(frozen=True, slots=True)
class VoiceGrant:
    user_id: str
    agent: Mapping[str, Any] | None
    secrets: Mapping[str, str] = field(default_factory=dict)


class InternalApi:
    def __init__(
        self,
        base_url: str,
        secret: str,
        *,
        timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/internal",
            headers={SECRET_HEADER: secret},
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 3.0)),
            transport=transport,
            # The runtime is the API's busiest client; keep connections warm.
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post_raw(self, path: str, body: Mapping[str, Any]) -> tuple[int, Any]:
        """POST and return (status, JSON body) whatever the status; for the OTA proxy."""
        try:
            response = await self._client.post(path, json=body)
        except httpx.HTTPError as exc:
            raise ApiUnavailable(f"{path}: {type(exc).__name__}: {exc}") from exc
        try:
            payload = response.json()
        except ValueError:
            payload = {"error": response.text[:200] or response.reason_phrase}
        return response.status_code, payload

    async def post(self, path: str, body: Mapping[str, Any]) -> Any:
        status, payload = await self.post_raw(path, body)
        if status >= 500:
            raise ApiUnavailable(f"{path}: HTTP {status}")
        if status >= 400:
            message = payload.get("error") if isinstance(payload, dict) else None
            raise ApiRefused(status, str(message or "refused"))
        return payload

    # --- devices -----------------------------------------------------------------

    async def verify_device(
        self,
        *,
        token: str,
        device_id: str | None,
        client_id: str | None,
        ip_address: str | None,
        user_agent: str | None,
        protocol_version: int,
    ) -> DeviceGrant:
        requested_at = time.monotonic()
        data = await self.post(
            "/device-runtime/verify",
            {
                "token": token,
                "deviceId": device_id,
                "clientId": client_id,
                "ipAddress": ip_address,
                "userAgent": user_agent,
                "protocolVersion": protocol_version,
            },
        )
        return DeviceGrant(
            user_id=str(data["userId"]),
            device=data.get("device") or {},
            agent=data.get("agent"),
            memory=[m for m in data.get("memory") or [] if isinstance(m, dict)],
            secrets=data.get("secrets") or {},
            requested_at=requested_at,
        )

    async def device_config(self, device_uuid: str) -> Mapping[str, Any] | None:
        data = await self.post("/device-runtime/config", {"deviceId": device_uuid})
        agent = data.get("agent") if isinstance(data, dict) else None
        return agent if isinstance(agent, dict) else None

    async def device_state(self, device_uuid: str, availability: str) -> None:
        await self.post(
            "/device-runtime/state", {"deviceId": device_uuid, "availability": availability}
        )

    async def reset_device_memory(self, device_uuid: str) -> None:
        await self.post("/device-runtime/memory/reset", {"deviceId": device_uuid})

    # --- browsers ----------------------------------------------------------------

    async def verify_voice(
        self,
        *,
        token: str,
        ip_address: str | None,
        user_agent: str | None,
        kind: str = "voice",
    ) -> VoiceGrant:
        """Consume a single-use token: `voice` (a /voice socket) or `realtime` (a client
        secret for the browser's own Realtime connection)."""
        data = await self.post(
            "/runtime/voice-sessions/verify",
            {"token": token, "ipAddress": ip_address, "userAgent": user_agent, "kind": kind},
        )
        return VoiceGrant(
            user_id=str(data["userId"]),
            agent=data.get("agent"),
            secrets=data.get("secrets") or {},
        )

    # --- persistence (called by RecordSink) -----------------------------------------

    async def open_session(self, body: Mapping[str, Any]) -> None:
        await self.post("/runtime/sessions/open", body)

    async def close_session(self, body: Mapping[str, Any]) -> None:
        await self.post("/runtime/sessions/close", body)

    async def post_records(
        self, turns: list[Mapping[str, Any]], events: list[Mapping[str, Any]]
    ) -> None:
        await self.post("/runtime/records", {"turns": turns, "events": events})
