"""The console signed in through Supabase Auth (supabase-js), against a loopback fake of
the Auth endpoints that issues ES256 tokens from a JWKS the platform API is pointed at
(SUPABASE_URL): password sign-in, sign-up, and the magic link (PKCE)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.web.conftest import new_page
from tests.web.fake_supabase import FakeSupabase, Running
from tests.web.harness import Stack, Watch, opendot_up, screenshot

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def supabase() -> Iterator[FakeSupabase]:
    running = Running(FakeSupabase())
    running.start()
    try:
        yield running.fake
    finally:
        running.stop()


@pytest.fixture(scope="module")
def stack(
    database_url: str, supabase: FakeSupabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with opendot_up(
        database_url,
        tmp_path_factory.mktemp("supabase-up"),
        SUPABASE_URL=supabase.url,
        SUPABASE_ANON_KEY="anon-key-for-tests",
        PLATFORM_AUTH_REQUIRED="true",
    ) as found:
        yield found


@pytest.fixture
def page(chromium: Any, watch: Watch) -> Iterator[Any]:
    page = new_page(chromium, watch, viewport={"width": 1280, "height": 900})
    yield page
    page.context.close()
    assert watch.errors == [], watch.errors


def test_password_sign_in_through_supabase_js(
    page: Any, stack: Stack, supabase: FakeSupabase
) -> None:
    supabase.add("supa@example.test", "supa-password", "Supa User")
    page.goto(stack.console_url)
    page.get_by_role("tab", name="Email me a link").wait_for()  # Supabase mode
    page.get_by_label("Email", exact=True).fill("supa@example.test")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in", exact=True).last.click()
    page.get_by_role("alert").filter(has_text="Invalid login credentials").wait_for()
    page.get_by_label("Password").fill("supa-password")
    page.get_by_role("button", name="Sign in", exact=True).last.click()
    # The API accepted supabase-js's token: it lists (no) agents and creates one.
    page.get_by_text("No agents yet").wait_for()
    page.get_by_label("New agent name").fill("Supabase agent")
    page.get_by_role("button", name="Create agent").click()
    page.get_by_role("heading", name="Supabase agent").wait_for()
    assert "token:password" in supabase.requests
    screenshot(page, "supabase-agent")


def test_sign_up_and_magic_link(page: Any, stack: Stack, supabase: FakeSupabase) -> None:
    page.goto(stack.console_url)
    page.get_by_role("tab", name="Create account").click()
    page.get_by_label("Email", exact=True).fill("new.supa@example.test")
    page.get_by_label("Your name (optional)").fill("New Supa")
    page.get_by_label("Password").fill("a strong password")
    page.get_by_role("button", name="Create account").last.click()
    page.get_by_role("heading", name="Agents").wait_for()
    assert page.get_by_role("banner").get_by_text("New Supa").is_visible()
    page.get_by_role("button", name="Sign out").click()

    page.get_by_role("tab", name="Email me a link").click()
    page.get_by_label("Email", exact=True).fill("new.supa@example.test")
    page.get_by_role("button", name="Send the link").click()
    page.get_by_text("We sent a sign-in link to new.supa@example.test").wait_for()
    link = supabase.outbox[-1]["link"]
    assert link.startswith(stack.console_url)
    page.goto(link)  # opening the email's link: supabase-js exchanges the code (PKCE)
    page.get_by_role("heading", name="Agents").wait_for()
    assert "token:pkce" in supabase.requests
