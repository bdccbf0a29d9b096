"""The dashboard in a real browser: Debian's Chromium driven by Playwright for Python, against a
real server (uvicorn in a thread, a real SQLite file, the real sandbox).

Every page fails its test on a browser console error or an uncaught exception, except the
failed requests a test says it expects (`console.expect(403, "/machines")`): Chromium logs each
non-2xx response as a console error, and some tests cause them on purpose."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, expect, sync_playwright

from api.app import create_app
from api.bootstrap import init
from api.services import Services
from api.settings import Settings
from runtime.engine import Runtime
from tests.conftest import TEST_SECRET, Server
from tests.support.client import Admin, Api
from tests.support.databases import sqlite_url
from tests.support.server import REPO, run_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = REPO / "docs" / "screenshots"
LAPTOP = {"width": 1366, "height": 860}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 30_000   # a generous deadline for conditions in the page; nothing sleeps
FAILED_REQUEST = re.compile(
    r"^Failed to load resource: the server responded with a status of (\d+)"
)



# Module-scoped, not session-scoped: while Playwright's sync API is open, the main thread has
# a running event loop, and the tests after these that call asyncio.run() would fail.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        missing = "the dashboard's browser tests need Debian's Chromium: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(missing + " (.ci/run installs it)")
        pytest.skip(missing)
    if not (REPO / "dashboard" / "dist" / "index.html").is_file():
        pytest.fail("the dashboard is not built: run `make setup`")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


def dash_settings(directory: Path, **overrides: Any) -> Settings:
    """A real SQLite file (the API's own tests cover PostgreSQL too)."""
    return Settings(database_url=sqlite_url(directory), secret=TEST_SECRET, window_s=5.0,
                    **overrides)


@contextmanager
def serve(settings: Settings, runtime: Runtime) -> Iterator[Server]:
    app = create_app(settings, runtime=runtime)
    services: Services = app.state.services
    made = init(settings, services.db)
    with run_server(app) as url:
        yield Server(url, app, settings, Admin(made.org_id, made.key_id, made.secret))


@pytest.fixture
def dash(tmp_path: Path, shared_runtime: Runtime) -> Iterator[Server]:
    with serve(dash_settings(tmp_path), shared_runtime) as server:
        yield server


@pytest.fixture
def api(dash: Server) -> Iterator[Api]:
    client = dash.client()
    yield client
    client.close()


@dataclass
class Console:
    """What a page said in its console; `check` fails on anything not expected."""

    messages: list[str] = field(default_factory=list)
    expected: list[tuple[int, str]] = field(default_factory=list)

    def expect(self, status: int, path: str) -> None:
        """A request whose URL's path contains `path`, answered `status`, is expected."""
        self.expected.append((status, path))

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        failed = FAILED_REQUEST.match(message.text)
        if failed:
            path = urlparse(message.location.get("url", "")).path
            if any(int(failed[1]) == s and p in path for s, p in self.expected):
                return
        self.messages.append(f"console.error: {message.text} at {message.location}")

    def on_page_error(self, error: Any) -> None:
        self.messages.append(f"uncaught: {error}")

    def check(self) -> None:
        assert self.messages == [], "\n".join(self.messages)


@pytest.fixture
def console() -> Console:
    return Console()


def open_page(browser: Browser, console: Console, viewport: dict[str, int]) -> Page:
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.on("console", console.on_console)
    page.on("pageerror", console.on_page_error)
    return page


@pytest.fixture
def page(browser: Browser, console: Console, dash: Server) -> Iterator[Page]:
    """A laptop-sized page; closed before the server (`dash`) stops, so nothing it still does
    (a log poll, a live connection) meets a server that is gone."""
    page = open_page(browser, console, LAPTOP)
    yield page
    # No error reached the page's own "something went wrong" box, nor the console.
    expect(page.locator("#unexpected")).to_have_count(0)
    page.context.close()
    console.check()


expect.set_options(timeout=WAIT_MS)


def sign_in(
    page: Page, server: Server, key_id: str | None = None, secret: str | None = None
) -> None:
    page.goto(server.url + "/dashboard/")
    page.get_by_label("Key id", exact=True).fill(key_id or server.admin.key_id)
    page.get_by_label("Secret", exact=True).fill(secret or server.admin.secret)
    page.get_by_role("button", name="Sign in").click()


def screenshot(page: Page, name: str, directory: Path) -> Path:
    """A full-page screenshot, into docs/screenshots/ (the README's images) when
    BACKSTATE_SCREENSHOTS=1, else into the test's own folder: ids and times differ on every
    run, so refreshing the committed images is a choice, not a side effect of `make test`."""
    if os.environ.get("BACKSTATE_SCREENSHOTS") == "1":
        directory = SCREENSHOTS
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a page, not a blank
    return path
