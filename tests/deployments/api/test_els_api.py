"""The ELS collection and incident correlation through the API: what they show, their transitions, and DESIGN.md's
"Who may do what" for them (every role by session, by a token with the row's scope, by a read-only token).
Service Owners act on the periods of their own services: each cell's period belongs to a service its caller
owns, and a Service Owner is refused on somebody else's."""

from datetime import timedelta

import pytest
from django.utils import timezone

from deployments.choices import CorrelationMethod, DeploymentState, ElsState
from deployments.incidents import incident_open
from deployments.models import Deployment, EarlyLifeSupport, Target
from rdm_site.models import AuditEvent
from rdm_site.roles import Role
from tests.api.matrix import cells
from tests.deployments.api.conftest import session_client
from tests.deployments.conftest import make_landscape
from tests.factories import UserFactory
from tests.releases.factories import PackageFactory

pytestmark = pytest.mark.django_db

ELS_ROW = "start, extend, exit ELS"
INCIDENTS_ROW = "open, update, resolve incidents"


def period(owner=None, state=ElsState.ACTIVE) -> EarlyLifeSupport:
    """A period of a production deployment of a release of a service ``owner`` owns, started four days ago."""
    world = make_landscape(targets=1, tier="production")
    if owner is not None:
        world.service.owner = owner
        world.service.save(update_fields=["owner"])
    package = PackageFactory(release__services=[world.service])
    deployment = Deployment.objects.create(
        service=world.service,
        environment=world.environment,
        process=world.process,
        package=package,
        model="big_bang",
        state=DeploymentState.SUCCEEDED,
        finished_at=timezone.now() - timedelta(days=4),
    )
    started = timezone.now() - timedelta(days=4)
    running = state != ElsState.SCHEDULED
    return EarlyLifeSupport.objects.create(
        deployment=deployment,
        release=package.release,
        state=state,
        exit_criteria={"max_open_p1_p2": 0, "max_incidents": 3} if running else {},
        min_duration_days=3,
        started_at=started if running else None,
        planned_end=started + timedelta(days=7) if running else None,
        original_end=started + timedelta(days=7) if running else None,
    )


def test_a_period_shows_its_criteria_and_actions():
    manager = UserFactory(roles=[Role.DEPLOYMENT_MANAGER])
    els = period()
    incident_open(actor=None, title="down", severity="p2", deployment=els.deployment)
    client = session_client(manager)

    body = client.get(f"/api/v1/els/{els.pk}/").json()

    assert body["state"] == "active"
    assert body["actions"] == ["extend", "exit"]
    assert [(c["code"], c["met"], c["figure"], c["limit"]) for c in body["criteria"][:2]] == [
        ("max_open_p1_p2", False, "1", "0"),
        ("max_incidents", True, "1", "3"),
    ]
    assert body["criteria"][2]["code"] == "min_duration"
    assert body["criteria"][2]["met"] is True


def test_periods_are_filtered_by_state_and_service():
    manager = UserFactory(roles=[Role.DEPLOYMENT_MANAGER])
    running, scheduled = period(), period(state=ElsState.SCHEDULED)
    client = session_client(manager)
    assert [row["id"] for row in client.get("/api/v1/els/?state=active").json()["results"]] == [running.pk]
    by_service = client.get(f"/api/v1/els/?service={scheduled.deployment.service_id}").json()["results"]
    assert [row["id"] for row in by_service] == [scheduled.pk]


def test_extend_and_exit_through_the_api():
    owner = UserFactory(roles=[Role.SERVICE_OWNER])
    els = period(owner)
    client = session_client(owner)
    new_end = (els.planned_end + timedelta(days=2)).isoformat()

    assert client.post(f"/api/v1/els/{els.pk}/extend/", {"new_end": new_end}, format="json").status_code == 400
    extended = client.post(f"/api/v1/els/{els.pk}/extend/", {"new_end": new_end, "reason": "P2"}, format="json")
    assert extended.status_code == 200, extended.content
    assert extended.json()["state"] == "extended"

    incident_open(actor=None, title="down", severity="p1", deployment=els.deployment)
    refused = client.post(f"/api/v1/els/{els.pk}/exit/", {}, format="json")
    assert refused.status_code == 422
    assert refused.json()["conditions"] == ["open P1/P2 incidents: 1 (limit 0)"]


def target_ci(els: EarlyLifeSupport):
    return Target.objects.get(ci__service=els.deployment.service_id).ci


def test_an_incident_shows_its_correlation_and_a_person_corrects_it():
    manager = UserFactory(roles=[Role.DEPLOYMENT_MANAGER])
    els = period()
    client = session_client(manager)
    made = client.post(
        "/api/v1/incidents/",
        {"title": "x", "severity": "p3", "deployment": els.deployment_id, "ci": target_ci(els).pk},
        format="json",
    ).json()
    assert made["correlation"] == {"deployment": els.deployment_id, "method": "explicit"}

    url = f"/api/v1/incidents/{made['id']}/correct-correlation/"
    assert client.post(url, {"deployment": None}, format="json").status_code == 400, "a reason is required"
    corrected = client.post(url, {"deployment": None, "reason": "the alert named the wrong host"}, format="json")

    assert corrected.status_code == 200, corrected.content
    assert corrected.json()["correlation"] == {"deployment": None, "method": "corrected"}
    assert corrected.json()["deployment"] is None


# --- the role matrix ---------------------------------------------------------------------------------------------


def _caller(cell):
    return UserFactory(roles=[cell.role])


ELS_ENDPOINTS = {
    "start": lambda user: (f"/api/v1/els/{period(user, ElsState.SCHEDULED).pk}/start/", {}),
    "extend": lambda user: (
        f"/api/v1/els/{(els := period(user)).pk}/extend/",
        {"reason": "more", "new_end": (els.planned_end + timedelta(days=1)).isoformat()},
    ),
    "withdraw extension": lambda user: (f"/api/v1/els/{period(user, ElsState.EXTENDED).pk}/withdraw-extension/", {}),
    "exit": lambda user: (f"/api/v1/els/{period(user).pk}/exit/", {"reason": "quiet"}),
}


@pytest.mark.parametrize("endpoint", list(ELS_ENDPOINTS))
@pytest.mark.parametrize("cell", cells(ELS_ROW))
def test_start_extend_exit_els(cell, endpoint):
    user = _caller(cell)
    url, body = ELS_ENDPOINTS[endpoint](user)
    cell.assert_answer(cell.client(user).post(url, body, format="json"))


@pytest.mark.parametrize("endpoint", list(ELS_ENDPOINTS))
def test_a_service_owner_is_refused_on_a_service_they_do_not_own(endpoint):
    owner = UserFactory(roles=[Role.SERVICE_OWNER])
    url, body = ELS_ENDPOINTS[endpoint](UserFactory(roles=[Role.SERVICE_OWNER]))
    response = session_client(owner).post(url, body, format="json")
    assert response.status_code == 403
    assert "own" in response.json()["detail"]


@pytest.mark.parametrize("cell", cells(INCIDENTS_ROW))
def test_correct_correlation(cell):
    els = period()
    incident, _ = incident_open(actor=None, title="down", severity="p3", ci=target_ci(els))
    response = cell.client(_caller(cell)).post(
        f"/api/v1/incidents/{incident.pk}/correct-correlation/",
        {"deployment": els.deployment_id, "reason": "it was this one"},
        format="json",
    )
    cell.assert_answer(response)
    if cell.allowed:
        incident.refresh_from_db()
        assert incident.correlation == CorrelationMethod.CORRECTED
        assert AuditEvent.objects.filter(action="incident.correct_correlation", object_id=str(incident.pk)).exists()


@pytest.mark.parametrize("cell", cells("read"))
def test_read(cell):
    els = period()
    client = cell.client(_caller(cell))
    for url in ("/api/v1/els/", f"/api/v1/els/{els.pk}/"):
        assert client.get(url).status_code == 200, url
