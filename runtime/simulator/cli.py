"""`opendot device simulate`: a command-line Dot device.

    opendot device simulate --say "What time is it?" --turns 2 --protocol-version 2
    opendot device simulate --wav question.wav --mode manual --out reply.wav

On first run it bootstraps through `<runtime>/ota/`, prints the 6-digit code
(claim it in the console or with `POST /api/device-activations/claim`) and
waits; the token is then kept in `OPENDOT_DATA_DIR/devices/<mac>.json` (see
`--state-dir`), so later runs connect at once. That is where `opendot demo`
keeps its Dot too: after the demo, this command talks through the demo's
paired device. The runtime URL defaults to the one `opendot up` serves
(RUNTIME_PORT).
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_SAY = "Hello Dot. What can you do for me?"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runtime-url", help="runtime base URL (default http://127.0.0.1:$RUNTIME_PORT)"
    )
    parser.add_argument("--mac", help="device MAC (default: the one stored device, else random)")
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="where device tokens live (default $OPENDOT_DATA_DIR/devices, shared with the demo)",
    )
    parser.add_argument("--protocol-version", type=int, choices=(1, 2, 3), help="binary framing")
    parser.add_argument("--mode", choices=("auto", "manual", "realtime"), default="auto")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--wav", type=Path, help="speak this WAV file (any rate, 16-bit)")
    source.add_argument("--say", help="speak this text (synthesised locally with espeak-ng)")
    parser.add_argument(
        "--turns", type=int, default=1, help="how many turns to hold (0: boot, update, exit)"
    )
    parser.add_argument(
        "--firmware-version",
        help="the firmware version the Dot reports (follows offered upgrades from it)",
    )
    parser.add_argument("--board", help="the board name the Dot reports (bread-compact-wifi)")
    parser.add_argument(
        "--firmware-attempts",
        type=int,
        default=3,
        help="boots spent on an offered upgrade before giving up (a bad download is retried)",
    )
    parser.add_argument("--abort-after", type=float, help="send abort this many s into the reply")
    parser.add_argument("--out", type=Path, help="write the reply audio here (WAV, 24 kHz)")
    parser.add_argument("--code-wav", type=Path, help="also speak the activation code into a WAV")
    parser.add_argument(
        "--activation-timeout", type=float, default=300.0, help="seconds to wait for the claim"
    )
    parser.add_argument(
        "--poll-interval", type=float, default=3.0, help="seconds between activation polls"
    )
    parser.add_argument("--wake-word", default="hey dot", help="text of `listen detect`")
    parser.add_argument(
        "--pace", type=float, default=1.0, help="1.0 sends audio in real time, 0 at full speed"
    )
    parser.add_argument(
        "--no-mcp",
        action="store_true",
        help="do not offer the Dot's MCP tools (volume, brightness, status, camera)",
    )


def out_path(base: Path, index: int, turns: int) -> Path:
    """`reply.wav` for one turn; `reply-1.wav`, `reply-2.wav`, ... for several."""
    if turns == 1:
        return base
    return base.with_name(f"{base.stem}-{index}{base.suffix or '.wav'}")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from runtime.simulator.errors import SimulatorError

    try:
        return asyncio.run(_simulate(args))
    except SimulatorError as exc:
        print(f"opendot device simulate: {exc}")
        return 1


async def _simulate(args: argparse.Namespace) -> int:
    from runtime.protocol.device import ListenMode
    from runtime.simulator.audio import load_wav_16k, synthesize_16k, write_wav
    from runtime.simulator.device import SimulatedDevice
    from runtime.simulator.identity import DeviceStore
    from runtime.simulator.ota import Activation
    from runtime.simulator.report import Printer, format_turn
    from shared.local import LocalSettings

    local = LocalSettings()
    printer = Printer()
    store = DeviceStore(args.state_dir)  # None: OPENDOT_DATA_DIR/devices
    identity = store.load_or_create(args.mac)
    if args.firmware_version:
        identity.firmware_version = args.firmware_version
    if args.board:
        identity.board = args.board
    turns = max(0, args.turns)
    utterance = b""
    if turns:
        utterance = load_wav_16k(args.wav) if args.wav else synthesize_16k(args.say or DEFAULT_SAY)
    printer(f"device {identity.mac} ({identity.user_agent}), state in {store.directory}")

    def speak_code(activation: Activation) -> None:
        printer(
            "claim the code in the console; or stop here (Ctrl-C), run `opendot demo`, "
            "which pairs this device for the demo user, and run this command again"
        )
        if args.code_wav:
            digits = ", ".join(activation.code)
            speech = synthesize_16k(f"Your activation code is: {digits}.")
            printer(f"activation code spoken into {write_wav(args.code_wav, speech, 16_000)}")

    async with SimulatedDevice(
        args.runtime_url or local.runtime_url,
        identity,
        store=store,
        protocol_version=args.protocol_version,
        pace=args.pace,
        poll_interval=args.poll_interval,
        report=printer,
        mcp=not args.no_mcp,
    ) as device:
        await device.provision(
            speak_code,
            give_up_after=args.activation_timeout,
            firmware_attempts=max(0, args.firmware_attempts),
        )
        printer(f"running firmware {identity.firmware_version}")
        failures = 0
        for _ in range(turns):
            turn = await device.turn(
                utterance,
                mode=ListenMode(args.mode),
                wake_word=args.wake_word or None,
                abort_after=args.abort_after,
            )
            for line in format_turn(turn):
                print(line, flush=True)
            if args.out and turn.reply_pcm:
                path = out_path(args.out, turn.index, args.turns)
                print(f"  wrote    : {write_wav(path, turn.reply_pcm, turn.reply_rate)}")
            if not turn.tts_stopped:
                failures += 1
        if device.tools is not None and device.tools.calls:
            print(f"device   : volume {device.tools.volume}, brightness {device.tools.brightness}")
    return 1 if failures else 0
