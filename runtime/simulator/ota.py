"""The firmware's OTA bootstrap and activation polling, over httpx.

Bootstrap: POST `<runtime>/ota/` with the firmware headers and system-info
body. The answer may carry `websocket` (every key is stored, as the firmware
does in NVS, so the token is kept before the code is claimed) and
`activation` (a code to show and speak). Activation: POST `<ota_url>activate`
until 200; 202 means "not claimed yet, retry in 3 s", anything else "retry in
10 s" (`main/ota.cc`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from runtime.simulator.errors import ActivationTimeout, OtaError
from runtime.simulator.identity import DeviceIdentity


@dataclass(frozen=True)
class Activation:
    code: str
    message: str
    challenge: str
    timeout_ms: int


@dataclass(frozen=True)
class OtaAnswer:
    websocket_url: str
    protocol_version: int | None
    activation: Activation | None
    raw: dict[str, Any]


def ota_url(runtime_url: str) -> str:
    """`http://host:8787` -> `http://host:8787/ota/` (a full OTA URL is kept)."""
    url = runtime_url.rstrip("/")
    return url + "/" if url.endswith("/ota") else url + "/ota/"


def _activation(value: object) -> Activation | None:
    if not isinstance(value, dict) or not value.get("code"):
        return None
    timeout = value.get("timeout_ms")
    return Activation(
        code=str(value["code"]),
        message=str(value.get("message") or ""),
        challenge=str(value.get("challenge") or ""),
        timeout_ms=timeout if isinstance(timeout, int) and timeout > 0 else 300_000,
    )


class OtaClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        runtime_url: str,
        *,
        poll_interval: float = 3.0,
        retry_interval: float = 10.0,
    ) -> None:
        self.http = http
        self.url = ota_url(runtime_url)
        self.poll_interval = poll_interval
        self.retry_interval = retry_interval

    async def bootstrap(self, identity: DeviceIdentity) -> OtaAnswer:
        try:
            response = await self.http.post(
                self.url, headers=identity.ota_headers(), json=identity.system_info()
            )
        except httpx.HTTPError as exc:
            raise OtaError(f"OTA request to {self.url} failed: {exc}") from exc
        if response.status_code != 200:
            raise OtaError(f"OTA answered {response.status_code}: {response.text[:200]}")
        try:
            body = response.json()
        except ValueError as exc:
            raise OtaError("OTA answer is not JSON") from exc
        websocket = body.get("websocket") if isinstance(body, dict) else None
        if not isinstance(websocket, dict) or not isinstance(websocket.get("url"), str):
            raise OtaError("OTA answer has no websocket section")
        # The firmware writes every string or number key into NVS `websocket`.
        for key, value in websocket.items():
            if isinstance(value, str | int) and not isinstance(value, bool):
                identity.websocket[key] = value
        version = websocket.get("version")
        return OtaAnswer(
            websocket_url=websocket["url"],
            protocol_version=version if isinstance(version, int) else None,
            activation=_activation(body.get("activation")),
            raw=body,
        )

    def activation_body(self, identity: DeviceIdentity, activation: Activation) -> dict[str, Any]:
        if not identity.serial_number:
            return {}
        # A simulator has no eFuse key: it signs with a key derived from its serial.
        key = hashlib.sha256(identity.serial_number.encode()).digest()
        digest = hmac.new(key, activation.challenge.encode(), hashlib.sha256).hexdigest()
        return {
            "algorithm": "hmac-sha256",
            "serial_number": identity.serial_number,
            "challenge": activation.challenge,
            "hmac": digest,
        }

    async def wait_for_activation(
        self,
        identity: DeviceIdentity,
        activation: Activation,
        *,
        give_up_after: float | None = None,
        on_poll: Callable[[int], Awaitable[None] | None] | None = None,
    ) -> None:
        """Poll until the code is claimed (200); raise `ActivationTimeout`."""
        budget = give_up_after if give_up_after is not None else activation.timeout_ms / 1000
        deadline = time.monotonic() + budget
        body = self.activation_body(identity, activation)
        while True:
            try:
                response = await self.http.post(
                    self.url + "activate", headers=identity.ota_headers(), json=body
                )
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            if on_poll is not None:
                result = on_poll(status)
                if result is not None:
                    await result
            if status == 200:
                return
            delay = self.poll_interval if status == 202 else self.retry_interval
            if time.monotonic() + delay > deadline:
                raise ActivationTimeout(
                    f"activation code {activation.code} was not claimed in time"
                )
            await asyncio.sleep(delay)
