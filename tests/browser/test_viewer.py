"""Journey 7: a Viewer browses every list page of the menu and the first records linked from each, plus the
dashboard, search, notifications, tokens and audit pages. Every page answers 200 with no console error and no
failed request (the page watch), and none offers an action: no form posting a transition (``/do/``), no "New"
button. Driven by the menu found on the page, so pages added later are walked too.
"""

import re
from urllib.parse import urlsplit

from playwright.sync_api import Page

from tests.browser.conftest import shot, sign_in

DETAILS_PER_LIST = 3
# A record's page: a path ending in its number (list pages, sorting and filters are not).
DETAIL_PATH = re.compile(r"^/[\w/-]+/\d+/$")
OWN_PAGES = ("/", "/search/?q=a", "/notifications/", "/tokens/", "/audit/")


def _visit(page: Page, path: str) -> None:
    response = page.goto(path)
    assert response is not None, path
    assert response.status == 200, f"{path} answered {response.status}"
    page.wait_for_load_state("networkidle")  # what the page fetches itself (the API docs' schema) must arrive too
    assert page.locator("form[action*='/do/']").count() == 0, f"{path} offers a transition"
    assert page.get_by_role("link", name=re.compile(r"^New\b")).count() == 0, f"{path} offers a New button"
    assert page.get_by_role("button", name=re.compile(r"^New\b")).count() == 0, f"{path} offers a New button"


def _menu_links(page: Page) -> list[str]:
    hrefs = page.locator("nav[aria-label='Main'] a.dropdown-item").evaluate_all("links => links.map(a => a.href)")
    return list(dict.fromkeys(urlsplit(href).path for href in hrefs if urlsplit(href).path.startswith("/")))


def _record_links(page: Page) -> list[str]:
    hrefs = page.locator("main table a[href]").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    paths = [href for href in hrefs if href and DETAIL_PATH.match(href)]
    return list(dict.fromkeys(paths))[:DETAILS_PER_LIST]


def test_a_viewer_reads_every_page_and_is_offered_no_action(page):
    sign_in(page, "vera.viewer")
    page.goto("/")
    lists = _menu_links(page)
    assert {"/releases/", "/changes/", "/services/", "/audit/"} <= set(lists)
    visited = []
    for path in [*OWN_PAGES, *lists]:
        _visit(page, path)
        visited.append(path)
        for record in _record_links(page):
            if record not in visited:
                _visit(page, record)
                visited.append(record)
    assert sum(bool(DETAIL_PATH.match(path)) for path in visited) >= 5, visited
    page.goto("/")
    shot(page, "viewer-dashboard")
