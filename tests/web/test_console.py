"""The console in Debian's Chromium against a real `opendot up` (local sign-in).

Each test is a flow a person does: sign up / out / in, edit an agent and
restore a version (and lose nothing when the session expires mid-edit), talk
to an agent through the fake microphone, pair a simulated Dot by its spoken
code and see its turn in History, keys and secrets, the Web Serial console
(stubbed), and the pages at 375 px. Assertions read the page and the
WebSocket frames (headless Chromium has no speaker); no page may log an error.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared.firmware.image import build_app_image
from tests.web.conftest import new_page
from tests.web.harness import (
    DEMO_EMAIL,
    DEMO_PASSWORD,
    Stack,
    T,
    Watch,
    clean_env,
    opendot_up,
    screenshot,
)

pytestmark = pytest.mark.slow
FIRMWARE_CAP = 64 * 1024


@pytest.fixture(scope="module")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # A small cap on firmware releases, so the oversize refusal takes a small file.
    with opendot_up(
        database_url,
        tmp_path_factory.mktemp("console-up"),
        OPENDOT_FIRMWARE_MAX_BYTES=str(FIRMWARE_CAP),
    ) as found:
        yield found


@pytest.fixture
def page(chromium: Any, watch: Watch) -> Iterator[Any]:
    page = new_page(chromium, watch, viewport={"width": 1280, "height": 900})
    yield page
    page.context.close()
    assert watch.errors == [], watch.errors


def go(page: Any, name: str) -> None:
    """Follow a link of the main navigation, and wait for the page it names (its h1 is the
    link's name): a locator used at once would otherwise search the page being left."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()
    page.get_by_role("heading", level=1, name=name, exact=True).wait_for()


def sign_in(
    page: Any, stack: Stack, email: str = DEMO_EMAIL, password: str = DEMO_PASSWORD
) -> None:
    page.goto(stack.console_url)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).last.click()
    page.get_by_role("heading", name="Agents").wait_for()


def test_sign_up_out_and_in_by_keyboard(page: Any, stack: Stack) -> None:
    page.goto(stack.console_url)
    page.get_by_role("tab", name="Create account").wait_for()
    assert page.title() == "Sign in · OpenDot console"
    assert page.locator("link[rel=icon]").get_attribute("href") == "./favicon.svg"
    screenshot(page, "signin")
    # Keyboard only: Tab to the "Create account" tab, Enter, then type and submit.
    page.get_by_role("tab", name="Create account").focus()
    page.keyboard.press("Enter")
    page.get_by_label("Email").focus()
    page.keyboard.type("newcomer@example.test")
    page.keyboard.press("Tab")
    page.keyboard.type("New Comer")
    page.keyboard.press("Tab")
    page.keyboard.type("short")
    page.keyboard.press("Enter")
    page.get_by_text("Password must be at least 8 characters.").wait_for()
    page.get_by_label("Password").fill("a long enough password")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Agents").wait_for()
    page.get_by_text("No agents yet").wait_for()
    assert page.get_by_role("banner").get_by_text("New Comer").is_visible()

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("tab", name="Sign in").wait_for()
    page.get_by_label("Email").fill("newcomer@example.test")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in", exact=True).last.click()
    page.get_by_role("alert").filter(has_text="Invalid email or password.").wait_for()
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Sign in", exact=True).last.click()
    page.get_by_role("heading", name="Agents").wait_for()
    assert page.title() == "Agents · OpenDot console"


def test_edit_a_stage_see_the_diff_and_restore(page: Any, stack: Stack) -> None:
    sign_in(page, stack)
    page.get_by_label("New agent name").fill("Weather helper")
    page.get_by_role("button", name="Create agent").click()
    page.get_by_role("heading", name="Weather helper").wait_for()
    page.get_by_label("Provider").nth(2).select_option("echo")  # vad, stt, llm
    page.locator("#stage-llm-temperature").fill("0.4")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("Saved as version 2.").wait_for()
    versions = page.locator(".version-list")
    versions.get_by_text("Version 2").wait_for()
    diff = page.locator("table.diff")
    diff.get_by_role("row", name=re.compile("Language model › provider")).wait_for()
    assert "echo" in diff.get_by_role("row", name=re.compile("provider")).inner_text()
    screenshot(page, "agent-editor")

    page.get_by_role("button", name="Restore version 1").click()
    page.get_by_role("dialog").get_by_role("button", name="Restore").click()
    page.get_by_text("Restored version 1 as a new version.").wait_for()
    page.locator(".version-list").get_by_text("Version 3").wait_for()
    assert page.locator("#stage-llm-provider").input_value() == "openai"
    assert page.locator("#stage-llm-temperature").input_value() == "1"

    # A field the API refuses shows the API's sentence (here: an empty name).
    page.locator("#agent-name").fill(" ")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_role("alert").filter(has_text="name").first.wait_for()


def _new_agent(page: Any, name: str) -> None:
    page.get_by_label("New agent name").fill(name)
    page.get_by_role("button", name="Create agent").click()
    page.get_by_role("heading", name=name).wait_for()


def test_give_an_agent_a_webhook_and_an_mcp_server(page: Any, stack: Stack) -> None:
    sign_in(page, stack)
    _new_agent(page, "Tool user")
    tools = page.locator("#tools")
    tools.get_by_role("button", name="Add webhook").click()
    hook = tools.locator(".entry.webhook").first
    hook.get_by_label("Tool name").fill("weather")
    hook.get_by_label("Method").select_option("GET")
    hook.get_by_label("URL", exact=True).fill("http://weather.example.com/now")
    hook.get_by_label("Description").fill("Today's weather in a city.")
    schema = '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}'
    hook.get_by_label("Parameters (JSON schema)").fill(schema)
    hook.get_by_role("button", name="Add header").click()
    hook.get_by_label("Header name").fill("Authorization")
    hook.get_by_label("Secret name").fill("WEATHER_TOKEN")
    tools.get_by_role("button", name="Add MCP server").click()
    server = tools.locator(".entry.mcp-server").first
    server.get_by_label("Server name").fill("calendar")
    server.get_by_label("Server URL").fill("https://mcp.example.com/mcp")
    server.get_by_label("Bearer token (secret name, optional)").fill("CALENDAR_TOKEN")
    tools.get_by_label("Remember and forget").uncheck()
    tools.get_by_label("Tool calls per turn (at most)").fill("3")

    # A public plain-http URL: the API's sentence, at the webhook's URL field.
    page.get_by_role("button", name="Save changes").click()
    page.locator("#tools-webhook-0-url-error", has_text="must start with https://").wait_for()
    # Parameters that are not JSON are reported before anything is sent.
    hook.get_by_label("Parameters (JSON schema)").fill('{"type": "object",')
    page.get_by_role("button", name="Save changes").click()
    page.locator("#tools-webhook-0-parameters-error", has_text="not valid JSON").wait_for()
    hook.get_by_label("Parameters (JSON schema)").fill(schema)
    hook.get_by_label("URL", exact=True).fill("https://weather.example.com/now")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("Saved as version 2.").wait_for()

    diff = page.locator("table.diff")
    diff.get_by_role("row", name=re.compile("Tools › webhook weather")).wait_for()
    diff.get_by_role("row", name=re.compile("Tools › MCP server calendar")).wait_for()
    diff.get_by_role("row", name=re.compile("Tools › builtins › memory")).wait_for()
    # What was saved is what the API holds, secrets by name only.
    stored = json.loads(page.evaluate("localStorage.getItem('opendot.session')"))
    agent_id = page.url.rsplit("/", 1)[-1]
    saved = httpx.get(
        f"{stack.api_url}/api/agents/{agent_id}",
        headers={"Authorization": f"Bearer {stored['accessToken']}"},
        timeout=10 * T,
    ).json()["agent"]["tools"]
    assert saved["webhooks"] == [
        {
            "name": "weather",
            "description": "Today's weather in a city.",
            "parameters": json.loads(schema),
            "url": "https://weather.example.com/now",
            "method": "GET",
            "headers": [{"name": "Authorization", "secret": "WEATHER_TOKEN"}],
        }
    ]
    assert saved["mcpServers"] == [
        {"name": "calendar", "url": "https://mcp.example.com/mcp", "bearerSecret": "CALENDAR_TOKEN"}
    ]
    assert saved["builtins"]["memory"] is False and saved["maxCallsPerTurn"] == 3
    assert page.locator("#tools-webhook-0-name").input_value() == "weather"
    page.set_viewport_size({"width": 1280, "height": 2400})  # the sticky save bar off the section
    screenshot(page.locator("#tools"), "tools")


def test_switch_an_agent_to_speech_to_speech_and_talk(
    page: Any, stack: Stack, watch: Watch
) -> None:
    sign_in(page, stack)
    _new_agent(page, "Realtime helper")
    page.locator("#agent-architecture").select_option("speech_to_speech")
    realtime = page.locator("#realtime")
    realtime.get_by_label("Provider", exact=True).select_option("echo")
    realtime.get_by_label("Voice", exact=True).select_option("cedar")
    realtime.get_by_label("Reasoning effort", exact=True).select_option("medium")
    realtime.get_by_label("Instructions", exact=True).fill("Answer in one short sentence.")
    realtime.get_by_label("Eagerness", exact=True).select_option("high")
    realtime.get_by_label("When the person has finished", exact=True).select_option("server_vad")
    realtime.get_by_label("Silence duration (ms)", exact=True).fill("700")
    realtime.get_by_label("Threshold", exact=True).fill("0.6")
    realtime.get_by_label("When the provider fails", exact=True).select_option("pipeline")
    realtime.get_by_label("API key (secret name)", exact=True).fill("")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("Saved as version 2.").wait_for()
    page.set_viewport_size({"width": 1280, "height": 2400})
    screenshot(page.locator("#realtime"), "realtime")
    page.set_viewport_size({"width": 1280, "height": 900})
    assert page.locator("#realtime-provider").input_value() == "echo"
    assert page.locator("#realtime-voice").input_value() == "cedar"
    assert page.locator("#realtime-turn-type").input_value() == "server_vad"
    assert page.locator("#realtime-turn-silence").input_value() == "700"
    assert page.locator("#realtime-fallback").input_value() == "pipeline"
    rows = page.locator("table.diff")
    rows.get_by_role("row", name=re.compile("Speech-to-speech › voice")).wait_for()
    rows.get_by_role(
        "row", name=re.compile("Speech-to-speech › turnDetection › eagerness")
    ).wait_for()

    # A turn in the browser through the echo Realtime provider (offline, no key).
    page.get_by_role("link", name="Talk to it").click()
    page.get_by_role("button", name="Start talking").click()
    turn = page.locator("li.turn").first
    turn.locator(".agent", has_text="You said").wait_for(timeout=90_000 * T)
    page.get_by_role("button", name="Stop microphone").click()
    assert "weather" in turn.locator(".you").inner_text().lower()
    # The realtime bridge streams PCM deltas; the pipeline (its fallback) sends audio chunks.
    assert _frames(watch, "assistant_pcm_delta") and not _frames(watch, "assistant_audio")
    assert "(echo) You said" in turn.locator(".agent").inner_text()


def test_expired_session_returns_with_the_edit_kept(page: Any, stack: Stack) -> None:
    sign_in(page, stack)
    page.get_by_role("link", name="Demo agent").first.click()
    page.locator("#agent-description").fill("Edited before the session ended")
    # The session ends elsewhere (signed out on another device): its refresh fails too.
    stored = json.loads(page.evaluate("localStorage.getItem('opendot.session')"))
    httpx.post(
        f"{stack.api_url}/api/auth/logout",
        headers={"Authorization": f"Bearer {stored['accessToken']}"},
        timeout=10 * T,
    ).raise_for_status()
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("Your session expired.").wait_for()
    page.get_by_label("Email").fill(DEMO_EMAIL)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).last.click()
    page.get_by_text("Your unsaved changes were kept.").wait_for()
    assert page.locator("#agent-description").input_value() == "Edited before the session ended"
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text(re.compile(r"Saved as version \d+\.")).wait_for()


def test_the_session_is_renewed_before_it_expires(page: Any, stack: Stack) -> None:
    """A person who keeps the console open is never sent to sign in: a minute before the
    access token expires, the console trades its refresh token for a new pair."""
    page.clock.install()
    sign_in(page, stack)
    before = json.loads(page.evaluate("localStorage.getItem('opendot.session')"))
    left_ms = page.evaluate(
        "Date.parse(JSON.parse(localStorage.getItem('opendot.session')).expiresAt) - Date.now()"
    )
    assert left_ms > 60_000, before  # a token that outlives the renewal margin
    with page.expect_response(lambda r: r.url.endswith("/api/auth/refresh")) as renewal:
        page.clock.run_for(int(left_ms) - 60_000 + 1_000)
    assert renewal.value.status == 200
    # The answer is stored once the page has read it.
    page.wait_for_function(
        "old => JSON.parse(localStorage.getItem('opendot.session')).accessToken !== old",
        arg=before["accessToken"],
    )
    after = json.loads(page.evaluate("localStorage.getItem('opendot.session')"))
    assert after["accessToken"] != before["accessToken"]
    assert after["refreshToken"] != before["refreshToken"]  # rotated, the old one spent
    go(page, "Dots")  # still signed in, with the new token
    assert page.get_by_role("button", name="Sign in", exact=True).count() == 0


def _frames(watch: Watch, kind: str) -> list[dict[str, Any]]:
    out = []
    for raw in watch.frames:
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if event.get("type") == kind:
            out.append(event)
    return out


def test_talk_through_the_fake_microphone(page: Any, stack: Stack, watch: Watch) -> None:
    sign_in(page, stack)
    go(page, "Talk")
    page.get_by_label("Agent").select_option(label="Demo agent")
    page.get_by_role("button", name="Start talking").click()
    turn = page.locator("li.turn").first
    turn.locator(".agent", has_text="You said").wait_for(timeout=90_000 * T)
    page.wait_for_function(
        "() => document.querySelector('li.turn')?.dataset.audioChunks > 0", timeout=60_000 * T
    )
    turn.locator("table.waterfall tbody tr").first.wait_for()
    page.get_by_role("button", name="Stop microphone").click()
    heard = _frames(watch, "user_final")
    assert heard and "weather" in heard[0]["text"].lower(), watch.frames[:20]
    assert "weather" in turn.locator(".you").inner_text().lower()
    assert _frames(watch, "assistant_audio") or _frames(watch, "assistant_pcm_delta")
    assert _frames(watch, "timeline")
    binary = [f for f in watch.sent if isinstance(f, bytes)]
    assert binary and all(len(f) % 2 == 0 for f in binary)  # PCM16 up
    assert {"type": "finalize"} in [json.loads(f) for f in watch.sent if isinstance(f, str)]
    screenshot(page, "talk")


def test_pair_a_simulated_dot_and_see_its_turn_in_history(page: Any, stack: Stack) -> None:
    sign_in(page, stack)
    go(page, "Dots")
    page.get_by_role("heading", name="Your Dots").wait_for()
    simulator = subprocess.Popen(
        stack.cli(
            "device", "simulate", "--runtime-url", stack.runtime_url,
            "--state-dir", str(stack.workdir / "dots"), "--turns", "1",
            "--say", "What is the weather like today?", "--poll-interval", "0.5",
        ),
        cwd=stack.workdir, env=clean_env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        lines: list[str] = []
        assert simulator.stdout is not None
        for line in simulator.stdout:
            lines.append(line)
            found = re.search(r"activation code ((?:\d ){5}\d)", line)
            if found:
                break
        else:
            pytest.fail("the simulator printed no code:\n" + "".join(lines))
        spoken = found[1]  # "1 2 3 4 5 6": typed as heard, with the spaces
        page.get_by_label("The six digits the Dot speaks").fill(spoken)
        page.get_by_role("button", name="Pair", exact=True).click()
        page.get_by_text(re.compile(r"Paired Dot ")).wait_for()
        card = page.locator("li.dot").first
        demo = card.get_by_label("Agent", exact=True).locator("option", has_text="Demo agent")
        card.get_by_label("Agent", exact=True).select_option(demo.get_attribute("value"))
        card.get_by_role("button", name="Bind").click()
        card.get_by_text(re.compile("pinned to version")).wait_for()
        # Live state: the card turns Online without a reload once the Dot connects.
        card.locator("[data-state=available]").wait_for(timeout=60_000 * T)
        screenshot(page, "dots")
        rest, _ = simulator.communicate(timeout=180 * T)
        assert simulator.returncode == 0, "".join(lines) + rest
    finally:
        if simulator.poll() is None:
            simulator.kill()
            simulator.wait()

    card.get_by_role("link", name="History").click()
    page.get_by_role("heading", name="Sessions").wait_for()
    session = page.locator("li.session").first
    session.get_by_role("button").click()
    turn = session.locator("li.turn").first
    turn.wait_for(timeout=30_000 * T)
    assert "weather" in turn.locator(".you").inner_text().lower()
    assert turn.locator("table.waterfall tr[data-stage=stt_final]").count() == 1
    # Which provider served the stage (the demo's offline engines).
    assert "local-whisper" in turn.locator("table.waterfall tr[data-stage=stt_final]").inner_text()
    page.locator("table.stats tr[data-stage=stt_final]").wait_for()
    screenshot(page, "history")

    # What loses something asks first: reset its memory, unbind, remove.
    go(page, "Dots")
    card = page.locator("li.dot").first
    card.get_by_role("button", name=re.compile("^Reset the memory of")).click()
    page.get_by_role("dialog").get_by_role("button", name="Reset memory").click()
    page.get_by_role("dialog").wait_for(state="detached")
    card.get_by_role("button", name=re.compile("^Unbind")).click()
    page.get_by_role("dialog").get_by_role("button", name="Unbind").click()
    card.get_by_text("none bound").wait_for()
    card.get_by_role("button", name=re.compile("^Remove")).click()
    page.get_by_role("dialog").get_by_role("button", name="Remove Dot").click()
    page.get_by_text("No Dots yet").wait_for()


BOARD = "bread-compact-wifi"


def _bin(name: str, content: bytes) -> dict[str, Any]:
    return {"name": name, "mimeType": "application/octet-stream", "buffer": content}


def _upload(page: Any, version: str, content: bytes, notes: str = "") -> None:
    page.get_by_label("Board", exact=True).fill(BOARD)
    page.get_by_label("Version", exact=True).fill(version)
    page.get_by_label("Notes").fill(notes)
    page.get_by_label("Firmware file (.bin)").set_input_files(_bin(f"{version}.bin", content))
    page.get_by_role("button", name="Upload release").click()


def test_firmware_release_rollout_and_pin(page: Any, stack: Stack) -> None:
    sign_in(page, stack)
    go(page, "Firmware")
    page.get_by_text("No releases yet").wait_for()
    page.get_by_text("No rollout is running").wait_for()

    _upload(page, "1.0.0", build_app_image("1.0.0", 4096), "first")
    page.get_by_text("Uploaded 1.0.0 for bread-compact-wifi (4.0 KiB).").wait_for()
    image = build_app_image("1.1.0", 6000)
    _upload(page, "1.1.0", image, "fixes Wi-Fi")
    page.get_by_text("Uploaded 1.1.0").wait_for()
    row = page.locator("tr[data-release='1.1.0']")
    assert "5.9 KiB" in row.inner_text() and "fixes Wi-Fi" in row.inner_text()
    assert row.locator("code").get_attribute("title") == hashlib.sha256(image).hexdigest()
    # The API's sentences, at the field they are about.
    _upload(page, "1.1.0", image)
    page.locator(
        "#fw-version-error", has_text="Version 1.1.0 of bread-compact-wifi already exists"
    ).wait_for()
    _upload(page, "1.2.0", b"")
    page.locator("#fw-file-error", has_text="The file is empty.").wait_for()
    _upload(page, "1.2.0", build_app_image("1.2.1", 4096))
    page.locator("#fw-file-error", has_text="says it is version 1.2.1").wait_for()
    _upload(page, "1.2.0", build_app_image("1.2.0", FIRMWARE_CAP + 4096))
    page.locator("#fw-file-error", has_text="limit for a release").wait_for()

    # Roll 1.1.0 out to 10 %, raise to 30 %, pause, resume; the counts are numbers.
    page.get_by_label("Release", exact=True).select_option(label="1.1.0 · bread-compact-wifi")
    page.get_by_label("Share of the board's Dots (%)").fill("10")
    page.get_by_role("button", name="Start rollout").click()
    card = page.locator("li.rollout[data-rollout='1.1.0']")
    card.locator(".percent", has_text="10 %").wait_for()
    assert card.get_attribute("data-status") == "active"
    for count in ("offered", "updated", "stuck"):
        assert card.locator(f"[data-count={count}] dd").inner_text() == "0"
    card.get_by_label("Raise to (%)").fill("30")
    card.get_by_role("button", name="Raise").click()
    card.locator(".percent", has_text="30 %").wait_for()
    card.get_by_role("button", name="Pause 1.1.0").click()
    page.locator("li.rollout[data-rollout='1.1.0'][data-status=paused]").wait_for()
    card.get_by_role("button", name="Resume 1.1.0").click()
    page.locator("li.rollout[data-rollout='1.1.0'][data-status=active]").wait_for()
    card.get_by_text("Per Dot").click()
    card.get_by_text("No Dot has been offered this release yet.").wait_for()
    screenshot(page, "firmware")

    # A release in a live rollout cannot be deleted: the dialog shows why.
    row.get_by_role("button", name="Delete 1.1.0").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Delete release").click()
    dialog.get_by_role("alert").filter(has_text="abort that rollout").wait_for()
    page.keyboard.press("Escape")  # the dialog cancels by keyboard
    dialog.wait_for(state="detached")

    # Keyboard only: the Abort button, then its confirmation (focus starts on Cancel).
    card.get_by_role("button", name="Abort 1.1.0").focus()
    page.keyboard.press("Enter")
    page.get_by_role("dialog").get_by_role("button", name="Cancel").wait_for()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.get_by_text("No rollout is running").wait_for()
    page.get_by_text("Ended rollouts (1)").click()
    page.locator("li.rollout[data-rollout='1.1.0'][data-status=aborted]").wait_for()

    page.locator("tr[data-release='1.0.0']").get_by_role("button", name="Delete 1.0.0").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete release").click()
    page.locator("tr[data-release='1.0.0']").wait_for(state="detached")

    # Pin a Dot to a version, then let it follow rollouts again.
    stored = json.loads(page.evaluate("localStorage.getItem('opendot.session')"))
    bench = httpx.post(
        f"{stack.api_url}/api/dot-devices",
        json={"name": "Bench Dot", "serialNumber": "FW-PIN-1", "model": "Dot S3", "ipAddress": ""},
        headers={"Authorization": f"Bearer {stored['accessToken']}"},
        timeout=10 * T,
    )
    bench.raise_for_status()
    pin = page.get_by_label("Pin Bench Dot to")
    pin.select_option("1.1.0")
    page.get_by_role("button", name="Pin", exact=True).click()
    row = page.locator("li[data-pin-dot='Bench Dot']")
    row.get_by_text("pinned to 1.1.0").wait_for()
    go(page, "Dots")
    page.locator("li.dot[data-dot=FW-PIN-1]").get_by_text("pinned to 1.1.0").wait_for()
    go(page, "Firmware")
    assert page.get_by_label("Pin Bench Dot to").input_value() == "1.1.0"
    page.get_by_label("Pin Bench Dot to").select_option("")
    page.get_by_role("button", name="Unpin").click()
    row.get_by_text("follows rollouts").wait_for()
    httpx.delete(
        f"{stack.api_url}/api/dot-devices/{bench.json()['device']['id']}",
        headers={"Authorization": f"Bearer {stored['accessToken']}"},
        timeout=10 * T,
    ).raise_for_status()


def test_a_dot_takes_a_rollout_and_is_rolled_back(page: Any, stack: Stack) -> None:
    """A simulated Dot on 2.0.0 is offered 2.1.0, installs it and reports it: the
    counts and the per-Dot row say so, and Roll back rolls 2.0.0 out to it."""
    sign_in(page, stack)
    go(page, "Firmware")
    _upload(page, "2.0.0", build_app_image("2.0.0", 4096))
    page.get_by_text("Uploaded 2.0.0").wait_for()
    _upload(page, "2.1.0", build_app_image("2.1.0", 4096))
    page.get_by_text("Uploaded 2.1.0").wait_for()
    page.get_by_label("Release", exact=True).select_option(label="2.1.0 · bread-compact-wifi")
    page.get_by_label("Share of the board's Dots (%)").fill("100")
    page.get_by_role("button", name="Start rollout").click()
    card = page.locator("li.rollout[data-rollout='2.1.0']")
    card.wait_for()

    stored = json.loads(page.evaluate("localStorage.getItem('opendot.session')"))
    owner = {"Authorization": f"Bearer {stored['accessToken']}"}
    simulator = subprocess.Popen(
        stack.cli(
            "device", "simulate", "--runtime-url", stack.runtime_url,
            "--state-dir", str(stack.workdir / "firmware-dots"), "--turns", "0",
            "--firmware-version", "2.0.0", "--poll-interval", "0.5",
        ),
        cwd=stack.workdir, env=clean_env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        lines: list[str] = []
        assert simulator.stdout is not None
        for line in simulator.stdout:
            lines.append(line)
            found = re.search(r"activation code ((?:\d ){5}\d)", line)
            if found:
                break
        else:
            pytest.fail("the simulator printed no code:\n" + "".join(lines))
        httpx.post(
            f"{stack.api_url}/api/device-activations/claim",
            json={"code": found[1].replace(" ", "")},
            headers=owner,
            timeout=10 * T,
        ).raise_for_status()
        rest, _ = simulator.communicate(timeout=120 * T)
        assert simulator.returncode == 0, "".join(lines) + rest
    finally:
        if simulator.poll() is None:
            simulator.kill()
            simulator.wait()
    # Paired: its next boot asks for updates as a Dot does on every boot.
    booted = subprocess.run(
        stack.cli(
            "device", "simulate", "--runtime-url", stack.runtime_url,
            "--state-dir", str(stack.workdir / "firmware-dots"), "--turns", "0",
            "--firmware-version", "2.0.0",
        ),
        cwd=stack.workdir, env=clean_env(), text=True, capture_output=True, timeout=120 * T,
    )  # fmt: skip
    assert "running firmware 2.1.0" in booted.stdout, booted.stdout + booted.stderr

    # The page polls: the Dot shows up as updated without a reload.
    card.locator("[data-count=updated] dd", has_text="1").wait_for(timeout=30_000 * T)
    assert card.locator("[data-count=offered] dd").inner_text() == "1"
    assert card.locator("[data-count=stuck] dd").inner_text() == "0"
    card.get_by_text("Per Dot").click()
    row = card.locator("table.per-dot-table tbody tr[data-state=updated]")
    row.wait_for()
    assert "2.0.0 → 2.1.0" in row.inner_text()
    screenshot(page, "firmware-updated")

    card.get_by_role("button", name="Roll back 2.1.0 to 2.0.0").click()
    page.get_by_role("dialog").get_by_role("button", name="Roll out 2.0.0").click()
    back = page.locator("li.rollout[data-rollout='2.0.0'][data-status=active]")
    back.wait_for()
    assert "100 % of the board's Dots on 2.1.0" in back.inner_text()
    page.get_by_text(re.compile(r"Ended rollouts \(\d+\)")).click()
    page.locator("li.rollout[data-rollout='2.1.0'][data-status=superseded]").wait_for()

    dots = httpx.get(f"{stack.api_url}/api/dot-devices", headers=owner, timeout=10 * T)
    for dot in dots.json()["devices"]:
        if dot["firmwareVersion"] == "2.1.0":
            httpx.delete(
                f"{stack.api_url}/api/dot-devices/{dot['id']}", headers=owner, timeout=10 * T
            ).raise_for_status()


def test_api_keys_secrets_and_timezone(page: Any, stack: Stack) -> None:
    sign_in(page, stack)
    go(page, "Settings")
    page.get_by_label("New key name").fill("CI key")
    page.get_by_role("button", name="Create key").click()
    token = page.locator("#new-key-token").input_value()
    assert token.startswith("od_sk_")
    page.get_by_role("button", name="Done").click()
    assert page.locator("#new-key-token").count() == 0  # shown once
    row = page.locator("tr[data-key='CI key']")
    row.get_by_role("button", name="Revoke CI key").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke key").click()
    row.locator(".key-status.revoked").wait_for()

    page.get_by_label("Name", exact=True).fill("DEEPGRAM_API_KEY")
    page.get_by_label("Value").fill("dg-secret-value")
    page.get_by_role("button", name="Set secret").click()
    page.locator("li[data-secret=DEEPGRAM_API_KEY]").wait_for()
    assert "dg-secret-value" not in page.content()
    page.get_by_role("button", name="Delete DEEPGRAM_API_KEY").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete secret").click()
    page.locator("li[data-secret=DEEPGRAM_API_KEY]").wait_for(state="detached")

    page.get_by_label("Time zone").fill("Mars/Olympus")
    page.get_by_role("button", name="Save settings").click()
    page.locator("#set-timezone-error", has_text="IANA").wait_for()
    page.get_by_label("Time zone").fill("Europe/Zurich")
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text("Saved.").wait_for()
    page.locator("li[data-provider=local][data-on=true]").wait_for()
    screenshot(page, "settings")


SERIAL_STUB = """
(() => {
  const lines = ["I (31) boot: ESP-IDF v5.5.2\\n", "I (412) opendot: wifi connected\\n"];
  window.__signals = [];
  const port = {
    async open(options) { window.__baud = options.baudRate; },
    async close() {},
    async setSignals(s) { window.__signals.push(s); },
    readable: new ReadableStream({
      start(controller) { for (const l of lines) controller.enqueue(new TextEncoder().encode(l)); },
    }),
  };
  Object.defineProperty(navigator, "serial", { value: { requestPort: async () => port } });
})();
"""


NO_SERIAL = "delete Navigator.prototype.serial;"


def test_device_console_over_a_stubbed_web_serial(page: Any, stack: Stack) -> None:
    page.context.add_init_script(NO_SERIAL)
    sign_in(page, stack)
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Settings").wait_for()
    assert nav.get_by_role("link", name="Device console").count() == 0  # a browser without it
    page.context.add_init_script(SERIAL_STUB)
    page.reload()
    go(page, "Device console")
    page.get_by_role("button", name="Connect a Dot").click()
    log = page.get_by_label("Device log")
    log.get_by_text("wifi connected", exact=False).wait_for()
    assert page.evaluate("window.__baud") == 115200
    page.get_by_role("button", name="Reset Dot").click()
    page.get_by_text("--- reset ---").wait_for()
    assert page.evaluate("window.__signals.length") == 2
    screenshot(page, "device-console")
    page.get_by_role("button", name="Clear").click()
    assert "wifi connected" not in log.inner_text()


# What sticks out of a 375 px page, for the assertion's message.
WIDER_THAN_375 = """[...document.querySelectorAll('main *')]
  .filter((e) => e.getBoundingClientRect().right > 376)
  .slice(0, 8)
  .map((e) => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""


def test_pages_fit_a_375_px_phone(chromium: Any, stack: Stack, watch: Watch) -> None:
    page = new_page(chromium, watch, viewport={"width": 375, "height": 812})
    try:
        sign_in(page, stack)
        for name in ("Agents", "Talk", "Dots", "Firmware", "History", "Settings"):
            go(page, name)
            page.get_by_role("heading", name=name, exact=True).wait_for()
            page.wait_for_load_state("networkidle")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, f"{name} is {width} px wide: {page.evaluate(WIDER_THAN_375)}"
            screenshot(page, f"phone-{name.lower()}")
        go(page, "Agents")
        page.get_by_role("link", name="Demo agent").first.click()
        page.locator("#tools").get_by_role("button", name="Add webhook").click()
        page.locator("#tools-webhook-0-name").wait_for()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"the agent editor is {width} px wide"
        screenshot(page, "phone-agent-editor")
        screenshot(page.locator(".entry.webhook").first, "phone-webhook")
    finally:
        page.context.close()
    assert watch.errors == [], watch.errors
