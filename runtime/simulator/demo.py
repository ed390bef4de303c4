"""`opendot demo`: the showcase after `make up` / `opendot up`.

Signs in as the demo user, boots a simulated Dot, claims it by the code it
announces (exactly what a user types into the console), binds the demo
agent, and holds a two-turn conversation in which the second question
refers to the first, printing the transcript and timings of each turn and
whether the second reply recalled the first turn (the runtime's memory: the
offline echo LLM repeats the previous question, a real model answers it).
The device is kept in `OPENDOT_DATA_DIR/devices` (`--state-dir`), so later runs
skip the pairing and `opendot device simulate` talks through the same Dot. The
API and runtime URLs default to where `opendot up` serves them
(PLATFORM_API_PORT, RUNTIME_PORT).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.simulator.errors import PlatformError

if TYPE_CHECKING:
    from runtime.simulator.mcp_tools import SimulatedTools

DEMO_EMAIL = "demo@opendot.local"
DEMO_PASSWORD = "opendot-demo"  # noqa: S105 - the documented seed account of `opendot up`
DEMO_AGENT_ID = "00000000-0000-4000-8000-0000000000a1"
QUESTIONS = (
    # One sentence: with the semantic end of turn, a finished sentence followed by a
    # pause is the end of the turn (the second sentence would be cut off).
    "Please remember that my favourite colour is green.",
    "What is my favourite colour?",
    # The tool turn. A word after the number keeps it clear of the end-of-speech cut,
    # which once turned a final "40." into "4V" in Whisper tiny's ear.
    "Please set the volume to 30 percent.",
)
REMEMBERED = "green"  # what the second reply needs from the first turn
REALTIME_AGENT = "Demo realtime agent"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-url", help="platform API base URL (default http://127.0.0.1:$PLATFORM_API_PORT)"
    )
    parser.add_argument(
        "--runtime-url", help="runtime base URL (default http://127.0.0.1:$RUNTIME_PORT)"
    )
    parser.add_argument("--email", default=DEMO_EMAIL)
    parser.add_argument("--password", default=DEMO_PASSWORD)
    parser.add_argument("--agent-id", default=DEMO_AGENT_ID, help="agent to bind")
    parser.add_argument("--protocol-version", type=int, choices=(1, 2, 3), default=2)
    parser.add_argument(
        "--state-dir", type=Path, help="device store (default $OPENDOT_DATA_DIR/devices)"
    )
    parser.add_argument("--out-dir", type=Path, help="write each reply as a WAV here")
    parser.add_argument("--pace", type=float, default=1.0, help="1.0 = real-time microphone")
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="talk to a speech-to-speech agent: OpenAI Realtime when OPENAI_API_KEY is set, "
        "else the offline echo provider (the same bridge, local engines)",
    )


def run(args: argparse.Namespace) -> int:
    import asyncio

    from runtime.simulator.errors import SimulatorError

    try:
        return asyncio.run(run_demo(args))
    except SimulatorError as exc:
        print(f"opendot demo: {exc}")
        return 1


class PlatformClient:
    """The few platform API calls the demo makes, as the signed-in user."""

    def __init__(self, http: Any, api_url: str) -> None:
        self.http = http
        self.api = api_url.rstrip("/")
        if not self.api.endswith("/api"):
            self.api += "/api"
        self.headers: dict[str, str] = {}

    async def _call(self, method: str, path: str, body: object = None) -> Any:
        import httpx

        try:
            response = await self.http.request(
                method, self.api + path, json=body, headers=self.headers
            )
        except httpx.HTTPError as exc:
            raise PlatformError(f"cannot reach the platform API at {self.api}: {exc}") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("error") or response.text
            except ValueError:
                detail = response.text
            raise PlatformError(
                f"{method} {path} failed ({response.status_code}): {detail}",
                status=response.status_code,
            )
        return response.json()

    async def login(self, email: str, password: str) -> dict[str, Any]:
        body = await self._call("POST", "/auth/login", {"email": email, "password": password})
        self.headers = {"Authorization": f"Bearer {body['accessToken']}"}
        user: dict[str, Any] = body.get("user") or {}
        return user

    async def claim(self, code: str) -> dict[str, Any]:
        body = await self._call("POST", "/device-activations/claim", {"code": code})
        device: dict[str, Any] = body["device"]
        return device

    async def find_device(self, serial: str) -> dict[str, Any] | None:
        body = await self._call("GET", "/dot-devices")
        devices = body.get("devices", body) if isinstance(body, dict) else body
        for device in devices or []:
            if str(device.get("serialNumber", "")).lower() == serial.lower():
                found: dict[str, Any] = device
                return found
        return None

    async def realtime_agent(self, provider: str) -> dict[str, Any]:
        """The demo's speech-to-speech agent (created once), on `provider`."""
        state = await self._call("GET", "/platform-state")
        agent = next((a for a in state.get("agents", []) if a.get("name") == REALTIME_AGENT), None)
        if agent is None:
            created = await self._call("POST", "/agents", {"name": REALTIME_AGENT})
            agent = created["agent"]
        body = {"architecture": "speech_to_speech", "realtime": {"provider": provider}}
        updated: dict[str, Any] = (await self._call("PUT", f"/agents/{agent['id']}", body))["agent"]
        return updated

    async def bind(self, device_id: str, agent_id: str) -> dict[str, Any]:
        body = await self._call("PUT", f"/dot-devices/{device_id}", {"boundAgentId": agent_id})
        device: dict[str, Any] = body["device"]
        return device


async def run_demo(args: argparse.Namespace) -> int:
    import httpx

    from runtime.simulator.audio import synthesize_16k, write_wav
    from runtime.simulator.device import SimulatedDevice
    from runtime.simulator.identity import DeviceStore
    from runtime.simulator.ota import Activation
    from runtime.simulator.report import Printer, format_turn
    from shared.local import LocalSettings

    local = LocalSettings()
    api_url = args.api_url or local.api_url
    runtime_url = args.runtime_url or local.runtime_url
    printer = Printer()
    store = DeviceStore(args.state_dir)  # None: OPENDOT_DATA_DIR/devices, shared with simulate
    identity = store.load_or_create()
    utterances = [synthesize_16k(q) for q in QUESTIONS]
    async with httpx.AsyncClient(timeout=20.0) as http:
        platform = PlatformClient(http, api_url)
        try:
            user = await platform.login(args.email, args.password)
        except PlatformError as exc:
            print(f"opendot demo: {exc}\n{_login_advice(exc, args.email)}")
            return 1
        printer(f"signed in as {user.get('email', args.email)}")
        claimed: dict[str, Any] = {}

        async def claim(activation: Activation) -> None:
            printer(f"claiming code {activation.code} as {args.email}")
            claimed.update(await platform.claim(activation.code))
            printer(f"claimed device {claimed.get('name')} ({claimed.get('id')})")

        device = SimulatedDevice(
            runtime_url,
            identity,
            store=store,
            protocol_version=args.protocol_version,
            pace=args.pace,
            poll_interval=1.0,
            report=printer,
        )
        async with device:
            try:
                await device.provision(claim, give_up_after=60.0)
                record = claimed or await platform.find_device(
                    identity.serial_number or identity.mac
                )
                if not record:
                    raise PlatformError("the device is not in the demo user's account")
                agent_id = args.agent_id
                if args.realtime:
                    provider = "openai" if os.environ.get("OPENAI_API_KEY") else "echo"
                    agent_id = str((await platform.realtime_agent(provider))["id"])
                    printer(f"speech-to-speech through the {provider} Realtime provider")
                bound = await platform.bind(str(record["id"]), agent_id)
            except PlatformError as exc:
                print(f"opendot demo: {exc}")
                return 1
            printer(f"bound agent {bound.get('boundAgentName') or agent_id}")
            turns = []
            try:
                for question, pcm in zip(QUESTIONS, utterances, strict=True):
                    printer(f'you say: "{question}"')
                    turns.append(await device.turn(pcm))
            finally:
                if agent_id != args.agent_id:  # leave the Dot on the demo agent
                    await platform.bind(str(record["id"]), args.agent_id)
    print()
    print("transcript")
    for turn in turns:
        for line in format_turn(turn):
            print(line)
        if args.out_dir and turn.reply_pcm:
            path = write_wav(
                args.out_dir / f"demo-turn-{turn.index}.wav", turn.reply_pcm, turn.reply_rate
            )
            print(f"  wrote    : {path}")
    print(memory_line(turns[1].reply_text))
    assert device.tools is not None
    print(tool_line(device.tools))
    return 0 if all(t.tts_stopped for t in turns) else 1


def _login_advice(error: PlatformError, email: str) -> str:
    """What to do about a failed sign-in: which depends on why it failed."""
    if error.status is None:
        return (
            "Is `opendot up` (or `make up`) running? The demo looks for the API at "
            "PLATFORM_API_PORT on this machine (or --api-url)."
        )
    if error.status == 401:
        return (
            f"The API refused the password of {email}. `opendot up` creates the demo "
            "account unless it runs with --no-seed; for another account pass --email "
            "and --password."
        )
    return "The platform API answered, but not as the demo expected."


def tool_line(tools: SimulatedTools) -> str:
    """What the third turn did on the Dot itself, through its MCP volume tool."""
    calls = [args for name, args in tools.calls if name == "self.audio_speaker.set_volume"]
    if calls:
        return (
            f"tool     : the model called the Dot's self.audio_speaker.set_volume "
            f"{calls[-1]}; the Dot's volume is now {tools.volume}"
        )
    return "tool     : no tool was called (is the agent's tools.device switched off?)"


def memory_line(last_reply: str) -> str:
    """Whether the second reply carried the first turn's fact (the runtime's memory).

    With no keys the echo LLM repeats the previous question it was given; a real
    model answers it. Either way the fact can only come from the first turn.
    """
    if REMEMBERED in last_reply.lower():
        return f"memory   : turn 2's reply recalls '{REMEMBERED}' from turn 1 (kept across sockets)"
    return f"memory   : turn 2's reply does not mention '{REMEMBERED}' from turn 1"
