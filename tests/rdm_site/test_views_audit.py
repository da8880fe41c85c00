"""The audit trail page: filters, links to the records that still have a page, a cost that does not grow."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rdm_site.audit import audit_record
from rdm_site.models import AuditEvent
from rdm_site.roles import Role
from rdm_site.views import audit_object_links
from tests.factories import UserFactory
from tests.releases.factories import ReleaseFactory


@pytest.fixture
def vera(db):
    return UserFactory(username="vera", roles=[Role.VIEWER])


def _audited_releases(n: int):
    releases = ReleaseFactory.create_batch(n)
    for release in releases:
        audit_record(actor=None, action="release.test", target=release)
    return releases


def _queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


@pytest.mark.django_db
def test_rows_link_to_their_records_resolved_in_one_query_per_type(client, vera):
    releases = _audited_releases(2)
    client.force_login(vera)
    small = _queries(client, "/audit/")
    releases += _audited_releases(18)
    assert _queries(client, "/audit/") == small
    html = client.get("/audit/?action=release.test").content.decode()
    for release in releases:
        assert f'href="{release.get_absolute_url()}"' in html


@pytest.mark.django_db
def test_filters_narrow_the_rows_and_the_export_keeps_them(client, vera):
    first, _ = _audited_releases(2)
    client.force_login(vera)
    page = client.get("/audit/", {"object_type": "releases.release", "object_id": str(first.pk)})
    assert {event.object_id for event in page.context["object_list"]} == {str(first.pk)}
    assert f"/audit/export.csv?object_type=releases.release&amp;object_id={first.pk}" in page.content.decode()


@pytest.mark.django_db
def test_an_event_about_a_missing_record_or_one_without_a_page_has_no_link():
    events = [
        AuditEvent(object_type="releases.release", object_id="999999"),
        AuditEvent(object_type="nosuch.model", object_id="1"),
        AuditEvent(object_type="rdm_site.auditevent", object_id="1"),
    ]
    assert audit_object_links(events) == {}


@pytest.mark.django_db
def test_the_audit_trail_needs_its_permission(client):
    client.force_login(UserFactory(username="nobody"))
    assert client.get("/audit/").status_code == 403
