"""``/api/v1/policies/``, ``/windows/`` and ``/freezes/``: the rules releases are governed by, written by Release
Managers through the audited services.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from rdm_site.models import AuditEvent
from releases.models import FreezePeriod, ReleasePolicy
from tests.releases.api.conftest import bearer, session
from tests.releases.factories import FreezeFactory, WindowFactory

pytestmark = pytest.mark.django_db


def test_a_release_manager_creates_and_edits_a_policy(world):
    client = bearer(world.people.rm, "releases")
    made = client.post(
        "/api/v1/policies/",
        {
            "name": "major",
            "release_type": "major",
            "approvals_required": 2,
            "gates_required": {"production": ["plan_approved", "tests_passed"], "staging": ["tests_passed"]},
            "required_test_suites": ["regression", "e2e"],
        },
        format="json",
    )
    assert made.status_code == 201, made.content
    assert made.json()["approver_roles"] == ["Release Manager", "Service Owner"]
    edited = client.patch(f"/api/v1/policies/{made.json()['id']}/", {"lead_time_days": 9}, format="json")
    assert edited.json()["lead_time_days"] == 9
    assert AuditEvent.objects.filter(action__startswith="releasepolicy.").count() == 2


def test_a_policy_with_unknown_gates_or_a_taken_name_is_refused_with_every_problem(world):
    client = session(world.people.rm)
    response = client.post(
        "/api/v1/policies/",
        {"name": world.policy.name, "release_type": "minor", "gates_required": {"moon": ["x"]}},
        format="json",
    )
    assert response.status_code == 400
    assert len(response.json()["errors"]) >= 2
    assert ReleasePolicy.objects.count() == 1


def test_a_policy_sets_its_incident_correlation_window_of_at_least_an_hour(world):
    client = bearer(world.people.rm, "releases")
    url = f"/api/v1/policies/{world.policy.pk}/"
    assert client.get(url).json()["incident_correlation_hours"] == 72
    edited = client.patch(url, {"incident_correlation_hours": 96}, format="json")
    assert edited.json()["incident_correlation_hours"] == 96
    event = AuditEvent.objects.get(action="releasepolicy.update")
    assert event.changes == {"incident_correlation_hours": [72, 96]}

    refused = client.patch(url, {"incident_correlation_hours": 0}, format="json")
    assert refused.status_code == 400
    assert refused.json()["errors"] == {
        "incident_correlation_hours": ["Ensure this value is greater than or equal to 1."]
    }
    world.policy.refresh_from_db()
    assert world.policy.incident_correlation_hours == 96


def test_policies_are_listed_and_filtered(world):
    client = session(world.people.viewer)
    assert client.get("/api/v1/policies/?release_type=minor").json()["count"] == 1
    assert client.get("/api/v1/policies/?release_type=major").json()["count"] == 0
    assert client.get(f"/api/v1/policies/{world.policy.pk}/").json()["name"] == "minor"


def test_a_window_is_created_in_its_time_zone_and_tells_when_it_next_opens(world):
    made = session(world.people.rm).post(
        "/api/v1/windows/",
        {
            "name": "Tuesday nights",
            "first_date": "2026-01-06",
            "start_time": "22:00",
            "rrule": "FREQ=WEEKLY;BYDAY=TU",
            "duration": "04:00:00",
            "time_zone": "Europe/Berlin",
            "environments": [world.production.pk],
        },
        format="json",
    )
    assert made.status_code == 201, made.content
    assert made.json()["next_opens_at"]
    assert made.json()["environments"] == [world.production.pk]
    bad = session(world.people.rm).patch(f"/api/v1/windows/{made.json()['id']}/", {"time_zone": "Mars/Olympus"})
    assert bad.status_code == 400


def test_windows_are_filtered_by_environment(world):
    WindowFactory(environments=[world.production])
    client = session(world.people.viewer)
    assert client.get(f"/api/v1/windows/?environments={world.production.pk}").json()["count"] == 1
    assert client.get(f"/api/v1/windows/?environments={world.staging.pk}").json()["count"] == 0


def test_a_freeze_is_declared_by_its_author_and_edited(world):
    start = timezone.now() + timedelta(days=30)
    made = session(world.people.rm).post(
        "/api/v1/freezes/",
        {
            "name": "Year end",
            "start": start.isoformat(),
            "end": (start + timedelta(days=7)).isoformat(),
            "reason": "Peak trading.",
            "services": [world.service.pk],
        },
        format="json",
    )
    assert made.status_code == 201, made.content
    assert made.json()["created_by"] == "rm"
    url = f"/api/v1/freezes/{made.json()['id']}/"
    backwards = session(world.people.rm).patch(url, {"end": start.isoformat()}, format="json")
    assert backwards.status_code == 400
    assert session(world.people.rm).patch(url, {"reason": "Peak."}, format="json").json()["reason"] == "Peak."


def test_freezes_in_force_are_found_by_their_bounds(world):
    FreezeFactory(start=timezone.now() - timedelta(days=1), end=timezone.now() + timedelta(days=1))
    now = timezone.now().isoformat().replace("+", "%2B")
    client = session(world.people.viewer)
    assert client.get(f"/api/v1/freezes/?start__lt={now}&end__gte={now}").json()["count"] == 1


@pytest.mark.parametrize("person", ["dm", "ca", "ea", "ci", "so", "viewer"])
def test_only_release_managers_write_the_rules(world, person):
    client = session(getattr(world.people, person))
    assert client.post("/api/v1/policies/", {"name": "p", "release_type": "major"}).status_code == 403
    start = timezone.now()
    freeze = {"name": "f", "start": start.isoformat(), "end": (start + timedelta(days=1)).isoformat(), "reason": "r"}
    assert client.post("/api/v1/freezes/", freeze, format="json").status_code == 403
    assert client.patch(f"/api/v1/policies/{world.policy.pk}/", {"active": False}).status_code == 403
    assert not FreezePeriod.objects.exists()


def test_rules_are_never_deleted(world):
    assert session(world.people.rm).delete(f"/api/v1/policies/{world.policy.pk}/").status_code == 405
