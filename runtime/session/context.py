"""What every session shares: settings, metrics, the API, the record sink, the
pipeline factory and the registry of live sessions. Built once by `create_app`
and passed explicitly (no globals)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from runtime.api_client import InternalApi
from runtime.metrics import Metrics
from runtime.pipeline.interfaces import Pipeline
from runtime.providers.settings import ProviderSettings
from runtime.records import RecordSink
from runtime.session.memory import PendingTurns
from runtime.settings import RuntimeSettings
from runtime.tools.device import DeviceToolCache

if TYPE_CHECKING:
    from runtime.realtime.services import RealtimeServices

log = logging.getLogger("opendot.runtime.sessions")

# (agent, user secrets as returned by verify, user id) -> the session's pipeline.
PipelineFactory = Callable[[Mapping[str, Any] | None, Mapping[str, str], str | None], Pipeline]


class LiveSession(Protocol):
    session_id: str
    kind: str
    last_input: float
    agent: Mapping[str, Any] | None

    @property
    def busy(self) -> bool: ...

    def close(self, code: int, reason: str) -> None: ...

    def update_agent(self, agent: Mapping[str, Any] | None) -> None: ...

    def forget_memory(self) -> None: ...


class SessionRegistry:
    """Live sessions of this process; one device session per device."""

    def __init__(self) -> None:
        self.sessions: dict[str, LiveSession] = {}
        self.devices: dict[str, LiveSession] = {}
        self.draining = False

    def counts(self) -> dict[str, int]:
        out = {"device": 0, "browser": 0}
        for session in self.sessions.values():
            out[session.kind] = out.get(session.kind, 0) + 1
        return out

    def add(self, session: LiveSession) -> None:
        self.sessions[session.session_id] = session

    def claim_device(self, device_uuid: str, session: LiveSession) -> LiveSession | None:
        """Make `session` the device's session; returns the one it replaces."""
        old = self.devices.get(device_uuid)
        self.devices[device_uuid] = session
        return old if old is not session else None

    def remove(self, session: LiveSession, device_uuid: str | None = None) -> bool:
        """Forget `session`; True when it was still its device's current session."""
        self.sessions.pop(session.session_id, None)
        if device_uuid is not None and self.devices.get(device_uuid) is session:
            del self.devices[device_uuid]
            return True
        return False

    def sweep(self, now: float, idle_timeout_s: float) -> int:
        """Close sessions without input for `idle_timeout_s` (not while a turn runs)."""
        closed = 0
        for session in list(self.sessions.values()):
            if not session.busy and now - session.last_input > idle_timeout_s:
                session.close(1000, "idle timeout")
                closed += 1
        return closed

    async def drain(self, deadline_s: float) -> None:
        """Stop taking sessions, let running turns end (up to the deadline), close 1001."""
        self.draining = True
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline_s
        while loop.time() < end and any(s.busy for s in self.sessions.values()):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        for session in list(self.sessions.values()):
            session.close(1001, "server shutting down")
        close_end = loop.time() + 2.0
        while self.sessions and loop.time() < close_end:  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def _realtime_services() -> RealtimeServices:
    from runtime.realtime.services import RealtimeServices

    return RealtimeServices()


@dataclass
class RuntimeContext:
    settings: RuntimeSettings
    metrics: Metrics
    api: InternalApi
    records: RecordSink
    pipelines: PipelineFactory
    pending: PendingTurns
    registry: SessionRegistry = field(default_factory=SessionRegistry)
    # Each Dot's MCP tool list by firmware version, shared by its per-turn sockets.
    device_tools: DeviceToolCache = field(default_factory=DeviceToolCache)
    instance: str = "runtime"
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    # Speech-to-speech: provider settings (read on first use), fallback breaker, offline voice.
    realtime: RealtimeServices = field(default_factory=lambda: _realtime_services())
    # The operator's provider settings (keys, private-address policy) for tools; read once.
    provider_settings: ProviderSettings = field(default_factory=lambda: ProviderSettings())

    def spawn(self, coro: Any, name: str) -> None:
        """Fire-and-forget work that must not be garbage-collected mid-flight."""
        task = asyncio.create_task(coro, name=name)
        self.background.add(task)
        task.add_done_callback(self._done)

    def forget_device_memory(self, device_uuid: str) -> bool:
        """Drop what this process remembers of a device's conversation: the live
        session's memory and the turns not yet persisted. True when it is connected here."""
        self.pending.forget(device_uuid)
        session = self.registry.devices.get(device_uuid)
        if session is None:
            return False
        session.forget_memory()
        return True

    async def reset_device_memory(self, device_uuid: str) -> None:
        """Start the device's conversation afresh, here and in the database.

        Raises `ApiError` when the API cannot record the reset (nothing is forgotten then).
        """
        # Turns already spoken must be stored before the reset instant: stored after it,
        # they would count as newer and come back with the next verify.
        await self.records.drain(self.settings.api_timeout_s)
        await self.api.reset_device_memory(device_uuid)
        self.forget_device_memory(device_uuid)
        log.info("device %s: memory reset", device_uuid)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("background task %s failed: %s", task.get_name(), task.exception())
