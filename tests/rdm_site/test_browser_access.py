"""Every browser page asks who you are first: anonymous requests to any page, read or write, go to the
sign-in page (or are refused), whatever the page. Walks the URL configuration, so new pages are covered.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

# Pages that are public on purpose, and parts that answer for themselves (API: 401; admin: its own login; the
# calendar feed: its secret address is the credential, 404 without it).
PUBLIC = {"login", "logout", "healthz", "readyz", "metrics", "calendar_feed"}
OWN_AUTHENTICATION = ("api/", "admin/")


def _browser_routes(resolver: URLResolver | None = None, prefix: str = ""):
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if route.startswith(OWN_AUTHENTICATION):
            continue
        if isinstance(entry, URLResolver):
            yield from _browser_routes(entry, route)
        elif isinstance(entry, URLPattern) and entry.name not in PUBLIC:
            yield route


def _concrete(route: str) -> str:
    """A path for a route: 1 for each number, "x" for each other argument."""
    path = route
    for converter, value in (("int:", "1"), ("str:", "x"), ("slug:", "x"), ("path:", "x")):
        while f"<{converter}" in path:
            start = path.index(f"<{converter}")
            path = path[:start] + value + path[path.index(">", start) + 1 :]
    return "/" + path


ROUTES = sorted({_concrete(route) for route in _browser_routes()})


def test_the_walk_finds_the_pages():
    assert {"/", "/releases/", "/changes/", "/services/", "/audit/", "/tokens/"} <= set(ROUTES)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_visitors_are_sent_to_sign_in(client, path, method):
    response = getattr(client, method)(path)
    if response.status_code == 405:  # the page does not take this method at all
        return
    assert response.status_code == 302, f"{method.upper()} {path} answered {response.status_code}"
    assert response["Location"].startswith("/accounts/login/")
