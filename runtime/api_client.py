"""Client of the platform API's internal endpoints (docs/internal-api.md).

Every call carries `X-OpenDot-Runtime-Secret`, has a timeout, and maps transport
failures to `ApiUnavailable` and refusals to `ApiRefused`, so callers handle two
outcomes instead of httpx's exception zoo. Bodies are built, and answers read,
with the models of `shared.internal_api`, the same classes the API validates
with. Persistence does not go through here directly: see
`runtime.records.RecordSink`, which batches and retries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from shared import internal_api as wire
from shared.internal_api import SECRET_HEADER

log = logging.getLogger("opendot.runtime.api")

_T = TypeVar("_T", bound=BaseModel)
_M = TypeVar("_M", bound=wire.WireModel)

__all__ = ["SECRET_HEADER", "ApiError", "ApiRefused", "ApiUnavailable", "InternalApi"]


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
    requested_at: float = 0.0
    facts: list[str] = field(default_factory=list)  # what the remember tool stored
    timezone: str = (
        "UTC"  # the owner's  # time.monotonic() when verify was asked: `memory` is from then
    )

    @property
    def device_uuid(self) -> str:
        return str(self.device.get("id", ""))


@dataclass(frozen=True, slots=True)
class VoiceGrant:
    user_id: str
    agent: Mapping[str, Any] | None
    secrets: Mapping[str, str] = field(default_factory=dict)
    timezone: str = "UTC"


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

    async def call(self, path: str, body: wire.WireModel, answer: type[_T]) -> _T:
        """POST a typed body and read a typed answer; an answer of the wrong shape is
        a refusal (the two sides disagree on the contract, retrying will not help)."""
        data = await self.post(path, body.wire())
        try:
            return answer.model_validate(data)
        except ValidationError as exc:
            raise ApiRefused(200, f"{path} answered in an unexpected shape: {exc}") from exc

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
        grant = await self.call(
            "/device-runtime/verify",
            wire.DeviceVerifyRequest(
                token=token,
                device_id=device_id,
                client_id=client_id,
                ip_address=ip_address,
                user_agent=user_agent,
                protocol_version=protocol_version,
            ),
            wire.DeviceGrant,
        )
        return DeviceGrant(
            user_id=grant.user_id,
            device=grant.device,
            agent=grant.agent,
            memory=[m.model_dump() for m in grant.memory],
            secrets=grant.secrets,
            requested_at=requested_at,
            facts=list(grant.facts),
            timezone=grant.timezone,
        )

    async def device_config(self, device_uuid: str) -> Mapping[str, Any] | None:
        config = await self.call(
            "/device-runtime/config", wire.DeviceRef(device_id=device_uuid), wire.DeviceConfig
        )
        return config.agent

    async def device_state(self, device_uuid: str, availability: str) -> None:
        await self.call(
            "/device-runtime/state",
            wire.DeviceStateRequest.model_validate(
                {"deviceId": device_uuid, "availability": availability}
            ),
            wire.Ok,
        )

    async def memory_facts(
        self, device_uuid: str, *, remember: str | None = None, forget: str | None = None
    ) -> list[str]:
        answer = await self.call(
            "/device-runtime/memory/facts",
            _checked(
                wire.MemoryFactsRequest,
                {"deviceId": device_uuid, "remember": remember, "forget": forget},
            ),
            wire.MemoryFacts,
        )
        return answer.facts

    async def reset_device_memory(self, device_uuid: str) -> None:
        await self.call(
            "/device-runtime/memory/reset", wire.DeviceRef(device_id=device_uuid), wire.Ok
        )

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
        grant = await self.call(
            "/runtime/voice-sessions/verify",
            _checked(
                wire.VoiceVerifyRequest,
                {"token": token, "ipAddress": ip_address, "userAgent": user_agent, "kind": kind},
            ),
            wire.VoiceGrant,
        )
        return VoiceGrant(
            user_id=grant.user_id,
            agent=grant.agent,
            secrets=grant.secrets,
            timezone=grant.timezone,
        )

    # --- persistence (called by RecordSink) -----------------------------------------

    async def open_session(self, body: Mapping[str, Any]) -> None:
        await self.call("/runtime/sessions/open", _checked(wire.SessionOpen, body), wire.Ok)

    async def close_session(self, body: Mapping[str, Any]) -> None:
        await self.call("/runtime/sessions/close", _checked(wire.SessionClose, body), wire.Ok)

    async def post_records(
        self, turns: list[Mapping[str, Any]], events: list[Mapping[str, Any]]
    ) -> None:
        batch = _checked(wire.Records, {"turns": turns, "events": events})
        await self.call("/runtime/records", batch, wire.RecordsResult)


def _checked(model: type[_M], body: Mapping[str, Any]) -> _M:
    """A record built by a session, as the contract's model; a record that breaks the
    contract is refused here, like the API would refuse it (RecordSink drops it and
    says so), instead of travelling to be refused."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ApiRefused(422, f"{model.__name__} breaks the internal API contract: {exc}") from exc
