"""`SimulatedDevice`: a Dot device driven from Python, speaking the firmware's protocol.

One instance is one device (one identity, one token). `provision()` runs the
OTA bootstrap and, for a new device, waits until its activation code is
claimed. `turn()` holds one conversation turn the way the firmware does:
connect `/ws` if needed (Bearer token, Protocol-Version, Device-Id,
Client-Id), `hello` and the server hello within 10 s, `listen detect` and
`listen start`, Opus frames paced in real time, then trailing silence (auto,
realtime) or `listen stop` (manual); it honours `tts start/sentence_start/
stop`, decodes the reply audio and records a timeline. If the runtime closes
the socket after the turn (close-after-turn), the next turn reconnects, as
the firmware does after the next wake word.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from runtime.protocol.device import (
    Abort,
    Alert,
    Hello,
    Listen,
    ListenMode,
    ListenState,
    Llm,
    Mcp,
    McpOut,
    ServerHello,
    Stt,
    Tts,
    TtsState,
    parse_server_message,
)
from runtime.protocol.errors import ProtocolError
from runtime.protocol.framing import Frame, FrameKind, Framing, framing_for
from runtime.protocol.ota import FirmwareOffer, parse_firmware
from runtime.simulator.audio import FRAME_BYTES, FRAME_MS, Downlink, Uplink
from runtime.simulator.errors import AuthenticationFailed, HandshakeError, SimulatorError
from runtime.simulator.firmware import download_and_check
from runtime.simulator.identity import DeviceIdentity, DeviceStore
from runtime.simulator.mcp_tools import SimulatedTools
from runtime.simulator.ota import Activation, OtaAnswer, OtaClient

HELLO_TIMEOUT_S = 10.0  # the firmware's wait for the server hello
Reporter = Callable[[str], None]
ActivationHook = Callable[[Activation], Awaitable[None] | None]

MARKS = ("speech_end", "stt", "first_sentence", "first_audio", "tts_stop")


@dataclass
class TurnResult:
    index: int
    mode: ListenMode
    stt_texts: list[str] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    emotion: str | None = None
    alerts: list[Alert] = field(default_factory=list)
    audio_frames: int = 0
    frames_after_stop: int = 0
    reply_pcm: bytes = b""
    reply_rate: int = 24_000
    marks: dict[str, float] = field(default_factory=dict)  # perf_counter seconds
    aborted: bool = False
    tts_started: bool = False
    tts_stopped: bool = False
    closed: tuple[int, str] | None = None  # the runtime closed the socket: (code, reason)
    protocol_errors: list[str] = field(default_factory=list)

    @property
    def transcript(self) -> str:
        """What the runtime heard: the latest `stt` (earlier ones are live partials)."""
        return next((t.strip() for t in reversed(self.stt_texts) if t.strip()), "")

    @property
    def reply_text(self) -> str:
        return " ".join(s for s in self.sentences if s).strip()

    def timeline_ms(self) -> dict[str, float | None]:
        """Each mark in ms after the end of speech (None when it never happened)."""
        origin = self.marks.get("speech_end")
        return {
            name: (
                None
                if origin is None or name not in self.marks
                else round((self.marks[name] - origin) * 1000, 1)
            )
            for name in MARKS
        }


class _Connection:
    """One `/ws` socket: the receiver task feeds the current turn."""

    def __init__(
        self,
        ws: ClientConnection,
        framing: Framing,
        report: Reporter,
        tools: SimulatedTools | None = None,
    ) -> None:
        self.ws = ws
        self.tools = tools
        self._mcp_tasks: set[asyncio.Task[None]] = set()
        self.framing = framing
        self.report = report
        self.session_id = ""
        self.hello = asyncio.Event()
        self.server_hello: ServerHello | None = None
        self.closed = asyncio.Event()
        self.close_info: tuple[int, str] | None = None
        self.turn: TurnResult | None = None
        self.downlink: Downlink | None = None
        self.changed = asyncio.Event()  # set on every message, for waits
        self.receiver = asyncio.create_task(self._receive())

    async def _receive(self) -> None:
        try:
            async for message in self.ws:
                self._handle(message)
                self.changed.set()
        except ConnectionClosed:
            pass
        finally:
            code, reason = self.ws.close_code, self.ws.close_reason
            self.close_info = (code if code is not None else 1006, reason or "")
            if self.turn is not None:
                self.turn.closed = self.close_info
            self.closed.set()
            self.changed.set()

    def _handle(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            frame = self.framing.parse(message)
            if isinstance(frame, ProtocolError):
                self._error(frame.message)
            elif frame.kind == FrameKind.AUDIO:
                self._audio(frame.payload)
            else:
                self._json(frame.payload)
        else:
            self._json(message)

    def _error(self, message: str) -> None:
        if self.turn is not None:
            self.turn.protocol_errors.append(message)
        self.report(f"protocol error from runtime: {message}")

    def _audio(self, packet: bytes) -> None:
        turn = self.turn
        if turn is None or self.downlink is None:
            return
        turn.audio_frames += 1
        turn.marks.setdefault("first_audio", time.perf_counter())
        if turn.tts_stopped:
            turn.frames_after_stop += 1
            return
        turn.reply_pcm += self.downlink.decode(packet)

    def _json(self, text: str | bytes) -> None:
        parsed = parse_server_message(text)
        if isinstance(parsed, ProtocolError):
            self._error(parsed.message)
            return
        message, session_id = parsed
        if isinstance(message, ServerHello):
            self.server_hello = message
            self.session_id = session_id or ""
            self.downlink = Downlink(message.audio_params.sample_rate)
            self.hello.set()
            return
        if isinstance(message, McpOut):
            self._mcp(message.payload)
            return
        turn = self.turn
        if turn is None:
            return
        now = time.perf_counter()
        if isinstance(message, Stt):
            turn.stt_texts.append(message.text)
            turn.marks["stt"] = now  # live partials come first; the last is the final
            self.report(f'stt: "{message.text}"')
        elif isinstance(message, Llm):
            turn.emotion = message.emotion
            self.report(f"llm: {message.text or ''} {message.emotion}")
        elif isinstance(message, Tts):
            self._tts(turn, message, now)
        elif isinstance(message, Alert):
            turn.alerts.append(message)
            self.report(f"alert: {message.status}: {message.message}")
        else:
            self.report(f"{type(message).__name__.lower()} message: {message}")

    def _mcp(self, payload: object) -> None:
        """Answer the runtime's MCP request as the firmware's McpServer does (in order,
        each in its own task so a slow camera does not hold up the socket)."""
        tools = self.tools
        if tools is None:
            return

        async def answer() -> None:
            reply = await tools.handle(payload)
            if reply is not None and not self.closed.is_set():
                with contextlib.suppress(ConnectionClosed):
                    await self.ws.send(Mcp(reply).to_json(self.session_id))

        task = asyncio.create_task(answer())
        self._mcp_tasks.add(task)
        task.add_done_callback(self._mcp_tasks.discard)

    def _tts(self, turn: TurnResult, message: Tts, now: float) -> None:
        if message.state == TtsState.START:
            turn.tts_started = True
            turn.marks.setdefault("tts_start", now)
            if self.downlink is not None:
                self.downlink.reset()  # the firmware resets its decoder on tts start
        elif message.state == TtsState.SENTENCE_START:
            turn.sentences.append(message.text or "")
            turn.marks.setdefault("first_sentence", now)
            self.report(f'tts: "{message.text}"')
        else:
            turn.tts_stopped = True
            turn.marks.setdefault("tts_stop", now)
            self.report("tts stop")

    async def send_json(self, text: str) -> None:
        await self.ws.send(text)

    async def send_audio(self, packet: bytes, timestamp_ms: int) -> None:
        await self.ws.send(self.framing.serialize(Frame(FrameKind.AUDIO, packet, timestamp_ms)))

    async def wait(self, condition: Callable[[], bool], within: float) -> bool:
        """Wait until `condition()` holds or the socket closes; False on timeout."""
        deadline = time.monotonic() + within
        while not condition():
            if self.closed.is_set():
                return condition()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)
        return True

    async def close(self) -> None:
        await self.ws.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self.receiver
        if self.downlink is not None:
            self.downlink.close()
            self.downlink = None


class SimulatedDevice:
    def __init__(
        self,
        runtime_url: str,
        identity: DeviceIdentity,
        *,
        store: DeviceStore | None = None,
        protocol_version: int | None = None,
        http: httpx.AsyncClient | None = None,
        poll_interval: float = 3.0,
        hello_timeout: float = HELLO_TIMEOUT_S,
        pace: float = 1.0,
        report: Reporter | None = None,
        tools: SimulatedTools | None = None,
        mcp: bool = True,
    ) -> None:
        self.runtime_url = runtime_url.rstrip("/")
        self.identity = identity
        self.store = store
        self.protocol_version = protocol_version
        self._http = http
        self.poll_interval = poll_interval
        self.hello_timeout = hello_timeout
        self.pace = pace  # 1.0 = real time; 0 sends as fast as the socket takes it
        self.report: Reporter = report or (lambda _line: None)
        self.connection: _Connection | None = None
        self.turns: list[TurnResult] = []
        # The Dot's MCP tools (volume, brightness, status, camera); None: no MCP at all.
        if tools is None and mcp:
            tools = SimulatedTools(firmware_version=identity.firmware_version, report=self.report)
        self.tools = tools
        self._uplink = Uplink()

    # --- provisioning ------------------------------------------------------------

    async def provision(
        self,
        on_activation: ActivationHook | None = None,
        *,
        give_up_after: float | None = None,
        firmware_attempts: int = 3,
    ) -> OtaAnswer:
        """OTA bootstrap; follow an offered firmware upgrade (download, check, "reboot"
        and ask again, up to `firmware_attempts` boots); if the runtime hands out an
        activation code, report it, call `on_activation` and poll until it is
        claimed. Saves the identity."""
        async with self._client() as http:
            ota = OtaClient(http, self.runtime_url, poll_interval=self.poll_interval)
            answer = await ota.bootstrap(self.identity)
            self._save()
            for _boot in range(firmware_attempts):
                offer = parse_firmware(answer.raw.get("firmware"))
                if not isinstance(offer, FirmwareOffer):
                    break
                if not offer.wanted_by(self.identity.firmware_version):
                    self.report(f"firmware {offer.version} offered; not newer, not forced: kept")
                    break
                self.report(f"firmware {offer.version} offered; downloading")
                installed = await download_and_check(http, offer, self.report)
                if installed is not None:
                    self.report(
                        f"firmware {installed.version} installed ({installed.size} bytes);"
                        " rebooting"
                    )
                    self.identity.firmware_version = installed.version
                    self._save()
                # The next boot asks again: it reports the new version, or retries.
                answer = await ota.bootstrap(self.identity)
            if answer.activation is not None:
                code = answer.activation.code
                self.report(f"activation code {' '.join(code)}: {answer.activation.message}")
                if on_activation is not None:
                    result = on_activation(answer.activation)
                    if result is not None:
                        await result
                await ota.wait_for_activation(
                    self.identity, answer.activation, give_up_after=give_up_after
                )
                self.report("activation complete")
                self._save()
        return answer

    def _client(self) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
        if self._http is not None:
            return contextlib.nullcontext(self._http)
        return httpx.AsyncClient(timeout=15.0)

    def _save(self) -> None:
        if self.store is not None:
            self.store.save(self.identity)

    # --- the device socket -------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.connection is not None and not self.connection.closed.is_set()

    @property
    def websocket_url(self) -> str:
        url = self.identity.websocket.get("url")
        if isinstance(url, str) and url:
            return url
        return self.runtime_url.replace("http", "ws", 1) + "/ws"

    @property
    def version(self) -> int:
        if self.protocol_version is not None:
            return self.protocol_version
        stored = self.identity.websocket.get("version")
        return stored if isinstance(stored, int) and stored in (1, 2, 3) else 1

    async def connect(self) -> _Connection:
        if self.connection is not None and self.connected:
            return self.connection
        headers = {
            "Protocol-Version": str(self.version),
            "Device-Id": self.identity.mac,
            "Client-Id": self.identity.client_id,
        }
        if self.identity.token:
            headers["Authorization"] = f"Bearer {self.identity.token}"
        try:
            ws = await connect(
                self.websocket_url,
                additional_headers=headers,
                compression=None,
                ping_interval=None,  # the firmware never pings
                open_timeout=self.hello_timeout,
                max_size=1 << 20,
                user_agent_header=self.identity.user_agent,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status == 401:
                raise AuthenticationFailed("the runtime refused the device token (401)") from exc
            raise SimulatorError(f"WebSocket upgrade refused with HTTP {status}") from exc
        except (OSError, TimeoutError) as exc:
            raise SimulatorError(f"cannot reach {self.websocket_url}: {exc}") from exc
        connection = _Connection(ws, framing_for(self.version), self.report, self.tools)
        self.connection = connection
        features = {"mcp": True} if self.tools is not None else {}
        await connection.send_json(Hello(version=self.version, features=features).to_json())
        if not await connection.wait(connection.hello.is_set, self.hello_timeout):
            await connection.close()
            raise HandshakeError(f"no server hello within {self.hello_timeout:g} s")
        self.report(f"connected (protocol v{self.version}, session {connection.session_id})")
        return connection

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()
            self.connection = None

    async def aclose(self) -> None:
        await self.close()
        self._uplink.close()

    async def __aenter__(self) -> SimulatedDevice:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- a conversation turn ---------------------------------------------------------------

    async def turn(
        self,
        pcm16k: bytes,
        *,
        mode: ListenMode = ListenMode.AUTO,
        wake_word: str | None = "hey dot",
        abort_after: float | None = None,
        trailing_silence_ms: int = 2400,
        reply_timeout: float = 60.0,
        close_grace: float = 1.0,
    ) -> TurnResult:
        """Speak `pcm16k` (PCM16 mono 16 kHz) and collect the reply."""
        if self.connection is None or not self.connected:
            await self.connect()
        connection = self.connection
        assert connection is not None
        turn = TurnResult(index=len(self.turns) + 1, mode=mode)
        if connection.downlink is not None:
            turn.reply_rate = connection.downlink.rate
        self.turns.append(turn)
        connection.turn = turn
        sid = connection.session_id
        try:
            if wake_word:
                await connection.send_json(Listen(ListenState.DETECT, text=wake_word).to_json(sid))
            await connection.send_json(Listen(ListenState.START, mode).to_json(sid))
            await self._stream(connection, turn, self._uplink.packets(pcm16k), stop_on_tts=True)
            turn.marks["speech_end"] = time.perf_counter()
            if mode == ListenMode.MANUAL:
                await connection.send_json(Listen(ListenState.STOP).to_json(sid))
            else:
                # Encoded frame by frame: a repeated packet would replay the encoder's tail.
                silence = self._uplink.packets(bytes(trailing_silence_ms // FRAME_MS * FRAME_BYTES))
                await self._stream(connection, turn, silence, stop_on_tts=True, stop_on_reply=True)
            if abort_after is not None:
                await self._abort_later(connection, turn, abort_after, reply_timeout)
            await connection.wait(lambda: turn.tts_stopped, reply_timeout)
            # Close-after-turn: the runtime may close the socket shortly after `tts stop`.
            await connection.wait(connection.closed.is_set, close_grace)
        except ConnectionClosed:
            pass
        finally:
            if connection.closed.is_set():
                turn.closed = connection.close_info
        return turn

    async def _stream(
        self,
        connection: _Connection,
        turn: TurnResult,
        packets: list[bytes],
        *,
        stop_on_tts: bool,
        stop_on_reply: bool = False,
    ) -> None:
        """Send packets one per 60 ms (scaled by `pace`), like a live microphone."""
        start = time.perf_counter()
        for index, packet in enumerate(packets):
            if connection.closed.is_set():
                return
            # auto/manual: the firmware mutes the mic while it speaks.
            if stop_on_tts and turn.tts_started and turn.mode != ListenMode.REALTIME:
                return
            # The turn began (`llm` follows the final `stt`; earlier `stt`s are live text).
            if stop_on_reply and (turn.emotion is not None or turn.tts_started):
                return
            await connection.send_audio(packet, index * FRAME_MS)
            due = start + (index + 1) * FRAME_MS / 1000 * self.pace
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif self.pace == 0 and index % 8 == 7:
                await asyncio.sleep(0)  # let the receiver run

    async def _abort_later(
        self, connection: _Connection, turn: TurnResult, after: float, within: float
    ) -> None:
        started = await connection.wait(lambda: turn.tts_started or turn.audio_frames > 0, within)
        if not started or turn.tts_stopped:
            return
        await asyncio.sleep(after)
        if connection.closed.is_set() or turn.tts_stopped:
            return
        await connection.send_json(Abort().to_json(connection.session_id))
        turn.aborted = True
        turn.marks["abort"] = time.perf_counter()
        self.report("abort sent")

    async def conversation(self, utterances: list[bytes], **options: Any) -> list[TurnResult]:
        return [await self.turn(pcm, **options) for pcm in utterances]
