"""No input produces a 500: malformed JSON, wrong types, huge strings, NUL characters, ids of another type,
out-of-range numbers and dates are all answered with problem details, and nothing is written.
"""

import pytest

from releases.models import ChangeRecord, Release, ReleasePackage, ReleasePolicy
from tests.releases.api.conftest import bearer, session

pytestmark = pytest.mark.django_db

NASTY_BODIES = [
    pytest.param("{not json", id="malformed"),
    pytest.param('["a list"]', id="a list"),
    pytest.param('"a string"', id="a string"),
    pytest.param('{"name": "\\u0000", "version": "1"}', id="NUL in a name"),
    pytest.param('{"name": 5, "services": "x", "policy": [], "planned_start": 7}', id="wrong types"),
    pytest.param('{"policy": "abc"}', id="id of another type"),
    pytest.param('{"policy": 99999999999999999999999}', id="id out of range"),
    pytest.param('{"policy": -1, "services": [1.5, true]}', id="odd ids"),
    pytest.param('{"planned_start": "99999-01-01T00:00:00Z"}', id="year out of range"),
    pytest.param('{"planned_start": "9999-12-31T23:59:59-12:00"}', id="date past the end of time"),
    pytest.param('{"planned_start": "0001-01-01T00:00:00+14:00"}', id="date before the beginning"),
    pytest.param('{"els_min_duration_days": 1e999}', id="infinite number"),
    pytest.param('{"els_min_duration_days": 99999999999}', id="number out of range"),
    pytest.param('{"els_exit_criteria": {"\\u0000": 1}}', id="NUL in a JSON key"),
    pytest.param('{"description": "' + "x" * 300_000 + '"}', id="huge string"),
]


@pytest.mark.parametrize("body", NASTY_BODIES)
def test_nasty_release_bodies_are_400(world, body):
    client = session(world.people.rm)
    created = client.post("/api/v1/releases/", body, content_type="application/json")
    assert created.status_code == 400, created.content[:400]
    assert created["Content-Type"] == "application/problem+json"
    edited = client.patch(f"/api/v1/releases/{world.release.pk}/", body, content_type="application/json")
    assert edited.status_code == 400, edited.content[:400]
    assert Release.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"approvals_required": 70000, "name": "p", "release_type": "major"}', id="small int overflow"),
        pytest.param('{"gates_required": {"production": ["\\u0000"]}, "name": "p", "release_type": "major"}', id="NUL"),
        pytest.param('{"gates_required": "x", "name": "p", "release_type": "major"}', id="wrong JSON shape"),
        pytest.param('{"name": "p", "release_type": "galactic"}', id="unknown choice"),
    ],
)
def test_nasty_policy_bodies_are_400(world, body):
    response = session(world.people.rm).post("/api/v1/policies/", body, content_type="application/json")
    assert response.status_code == 400, response.content[:400]
    assert ReleasePolicy.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"duration": "999999999999 00:00:00"}, id="duration overflow"),
        pytest.param({"rrule": "FREQ=SOMETIMES"}, id="bad rule"),
        pytest.param({"first_date": "99999-01-01"}, id="date out of range"),
        pytest.param({"start_time": "25:00"}, id="hour 25"),
        pytest.param({"name": "w\x00"}, id="NUL"),
    ],
)
def test_nasty_window_bodies_are_400(world, body):
    window = {
        "name": "w",
        "first_date": "2026-01-06",
        "start_time": "22:00",
        "rrule": "FREQ=WEEKLY",
        "duration": "04:00:00",
        **body,
    }
    response = session(world.people.rm).post("/api/v1/windows/", window, format="json")
    assert response.status_code == 400, response.content[:400]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"commits": [{"sha": "a\x00"}]}, id="NUL in a commit"),
        pytest.param({"commits": "abc"}, id="commits not a list"),
        pytest.param({"work_items": [{"a": 1}]}, id="work item not a string"),
        pytest.param({"artifacts": [{"name": "a", "uri": "u", "sha256": "0" * 65}]}, id="digest too long"),
        pytest.param({"units": [{"name": "u", "kind": "spaceship"}]}, id="unknown unit kind"),
        pytest.param({"units": [{"name": "u", "kind": "database_migration", "configuration_items": ["x"]}]}, id="ci"),
        pytest.param({"release": "abc"}, id="release of another type"),
        pytest.param({"version": "v" * 101}, id="version too long"),
    ],
)
def test_nasty_package_registrations_are_400_and_write_nothing(world, body):
    registration = {"release": world.release.pk, "version": "b1", **body}
    response = bearer(world.people.ci, "packages").post("/api/v1/packages/", registration, format="json")
    assert response.status_code == 400, response.content[:400]
    assert not ReleasePackage.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"change_type": "normal", "planned_start": "2030-01-01T00:00:00Z", "planned_end": "2029-01-01T00:00:00Z"},
        {"change_type": "normal", "planned_start": "soon", "planned_end": "later"},
        {"change_type": "weird"},
        {"change_type": "normal", "title": "\x00", "planned_start": "2030-01-01T00:00:00Z"},
        {"change_type": "standard", "template": 10**40},
    ],
)
def test_nasty_changes_are_400(world, body):
    response = session(world.people.rm).post("/api/v1/changes/", body, format="json")
    assert response.status_code == 400, response.content[:400]
    assert not ChangeRecord.objects.exists()


@pytest.mark.parametrize(
    "query",
    [
        "state=%00",
        "search=%00",
        "policy=abc",
        "policy=99999999999999999999999",
        "planned_start__gte=99999-01-01",
        "ordering=-nonsense",
        "page=0",
        "page=abc",
        "page_size=100000000",
    ],
)
def test_nasty_queries_never_fail_on_the_server(world, query):
    response = session(world.people.viewer).get(f"/api/v1/releases/?{query}")
    assert response.status_code in (200, 400, 404), response.content[:400]


@pytest.mark.parametrize("path", ["checklist/?tier=%00", "verify-evidence/", "units/"])
def test_nasty_action_inputs_are_answered_without_a_server_error(world, path):
    client = session(world.people.rm)
    url = f"/api/v1/releases/{world.release.pk}/{path}"
    if "checklist" in path:
        response = client.get(url)
    else:
        response = client.post(url, '{"evidence": "x"}', content_type="application/json")
    assert response.status_code == 400, response.content[:400]
