"""Browser journeys: Debian's Chromium driven by Playwright against the app served by gunicorn (as in
production), with a real Celery worker, on the demo data ``make run`` loads.

Chromium is required: a missing browser fails the run (``.ci/run`` installs Debian's ``chromium``); it
never skips. Every page a test opens is watched: a console error or a failed request fails the test.
A full-page screenshot of each journey's last page is saved under ``test-artifacts/`` (git-ignored);
``shot(page, name)`` saves more on the way.
"""

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from playwright.sync_api import Page, sync_playwright

# Playwright's sync API keeps an event loop on the main thread; the ORM calls the tests make there are still
# synchronous (Playwright's own documentation for Django tests).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("RDM_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="session")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is required for the browser tests and is not at {CHROMIUM}: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


@pytest.fixture
def site(transactional_db, web_server, celery_worker):
    """The demo data on the live server (with a worker running); yields the server's base URL."""
    call_command("demo_load", stdout=open(os.devnull, "w"))  # noqa: SIM115 - closed with the process
    return web_server


class PageWatch:
    """What went wrong on the pages of a test: console errors and failed requests."""

    def __init__(self):
        self.problems: list[str] = []
        self.expected_statuses: set[int] = set()

    def console(self, message):
        if message.type == "error" and not self._expected(message.text):
            self.problems.append(f"console error: {message.text}")

    def response(self, response):
        if response.status >= 400 and response.status not in self.expected_statuses:
            self.problems.append(f"{response.status} {response.request.method} {response.url}")

    def request_failed(self, request):
        self.problems.append(f"failed {request.method} {request.url}: {request.failure}")

    def _expected(self, text: str) -> bool:
        # The browser logs a console error for every response it was told to expect as refused.
        return any(f"status of {status}" in text for status in self.expected_statuses)


@pytest.fixture
def page(request, chromium, site) -> Page:
    """A fresh browser tab (1366 by 900) on the live site; fails the test on a console error or a failed request.
    A test that provokes a refusal on purpose says so with ``page.watch.expected_statuses.add(403)``.
    """
    context = chromium.new_context(base_url=site, viewport={"width": 1366, "height": 900})
    tab = context.new_page()
    watch = PageWatch()
    tab.on("console", watch.console)
    tab.on("response", watch.response)
    tab.on("requestfailed", watch.request_failed)
    tab.watch = watch
    tab.site = site
    yield tab
    ARTIFACTS.mkdir(exist_ok=True)
    if not tab.is_closed() and tab.url.startswith("http"):
        tab.screenshot(path=ARTIFACTS / f"{_file_name(request.node.name)}.png", full_page=True)
    context.close()
    assert not watch.problems, "the pages reported problems:\n" + "\n".join(watch.problems)


def _file_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/ and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{_file_name(name)}.png"
    page.screenshot(path=path, full_page=True)
    return path


def sign_in(page: Page, username: str) -> User:
    """Sign ``username`` in by giving the tab a session cookie (the sign-in form has a test of its own)."""
    user = User.objects.get(username=username)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    host = urlsplit(page.site).hostname
    page.context.clear_cookies()
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session.session_key, "domain": host, "path": "/"}]
    )
    return user


def axe_violations(page: Page, *, impacts=("serious", "critical")) -> list[str]:
    """Run axe-core on the current page; the violations of the given impacts, one line each."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{violation['impact']}: {violation['id']}: {violation['help']} "
        f"({', '.join(str(node['target']) for node in violation['nodes'][:3])})"
        for violation in result["violations"]
        if violation["impact"] in impacts
    ]


def forged_post(page: Page, path: str, data: dict[str, str]) -> int:
    """POST ``data`` to ``path`` from the signed-in tab, with its CSRF token, as a forged form would; the status."""
    token = next(cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "csrftoken")
    response = page.request.post(path, form=data, headers={"X-CSRFToken": token, "Referer": page.url})
    return response.status
