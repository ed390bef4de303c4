"""Settings of the voice runtime (`opendot runtime`).

Names follow the original OpenDot where one exists (RUNTIME_PORT,
PLATFORM_API_INTERNAL_URL, CLOSE_DEVICE_AFTER_TURN, ...). Everything that bounds
memory or time is a setting, so tests can shrink it and operators can size it.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from shared.firmware.settings import FirmwareFileSettings
from shared.settings import DEFAULT_API_PORT, DEFAULT_RUNTIME_PORT, CommonSettings


class RuntimeSettings(CommonSettings, FirmwareFileSettings):
    host: str = Field(default="0.0.0.0", alias="RUNTIME_HOST", description="Bind address.")
    port: int = Field(default=DEFAULT_RUNTIME_PORT, alias="RUNTIME_PORT", description="Bind port.")
    platform_api_port: int = Field(
        default=DEFAULT_API_PORT,
        alias="PLATFORM_API_PORT",
        description="The platform API's port; the internal URL defaults to it.",
    )
    platform_api_internal_url: str = Field(
        default="",
        alias="PLATFORM_API_INTERNAL_URL",
        description="Base URL of the platform API, the internal endpoints live under it "
        "(empty: http://localhost:PLATFORM_API_PORT/api).",
    )
    public_http_url: str | None = Field(
        default=None,
        alias="OPENDOT_RUNTIME_PUBLIC_HTTP_URL",
        description="Public base URL of this runtime; when set, OTA answers derive "
        "the device WebSocket URL from it (https -> wss).",
    )
    public_ws_url: str | None = Field(
        default=None,
        alias="OPENDOT_RUNTIME_PUBLIC_WS_URL",
        description="Public browser voice URL (used by the API); not needed by the runtime.",
    )
    device_ws_url: str | None = Field(
        default=None,
        alias="OPENDOT_RUNTIME_DEVICE_WS_URL",
        description="Explicit device WebSocket URL for OTA answers (overrides derivation).",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        alias="RUNTIME_FORWARDED_ALLOW_IPS",
        description="Proxies whose X-Forwarded-For/-Proto are trusted (uvicorn syntax).",
    )

    realtime_append_ms: int = Field(
        default=120,
        alias="RUNTIME_REALTIME_APPEND_MS",
        ge=20,
        le=1000,
        description="Uplink audio per Realtime append message (speech-to-speech), milliseconds.",
    )

    close_device_after_turn: bool = Field(
        default=True,
        alias="CLOSE_DEVICE_AFTER_TURN",
        description="Default for agents that do not say: close the device socket after a turn.",
    )
    close_device_after_turn_delay_ms: int = Field(
        default=300,
        alias="CLOSE_DEVICE_AFTER_TURN_DELAY_MS",
        ge=0,
        description="Wait after `tts stop` before that close (agents without the setting).",
    )
    min_transcript_chars: int = Field(
        default=2,
        alias="MIN_TRANSCRIPT_CHARS",
        ge=0,
        description="Transcripts with fewer non-space characters are noise (no agent).",
    )

    hello_timeout_s: float = Field(
        default=10.0,
        alias="RUNTIME_HELLO_TIMEOUT_S",
        gt=0,
        description="Close a device socket that sends no hello within this time.",
    )
    idle_timeout_s: float = Field(
        default=120.0,
        alias="RUNTIME_IDLE_TIMEOUT_S",
        gt=0,
        description="Close a device or browser socket after this long without input.",
    )
    shutdown_drain_s: float = Field(
        default=10.0,
        alias="RUNTIME_SHUTDOWN_DRAIN_S",
        ge=0,
        description="On shutdown, how long running turns may finish before sockets close (1001).",
    )
    max_utterance_s: float = Field(
        default=30.0,
        alias="RUNTIME_MAX_UTTERANCE_S",
        gt=0,
        le=300,
        description="Longest utterance heard: past it the utterance ends as a turn, on every "
        "STT path (VAD, provider endpointing, manual listening), so endless audio cannot grow "
        "memory (16 kHz PCM is 32 KiB per second per session).",
    )
    api_timeout_s: float = Field(
        default=5.0,
        alias="RUNTIME_API_TIMEOUT_S",
        gt=0,
        description="Timeout of each internal API call.",
    )
    memory_max_turns: int = Field(
        default=12, alias="RUNTIME_MEMORY_MAX_TURNS", ge=0, description="Turns kept per memory."
    )
    memory_max_tokens: int = Field(
        default=2000,
        alias="RUNTIME_MEMORY_MAX_TOKENS",
        ge=0,
        description="Approximate token budget of a memory (4 characters per token).",
    )
    records_buffer_max: int = Field(
        default=5000,
        alias="RUNTIME_RECORDS_BUFFER_MAX",
        ge=1,
        description="Turns + events held while the API is unreachable; oldest events go first.",
    )
    records_stuck_after_s: float = Field(
        default=30.0,
        alias="RUNTIME_RECORDS_STUCK_AFTER_S",
        gt=0,
        description="A record flush pass waiting longer than this is reported stuck "
        "(/health not ok, opendot_records_flusher_up 0).",
    )
    records_flush_interval_s: float = Field(
        default=0.2,
        alias="RUNTIME_RECORDS_FLUSH_INTERVAL_S",
        gt=0,
        description="How often buffered records are posted in one batch.",
    )
    browser_send_queue: int = Field(
        default=64,
        alias="RUNTIME_BROWSER_SEND_QUEUE",
        ge=1,
        description="Messages queued to a browser before the turn waits for it (backpressure).",
    )
    max_body_bytes: int = Field(
        default=64 * 1024,
        alias="RUNTIME_MAX_BODY_BYTES",
        ge=1024,
        description="Largest HTTP request body (OTA system info is about 2 KiB); larger ones "
        "get 413, counted as the body arrives.",
    )
    keep_alive_s: float = Field(
        default=75.0,
        alias="RUNTIME_KEEP_ALIVE_S",
        gt=0,
        description="How long an idle HTTP connection stays open. Longer than any client "
        "polls (activation every 3-5 s) and than a load balancer's idle timeout (60 s on "
        "AWS ALB), so the other side closes first and no request meets a closing socket.",
    )
    max_frame_bytes: int = Field(
        default=64 * 1024, alias="RUNTIME_MAX_FRAME_BYTES", ge=1024, description="WS frame cap."
    )
    downlink_prebuffer_frames: int = Field(
        default=5,
        alias="RUNTIME_DOWNLINK_PREBUFFER",
        ge=1,
        description="Opus packets sent at once before pacing one per 60 ms (device queue is 40).",
    )
    warm_local_engines: bool = Field(
        default=True,
        alias="RUNTIME_WARM_LOCAL_ENGINES",
        description="Load the offline models (Silero, Whisper, Piper) at start, not on turn 1.",
    )
    opus_complexity: int = Field(
        default=5,
        alias="RUNTIME_OPUS_COMPLEXITY",
        ge=0,
        le=10,
        description="Downlink Opus encoder complexity (0-10): CPU against quality.",
    )
    listen_for_config: bool = Field(
        default=True,
        alias="RUNTIME_LISTEN_CONFIG",
        description="LISTEN for device config and memory changes when POSTGRES_URI is set.",
    )
    instance_id: str | None = Field(
        default=None, alias="RUNTIME_INSTANCE_ID", description="Name in session records."
    )

    @field_validator("platform_api_internal_url")
    @classmethod
    def _trim(cls, value: str) -> str:
        return value.strip().rstrip("/")

    @model_validator(mode="after")
    def _derive_api_url(self) -> RuntimeSettings:
        # Unset, the API's URL follows its port, so moving the port moves it.
        if not self.platform_api_internal_url:
            self.platform_api_internal_url = f"http://localhost:{self.platform_api_port}/api"
        return self
