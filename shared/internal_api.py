"""The internal API between the runtime and the platform API, defined once.

Every body the runtime sends to `/api/internal/...` and every answer it reads
back is one of these models: `functions/routers/internal_*.py` declares them
as its request and response types (so they are validated there and appear in
the OpenAPI document), and `runtime/api_client.py` builds and parses with the
same classes, so a renamed field breaks a test, not a deployment. On the wire
the names are camelCase (`sessionId`), in Python snake_case; the one
exception is the OTA answer, which is the firmware's own format (snake_case).

Header: `X-OpenDot-Runtime-Secret`, compared in constant time. The agent and
device documents inside the grants are the public API's `VoiceAgent` and
`DotDevice` shapes (docs/protocols.md §1), carried as JSON objects.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

SECRET_HEADER = "X-OpenDot-Runtime-Secret"  # noqa: S105 - a header name

_S = Field(default=None, max_length=512)


class WireModel(BaseModel):
    """camelCase on the wire; unknown fields ignored (either side may be newer)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        serialize_by_alias=True,
    )

    def wire(self) -> dict[str, Any]:
        """The JSON body: camelCase, timestamps and ids as strings."""
        return self.model_dump(mode="json", by_alias=True)


class Ok(WireModel):
    ok: bool = True


# --- OTA: bootstrap and activation ---------------------------------------------------------


class BootstrapRequest(WireModel):
    """One device's OTA request: its headers, its address and its JSON body."""

    device_id: str | None = _S
    client_id: str | None = _S
    serial_number: str | None = _S
    user_agent: str | None = _S
    ip_address: str | None = _S
    authorization: str | None = Field(default=None, max_length=4096)
    websocket_url: str | None = Field(default=None, max_length=2048)
    activation_version: str | int | None = None
    system_info: Any = None


class ServerTime(BaseModel):
    timestamp: int
    timezone_offset: int


class WebsocketInfo(BaseModel):
    url: str
    token: str | None = None
    version: int = 1


class ActivationInfo(BaseModel):
    message: str
    code: str
    challenge: str
    timeout_ms: int


class OtaAnswer(BaseModel):
    """The firmware's OTA answer (snake_case, as xiaozhi firmware reads it).

    `firmware` is an offered upgrade, `{version, url, force?, size, sha256}`
    (functions/firmware_offer.py), for a device known by its token.
    """

    server_time: ServerTime
    websocket: WebsocketInfo
    activation: ActivationInfo | None = None
    firmware: dict[str, Any] | None = None

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class ActivationPayload(BaseModel):
    """py-xiaozhi wraps its activation body as `{"Payload": {...}}` (snake_case)."""

    model_config = ConfigDict(extra="ignore")

    algorithm: str | None = _S
    serial_number: str | None = _S
    challenge: str | None = _S
    hmac: str | None = _S


class ActivateRequest(WireModel):
    """An activation poll: the device's headers plus its v2 fields, when it sent them.

    The runtime forwards the fields at the top level whether the device sent
    them bare or wrapped in `Payload`; a wrapped body forwarded as is
    (`payload`) is read too, so either shape reaches the same check.
    """

    device_id: str | None = _S
    client_id: str | None = _S
    serial_number: str | None = _S
    algorithm: str | None = _S
    challenge: str | None = _S
    hmac: str | None = _S
    ip_address: str | None = _S
    user_agent: str | None = _S
    payload: ActivationPayload | None = Field(default=None, alias="Payload")

    def field(self, name: Literal["serial_number", "algorithm", "challenge", "hmac"]) -> str | None:
        """The top-level value, else the wrapped one; blank counts as absent."""
        for source in (self, self.payload):
            value = getattr(source, name, None) if source is not None else None
            if isinstance(value, str) and value.strip():
                return value.strip()
        return None


class ActivationStatus(WireModel):
    ok: bool
    status: Literal["pending", "completed"]


# --- devices at run time -------------------------------------------------------------------


class DeviceVerifyRequest(WireModel):
    token: str = Field(min_length=1, max_length=512)
    device_id: str | None = _S
    client_id: str | None = _S
    ip_address: str | None = _S
    user_agent: str | None = _S
    protocol_version: int | str | None = None


class MemoryMessage(BaseModel):
    role: Literal["user", "assistant"]
    content: str


class DeviceGrant(WireModel):
    """What a verified device token opens: its owner, device, agent, memory and secrets."""

    user_id: str
    device: dict[str, Any]
    agent: dict[str, Any] | None = None
    memory: list[MemoryMessage] = Field(default_factory=list)
    secrets: dict[str, str] = Field(default_factory=dict)
    facts: list[str] = Field(default_factory=list)  # what the remember tool stored
    timezone: str = "UTC"  # the owner's, for the date and time tool


class DeviceRef(WireModel):
    device_id: str = Field(min_length=1, max_length=64)


class DeviceStateRequest(DeviceRef):
    availability: Literal["available", "offline", "unknown"]


# The remember tool's facts: at most 50 per device (a column check) of this many characters.
MAX_FACT_CHARS = 200


class MemoryFactsRequest(DeviceRef):
    """The remember / forget tools: add a fact, or drop the facts that mention a text."""

    remember: str | None = Field(default=None, min_length=1, max_length=MAX_FACT_CHARS)
    forget: str | None = Field(default=None, min_length=1, max_length=MAX_FACT_CHARS)


class MemoryFacts(WireModel):
    facts: list[str] = Field(default_factory=list)


class DeviceConfig(WireModel):
    agent: dict[str, Any] | None = None


class FirmwareDownloaded(WireModel):
    """A Dot fetched the whole file of a rollout's release (the runtime served it)."""

    rollout_id: str = Field(min_length=1, max_length=64)
    device_id: str = Field(min_length=1, max_length=64)


# --- browsers ------------------------------------------------------------------------------


class VoiceVerifyRequest(WireModel):
    token: str = Field(min_length=1, max_length=512)
    ip_address: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=512)
    kind: Literal["voice", "realtime"] = "voice"


class VoiceGrant(WireModel):
    user_id: str
    agent: dict[str, Any] | None = None
    secrets: dict[str, str] = Field(default_factory=dict)
    timezone: str = "UTC"


# --- records: sessions, turns, events ------------------------------------------------------


class SessionOpen(WireModel):
    session_id: uuid.UUID
    kind: Literal["device", "browser"]
    user_id: uuid.UUID
    agent_id: uuid.UUID | None = None
    device_id: uuid.UUID | None = None
    protocol_version: int | None = Field(default=None, ge=1, le=9)
    runtime_instance: str = Field(default="", max_length=200)
    started_at: datetime | None = None


class SessionClose(WireModel):
    session_id: uuid.UUID
    ended_at: datetime | None = None
    reason: str = Field(default="", max_length=500)


class Marks(WireModel):
    """Per-stage instants of a turn (null when the stage did not run)."""

    speech_end_at: datetime | None = None
    stt_final_at: datetime | None = None
    llm_first_token_at: datetime | None = None
    first_chunk_at: datetime | None = None
    first_audio_at: datetime | None = None
    ended_at: datetime | None = None


class TimelineSpan(WireModel):
    """One stage of a turn as the console draws it (docs/protocols.md §4, "Timeline"):
    milliseconds since the end of speech; `elapsedMs` is when the span ended."""

    span_id: str = Field(max_length=64)
    stage: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    label: str = Field(max_length=120)
    start_ms: float = Field(ge=0, le=86_400_000)
    end_ms: float = Field(ge=0, le=86_400_000)
    elapsed_ms: float = Field(ge=0, le=86_400_000)
    bytes: int | None = Field(default=None, ge=0)
    provider: str | None = Field(default=None, max_length=64)  # who served the stage


class TurnRecord(WireModel):
    id: uuid.UUID
    session_id: uuid.UUID
    turn_index: int = Field(ge=0, le=1_000_000)
    transcript: str = Field(default="", max_length=20_000)
    reply_text: str = Field(default="", max_length=50_000)
    outcome: Literal["completed", "ignored", "aborted", "interrupted", "failed"]
    error: str | None = Field(default=None, max_length=4000)
    marks: Marks = Field(default_factory=Marks)
    timeline: list[TimelineSpan] = Field(default_factory=list, max_length=64)


class EventRecord(WireModel):
    id: uuid.UUID
    session_id: uuid.UUID
    turn_id: uuid.UUID | None = None
    kind: str = Field(pattern=r"^[a-z][a-z0-9_.\-]{0,63}$")
    payload: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None


class Records(WireModel):
    """One batch from the runtime; idempotent by record id, so it may be retried."""

    turns: list[TurnRecord] = Field(default_factory=list, max_length=500)
    events: list[EventRecord] = Field(default_factory=list, max_length=2000)


class RecordsResult(WireModel):
    ok: bool = True
    turns: int
    events: int
