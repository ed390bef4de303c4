"""Request and response bodies (camelCase on the wire, snake_case in Python).

Requests ignore unknown fields (the original console PUTs whole objects back);
responses list every field, so the OpenAPI document is the contract.
"""

from __future__ import annotations

from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel


class CamelModel(BaseModel):
    """Responses: the schema is built on first use, not at import.

    An environment usually serves a handful of endpoints before it is
    recycled, so each pays only for the models it answers with.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        serialize_by_alias=True,
        defer_build=True,
    )


class RequestBody(CamelModel):
    """Request bodies build at import: FastAPI wraps them as `Field(alias="body")`,
    and only its route setup silences pydantic's warning about that; a deferred
    build would raise it on the first request instead (a test checks every body)."""

    model_config = ConfigDict(defer_build=False)


class ErrorBody(CamelModel):
    error: str


class Ok(CamelModel):
    ok: bool = True


# --- auth -----------------------------------------------------------------------------------


class AuthConfig(CamelModel):
    local_auth_enabled: bool
    supabase_configured: bool


class PublicUser(CamelModel):
    id: str
    auth_provider: str
    email: str
    display_name: str
    avatar_url: str | None = None


class SignupBody(RequestBody):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    display_name: str | None = Field(default=None, max_length=200)


class LoginBody(RequestBody):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class RefreshBody(RequestBody):
    refresh_token: str | None = Field(default=None, max_length=256)


class AuthSession(CamelModel):
    access_token: str
    refresh_token: str | None = None
    expires_at: str
    user: PublicUser


class SessionInfo(CamelModel):
    user: PublicUser


# --- agents ---------------------------------------------------------------------------------


class StageSetting(CamelModel):
    model_config = ConfigDict(extra="allow")
    key: str
    label: str = ""
    value: Any = None
    control: str = "text"


class PipelineStage(CamelModel):
    model_config = ConfigDict(extra="allow")
    id: Literal["vad", "stt", "llm", "tts"]
    label: str = ""
    provider: str = ""
    provider_options: list[str] = Field(default_factory=list)
    model: str = ""
    model_options: list[str] = Field(default_factory=list)
    purpose: str = ""
    latency_target_ms: int = 0
    settings: list[StageSetting] = Field(default_factory=list)
    emits: list[str] = Field(default_factory=list)


class VoiceAgent(CamelModel):
    id: str
    name: str
    description: str
    architecture: Literal["sandwich", "speech_to_speech"]
    realtime: dict[str, Any]
    tools: dict[str, Any]
    status: str
    version: int
    created_at: str
    updated_at: str
    pipeline: list[PipelineStage]


class AgentEnvelope(CamelModel):
    agent: VoiceAgent


class AgentList(CamelModel):
    agents: list[VoiceAgent]


class AgentCreate(RequestBody):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    architecture: Literal["sandwich", "speech_to_speech"] | None = None


class AgentUpdate(RequestBody):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    architecture: Literal["sandwich", "speech_to_speech"] | None = None
    realtime: dict[str, Any] | None = None
    # The versioned tools block (shared/tools_config.py); refused with a sentence when invalid.
    tools: dict[str, Any] | None = None
    pipeline: list[dict[str, Any]] | None = Field(default=None, max_length=16)


class AgentVersionInfo(CamelModel):
    version: int
    pipeline_version: int | None
    name: str
    created_at: str
    current: bool


class AgentVersionList(CamelModel):
    versions: list[AgentVersionInfo]


# --- devices --------------------------------------------------------------------------------


class DotDevice(CamelModel):
    id: str
    name: str
    model: str
    serial_number: str
    availability: str
    ip_address: str
    device_endpoint: str
    last_seen_at: str | None
    bound_agent_id: str | None
    bound_agent_name: str | None
    bound_agent_version: int | None = Field(
        description="The agent version the device runs: pinned, or the latest when following."
    )
    bound_config_version: str | None
    bound_at: str | None
    follow_latest: bool
    update_mode: str
    firmware_version: str | None
    board: str | None
    firmware_pin: str | None
    updated_at: str


class DeviceEnvelope(CamelModel):
    device: DotDevice


class DeviceList(CamelModel):
    devices: list[DotDevice]


class DeviceCreate(RequestBody):
    name: str = Field(min_length=1, max_length=200)
    serial_number: str = Field(min_length=1, max_length=128)
    model: str = Field(default="Dot S3", max_length=64)
    ip_address: str = Field(default="", max_length=64)
    device_endpoint: str | None = Field(default=None, max_length=2048)


class DeviceUpdate(RequestBody):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    model: str | None = Field(default=None, max_length=64)
    serial_number: str | None = Field(default=None, min_length=1, max_length=128)
    availability: Literal["available", "offline", "unknown"] | None = None
    ip_address: str | None = Field(default=None, max_length=64)
    device_endpoint: str | None = Field(default=None, max_length=2048)
    last_seen_at: str | None = Field(default=None, max_length=64)
    bound_agent_id: str | None = Field(default=None, max_length=64)
    bound_config_version: str | None = Field(default=None, max_length=64)
    bound_at: str | None = Field(default=None, max_length=64)
    follow_latest: bool | None = None
    update_mode: Literal["idle", "checking", "binding"] | None = None
    # Hold the Dot on this firmware version (a release of its board); null releases it.
    firmware_pin: str | None = Field(default=None, max_length=64)
    # The version of the device this change is based on (its `updatedAt` when it
    # was read); when the device has changed since, the PUT is refused with 409.
    updated_at: str | None = Field(default=None, max_length=64)


class ClaimBody(RequestBody):
    code: str = Field(min_length=1, max_length=32)


# --- runtime sessions -----------------------------------------------------------------------


class VoiceSessionBody(RequestBody):
    agent_id: str = Field(min_length=1, max_length=64)


class VoiceSession(CamelModel):
    url: str
    expires_at: str


class VoiceSessionEnvelope(CamelModel):
    voice_session: VoiceSession


class RealtimeSession(CamelModel):
    token: str
    client_secret_url: str
    expires_at: str


class RealtimeSessionEnvelope(CamelModel):
    realtime_session: RealtimeSession


# --- settings, keys, secrets, state ---------------------------------------------------------


class UserSettings(CamelModel):
    display_name: str
    email: str
    workspace_name: str
    timezone: str
    compact_mode: bool


class SettingsEnvelope(CamelModel):
    settings: UserSettings


class SettingsUpdate(RequestBody):
    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    workspace_name: str | None = Field(default=None, max_length=200)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    compact_mode: bool | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                "timezone must be an IANA time zone name, such as Europe/Zurich."
            ) from None
        return value


class ApiKey(CamelModel):
    id: str
    name: str
    token: str | None
    prefix: str
    created_at: str
    last_used_at: str | None
    expires_at: str | None
    status: str


class ApiKeyEnvelope(CamelModel):
    api_key: ApiKey | None


class ApiKeyList(CamelModel):
    api_keys: list[ApiKey]


class ApiKeyCreate(RequestBody):
    name: str = Field(min_length=1, max_length=120)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class SecretInfo(CamelModel):
    name: str
    created_at: str
    updated_at: str


class SecretList(CamelModel):
    secrets: list[SecretInfo]


class SecretPut(RequestBody):
    value: str = Field(min_length=1, max_length=8192)


class SecretEnvelope(CamelModel):
    secret: SecretInfo


class PlatformState(CamelModel):
    agents: list[VoiceAgent]
    devices: list[DotDevice]
    user_settings: UserSettings
    api_keys: list[ApiKey]


# --- history (sessions, turns, latency) -----------------------------------------------------


class SessionSummary(CamelModel):
    id: str
    kind: Literal["device", "browser"]
    agent_id: str | None
    agent_name: str | None
    device_id: str | None
    device_name: str | None
    status: Literal["open", "closed"]
    close_reason: str | None
    started_at: str
    ended_at: str | None
    duration_ms: float | None
    turn_count: int


class SessionPage(CamelModel):
    sessions: list[SessionSummary]
    next: str | None = Field(
        description="Cursor for the next (older) page as `before`; null at the end."
    )


class StageSpan(CamelModel):
    """One span of a turn's timeline, in ms after the user's speech ended
    (docs/protocols.md §4, "Timeline": the same spans the runtime sends on /voice)."""

    span_id: str
    stage: str
    label: str
    start_ms: float
    end_ms: float
    elapsed_ms: float = Field(description="When the span ended (its endMs).")
    bytes: int | None = Field(default=None, description="PCM bytes of a `tts_chunk`.")
    provider: str | None = Field(default=None, description="The provider that served the stage.")


class SessionEvent(CamelModel):
    kind: str
    turn_id: str | None
    created_at: str
    payload: dict[str, Any]


class TurnDetail(CamelModel):
    id: str
    turn_index: int
    transcript: str
    reply_text: str
    outcome: str
    error: str | None
    started_at: str
    ended_at: str | None
    duration_ms: float | None
    stages: list[StageSpan]
    events: list[SessionEvent]


class SessionDetail(CamelModel):
    session: SessionSummary
    turns: list[TurnDetail]
    events: list[SessionEvent] = Field(description="Events not tied to a turn.")


class StageLatency(CamelModel):
    stage: str = Field(description="The timeline's name for the mark, as turn spans name it.")
    label: str
    p50_ms: float
    p95_ms: float
    count: int


class LatencyStats(CamelModel):
    turns: int = Field(description="How many of the last 100 turns were measured.")
    stages: list[StageLatency]
