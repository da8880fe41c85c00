"""The DORA metrics page, through Django's test client: what it shows of ``dora_world``, who may see it, bad
filters kept and explained, and a query count that does not grow with the rows."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from deployments.choices import DeploymentState
from deployments.models import Deployment, Incident
from rdm_site.roles import Role
from tests.deployments.dora_world import at, dora_world
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PAGE = reverse("deployments:dora")
MARCH = {"from": "2025-03-01", "to": "2025-03-31"}


@pytest.fixture
def viewer():
    return UserFactory(username="vera", roles=[Role.VIEWER])


def card(page: str, key: str) -> str:
    start = page.index(f'data-key="{key}"')
    return page[start : page.index("</article>", start)]


def test_a_viewer_reads_the_four_keys_their_levels_and_trends(client, viewer):
    world = dora_world()
    client.force_login(viewer)

    page = client.get(PAGE, MARCH).content.decode()

    frequency = card(page, "deployment_frequency")
    assert 'data-level="high"' in frequency
    assert "0.32 a day" in frequency  # 10 / 31
    assert "10 production deployment(s)" in frequency
    assert "better; before: 0.45 a week" in frequency  # 2 / 31 a day, 7 times that a week
    lead = card(page, "lead_time")
    assert "27 h" in lead
    assert "90 % within 42 h" in lead
    assert "worse; before: 12 h" in lead
    failures = card(page, "change_failure_rate")
    assert 'data-level="low"' in failures
    assert "60 %" in failures
    assert "6 of 10 deployment(s)" in failures
    assert "7.0 h" in card(page, "time_to_restore")
    assert "6 of 8 release(s)" in page  # the release success rate
    assert "2 of 4 change(s)" in page  # the emergency-change share
    assert 'id="dora-series"' in page
    assert 'data-starts="2025-03-03"' in page  # weeks, from Monday
    csv_link = "/api/v1/metrics/dora/?service=&amp;environment=&amp;from=2025-03-01&amp;to=2025-03-31&amp;period=week"
    assert f"{csv_link}&amp;format=csv" in page

    shop = client.get(PAGE, {**MARCH, "service": world.shop.pk, "period": "month"}).content.decode()
    assert "6 production deployment(s)" in card(shop, "deployment_frequency")
    assert f'<option value="{world.shop.pk}" selected>shop</option>' in shop
    assert '<option value="month" selected>Month</option>' in shop


def test_someone_without_a_role_may_not_and_a_stranger_signs_in_first(client):
    client.force_login(UserFactory(username="nobody"))
    assert client.get(PAGE).status_code == 403

    client.logout()
    answer = client.get(PAGE)
    assert answer.status_code == 302
    assert answer.url.startswith(reverse("login"))


def test_bad_filters_are_kept_and_explained_next_to_their_fields(client, viewer):
    client.force_login(viewer)

    answer = client.get(PAGE, {"from": "2025-04-01", "to": "2025-03-01"})

    assert answer.status_code == 200
    page = answer.content.decode()
    assert 'id="dora-from-errors">The first day comes on or before the last' in page
    assert 'value="2025-04-01"' in page  # as given
    assert "data-key=" not in page  # no figures for a question that makes no sense
    assert "Download CSV" not in page

    page = client.get(PAGE, {"to": "31/03/2025", "period": "fortnight"}).content.decode()
    assert 'id="dora-to-errors">Date has wrong format.' in page
    assert 'id="dora-period-errors">&quot;fortnight&quot; is not a valid choice.' in page
    assert 'value="31/03/2025"' in page


def test_the_page_costs_the_same_queries_whatever_the_rows(client, viewer):
    world = dora_world()
    client.force_login(viewer)
    query = {**MARCH, "service": world.shop.pk}
    with CaptureQueriesContext(connection) as few:
        assert client.get(PAGE, query).status_code == 200

    first = world.deployments["D1"]
    for day in range(40):
        more = Deployment.objects.create(
            service=world.shop,
            environment=world.production,
            process=first.process,
            package=first.package,
            model="big_bang",
            state=DeploymentState.FAILED if day % 3 else DeploymentState.SUCCEEDED,
            started_at=at(3, 1) + timedelta(hours=18 * day),
            finished_at=at(3, 1) + timedelta(hours=18 * day + 1),
        )
        Incident.objects.create(
            title="more", severity="p3", deployment=more, opened_at=more.finished_at, resolved_at=at(3, 31)
        )
    with CaptureQueriesContext(connection) as many:
        page = client.get(PAGE, query).content.decode()

    assert "46 production deployment(s)" in page
    assert len(many) == len(few)
