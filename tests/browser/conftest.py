"""Browser tests: admin pages in a real headless Chromium (Debian's ``/usr/bin/chromium``,
driven by playwright's sync API), served by pytest-django's ``live_server``.

One browser for all of this package (a package-scoped fixture): playwright's sync API runs
an asyncio loop in the test thread for as long as it is started, and Django refuses ORM
calls from a thread with a running loop. So ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set only
while the browser is up, and the browser stops when this package's tests are done, before
any other test runs with that loop around.

A missing Chromium skips these tests with the reason, except under ``CI=true``, where it
fails them: CI installs it (.ci/run).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.test import Client

from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "var" / "screenshots"
# The probe's flags: no sandbox as root, and none of Chromium's own network traffic.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def check_chromium(path: str = CHROMIUM) -> None:
    """Skip when there is no Chromium, with the reason; fail instead under ``CI=true``."""
    if Path(path).exists():
        return
    reason = f"no Chromium at {path} (apt-get install chromium; .ci/run does)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="package")
def browser():
    check_chromium()
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def admin_page(browser, transactional_db, live_server, admin_user):
    """A page logged in to the admin as a superuser, on the live server."""
    client = Client()
    client.force_login(admin_user)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    """Save the whole page under var/screenshots/ (gitignored) for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    # From the top: after an anchor scrolled it, the admin's sticky sidebar would be drawn
    # where the viewport was, halfway down the full-page picture.
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=True)
    return path
