"""Browser fixtures: one Chromium per module, a fresh context (and watch) per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.harness import CHROMIUM, CHROMIUM_FLAGS, Watch, spoken_wav

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chromium(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Depends on `database_url` only so that the database (made with asyncio.run) exists
    before Playwright's sync API claims this thread's event loop, and outlives it."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it", pytrace=False)
    wav = spoken_wav(tmp_path_factory.mktemp("mic") / "question.wav")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={wav}%noloop"],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def watch() -> Watch:
    return Watch()


def new_page(chromium: Any, watch: Watch, **options: Any) -> Any:
    context = chromium.new_context(**options)
    context.set_default_timeout(30_000)
    page = context.new_page()
    watch.attach(page)
    return page
