"""List pagination at scale: counts that fall back to PostgreSQL's estimate past a threshold (exact below it),
cursor links past the first pages that walk a whole list without gaps or repeats both ways, and filters of
records too many for a select taking ids."""

import re
from html import unescape

import pytest
from django.core.paginator import PageNotAnInteger
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from rdm_site import pagination, web
from rdm_site.audit import audit_record
from rdm_site.models import AuditEvent
from rdm_site.pagination import (
    ListPaginator,
    bounded_counts,
    cursor_at,
    decode_cursor,
    estimated_count,
    keyset_keys,
)
from rdm_site.roles import Role
from releases.models import Release
from tests.cmdb.factories import ConfigurationItemFactory
from tests.factories import UserFactory
from tests.releases.factories import PackageFactory, PolicyFactory, ReleaseFactory, ServiceFactory

pytestmark = pytest.mark.django_db

LINK = re.compile(r'<a class="page-link" rel="(prev|next)" href="([^"]+)">([^<]+)</a>')


@pytest.fixture
def viewer(client):
    client.force_login(UserFactory(username="vera", roles=[Role.VIEWER]))
    return client


def _releases(n: int) -> list[Release]:
    """``n`` releases created at one instant: the primary key alone orders them, as ties do in a big table."""
    policy, service, manager = PolicyFactory(), ServiceFactory(), UserFactory(roles=[Role.RELEASE_MANAGER])
    made = ReleaseFactory.create_batch(n, policy=policy, services=[service], release_manager=manager)
    Release.objects.update(created=timezone.now())
    return made


def _analyze(table: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")


def _links(html: str) -> dict[str, tuple[str, str]]:
    """The page's pagination links: rel -> (label, href)."""
    return {rel: (label, unescape(href)) for rel, href, label in LINK.findall(html)}


def _shown_releases(response) -> list[int]:
    return [row.record.pk for row in response.context["table"].page.object_list]


def test_a_count_past_the_threshold_is_the_planners_estimate_and_reads_about(viewer, monkeypatch):
    _releases(60)
    _analyze("releases_release")
    monkeypatch.setattr(pagination, "ESTIMATE_ABOVE", 40)

    response = viewer.get("/releases/")

    paginator = response.context["table"].paginator
    assert paginator.count_is_estimate
    assert paginator.count == estimated_count(Release.objects.all()) > 40
    assert f"about {paginator.count} rows" in response.content.decode()


def test_bounded_counts_are_exact_up_to_the_threshold_and_the_estimate_past_it(monkeypatch):
    made = _releases(50)
    _analyze("releases_release")
    monkeypatch.setattr(pagination, "ESTIMATE_ABOVE", 50)
    few = Release.objects.filter(pk__in=[release.pk for release in made[:3]])
    assert bounded_counts([Release.objects.all(), few, Release.objects.filter(pk__in=[])]) == [
        (50, False),
        (3, False),
        (0, False),
    ]

    ReleaseFactory()  # one past the threshold, the statistics not yet knowing it
    monkeypatch.setattr(pagination, "ESTIMATE_ABOVE", 40)

    with CaptureQueriesContext(connection) as queries:
        [(count, estimated), counted_few] = bounded_counts([Release.objects.all(), few])
    assert estimated
    assert count == max(estimated_count(Release.objects.all()), 41) >= 41
    assert counted_few == (3, False)
    assert queries.captured_queries[0]["sql"].count("LIMIT 41") == 2  # at most one row past the threshold
    assert len(queries.captured_queries) == 2  # the counts, then the planner's estimate of the one past it


def test_the_pipeline_board_says_about_for_a_state_past_the_threshold(viewer, monkeypatch):
    _releases(45)  # drafts
    _analyze("releases_release")
    monkeypatch.setattr(pagination, "ESTIMATE_ABOVE", 40)

    response = viewer.get("/")

    drafts = response.context["pipeline"].columns[0]
    assert drafts.count_is_estimate
    assert drafts.count >= 41
    assert f"about {drafts.count}" in response.content.decode()


def test_a_count_below_the_threshold_is_exact(viewer):
    _releases(30)
    _analyze("releases_release")

    response = viewer.get("/releases/")

    paginator = response.context["table"].paginator
    assert (paginator.count, paginator.count_is_estimate) == (30, False)
    assert "Page 1 of 2 · 30 rows" in response.content.decode()


def test_an_estimate_gives_way_to_the_exact_count_on_the_last_page(monkeypatch):
    _releases(30)
    _analyze("releases_release")
    monkeypatch.setattr(pagination, "ESTIMATE_ABOVE", 5)
    paginator = ListPaginator(Release.objects.order_by("-created", "-id"), 25)

    assert paginator.count_is_estimate
    page = paginator.page(2)

    assert (len(page), paginator.count, paginator.count_is_estimate, page.has_next()) == (5, 30, False, False)


def test_past_the_first_pages_older_and_newer_walk_the_whole_list_by_cursor(viewer, monkeypatch):
    made = _releases(60)
    monkeypatch.setattr(pagination, "KEYSET_FROM_PAGE", 1)
    newest_first = [release.pk for release in sorted(made, key=lambda release: -release.pk)]

    response = viewer.get("/releases/?state=draft")
    pages = [_shown_releases(response)]
    while "next" in (links := _links(response.content.decode())):
        label, href = links["next"]
        assert label == "Older"
        assert "after=" in href
        assert "page=" not in href
        assert "state=draft" in href
        response = viewer.get(f"/releases/{href}")
        pages.append(_shown_releases(response))

    assert [len(page) for page in pages] == [25, 25, 10]
    assert [pk for page in pages for pk in page] == newest_first
    back = []
    while "prev" in (links := _links(response.content.decode())):
        label, href = links["prev"]
        response = viewer.get(f"/releases/{href}")
        back.append(_shown_releases(response))
    assert label == "Newest"
    assert back == [pages[1], pages[0], pages[0]]


def test_a_cursor_page_costs_the_queries_of_the_first_page(viewer, monkeypatch):
    made = _releases(40)
    monkeypatch.setattr(pagination, "KEYSET_FROM_PAGE", 1)
    after = cursor_at(Release.objects.all(), 25)

    with CaptureQueriesContext(connection) as first:
        viewer.get("/releases/")
    with CaptureQueriesContext(connection) as deep:
        response = viewer.get(f"/releases/?after={after}")

    assert _shown_releases(response) == sorted((release.pk for release in made), reverse=True)[25:]
    assert len(deep) == len(first)


def test_a_list_sorted_by_a_column_that_may_be_empty_keeps_page_numbers():
    assert keyset_keys(Release.objects.order_by("planned_start")) is None  # planned_start may be null
    keys = keyset_keys(Release.objects.order_by("name"))
    assert [(key.path, key.descending) for key in keys] == [("name", False), ("pk", False)]


def test_a_tampered_cursor_shows_the_first_page_of_a_table_and_404_on_the_audit_trail(viewer):
    _releases(3)
    with pytest.raises(PageNotAnInteger):
        decode_cursor("bm90IGEgY3Vyc29y", keyset_keys(Release.objects.all()))

    assert len(_shown_releases(viewer.get("/releases/?after=bm90IGEgY3Vyc29y"))) == 3
    assert viewer.get("/audit/?after=WyJub3QgYW4gaWQiXQ").status_code == 404


def test_the_audit_trail_pages_by_cursor_past_its_first_pages(viewer, monkeypatch):
    for number in range(120):
        audit_record(actor=None, action=f"test.event{number}")
    monkeypatch.setattr(pagination, "KEYSET_FROM_PAGE", 2)
    newest_first = list(AuditEvent.objects.order_by("-id").values_list("pk", flat=True))

    first = viewer.get("/audit/")
    second = viewer.get("/audit/" + _links(first.content.decode())["next"][1])
    third = viewer.get("/audit/" + _links(second.content.decode())["next"][1])

    assert _links(first.content.decode())["next"][0] == "Next"  # page numbers before the threshold
    assert _links(second.content.decode())["next"][0] == "Older"
    shown = [[event.pk for event in page.context["object_list"]] for page in (first, second, third)]
    assert [pk for page in shown for pk in page] == newest_first


def test_a_filter_among_more_records_than_a_select_lists_takes_ids(viewer, monkeypatch):
    other = PackageFactory()
    monkeypatch.setattr(web, "SELECT_AT_MOST", 0)

    html = viewer.get("/deployments/").content.decode()
    assert re.search(r'<input type="number" name="package"[^>]*min="1"', html)
    assert f'<option value="{other.pk}"' not in html
    first, second = ConfigurationItemFactory.create_batch(2)
    page = viewer.get(f"/changes/?configuration_items={first.pk},{second.pk}")
    assert page.context["filter"].is_valid()
    assert re.search(
        rf'<input type="text" name="configuration_items" value="{first.pk}, {second.pk}"'
        r'[^>]*placeholder="Ids, comma separated"',
        page.content.decode(),
    )
