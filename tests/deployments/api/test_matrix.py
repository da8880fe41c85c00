"""DESIGN.md "Who may do what" for the deployments API: every role, by session, by a token with the row's scope
and by a read-only token, on every endpoint of the rows "read", "run deployments" and "open, update, resolve
incidents". The Build/CI Engineer's cells use the case that qualifies them: a continuous deployment outside
production."""

from datetime import timedelta

import pytest
from django.utils import timezone

from deployments import engine, incidents
from deployments.choices import DeploymentState, IncidentState
from deployments.models import Deployment, Step, Variable
from deployments.services import deployment_create, deployment_start
from releases.choices import PackageState
from tests.api.matrix import cells
from tests.deployments.conftest import drive, make_landscape
from tests.deployments.factories import CiFactory
from tests.factories import UserFactory
from tests.releases.factories import PackageFactory, ReleaseFactory

pytestmark = pytest.mark.django_db

INTERVENTION = {
    "name": "go?",
    "executor": "manual_intervention",
    "run_once": True,
    "parameters": {"instructions": "Check the shop"},
}


class Setup:
    """The records each endpoint acts on, made by RDM itself (``actor=None``)."""

    def __init__(self, steps=None):
        self.world = make_landscape(targets=1, steps=steps)

    def deployment(self, state=DeploymentState.PLANNED) -> Deployment:
        deployment = deployment_create(
            actor=None, process=self.world.process, environment=self.world.environment, continuous=True
        )
        if state != DeploymentState.PLANNED:
            Deployment.objects.filter(pk=deployment.pk).update(state=state, pause_kind="operator")
        return deployment

    def released(self) -> Deployment:
        """A continuous deployment of a package that succeeded after ``earlier_package``'s: what a rollback
        replaces."""
        self.earlier_package, latest = (
            PackageFactory(release=ReleaseFactory(services=[self.world.service]), state=PackageState.VALIDATED)
            for _ in range(2)
        )
        self._succeeded(self.earlier_package, days_ago=2)
        return self._succeeded(latest, days_ago=1)

    def _succeeded(self, package, days_ago: int) -> Deployment:
        world = self.world
        deployment = deployment_create(
            actor=None, process=world.process, environment=world.environment, continuous=True, package=package
        )
        finished = timezone.now() - timedelta(days=days_ago)
        Deployment.objects.filter(pk=deployment.pk).update(state=DeploymentState.SUCCEEDED, finished_at=finished)
        return deployment

    def redeploy_body(self) -> dict:
        """Redeploy the earlier package in place of the one released after it."""
        self.released()
        world = self.world
        return {
            "service": world.service.pk,
            "environment": world.environment.pk,
            "package": self.earlier_package.pk,
            "reason": "P1",
        }

    def waiting_step(self) -> Step:
        deployment = self.deployment()
        deployment_start(deployment=deployment, actor=None)
        drive(deployment)
        return Step.objects.get(deployment=deployment, executor="manual_intervention", state="running")


def _later() -> str:
    return (timezone.now() + timedelta(days=1)).isoformat()


# endpoint -> (method, build the URL and body from a fresh Setup)
RUN_DEPLOYMENTS = {
    "plan": lambda s: (
        "post",
        "/api/v1/deployments/",
        {"process": s.world.process.pk, "environment": s.world.environment.pk, "continuous": True},
    ),
    "schedule": lambda s: ("post", f"/api/v1/deployments/{s.deployment().pk}/schedule/", {"scheduled_for": _later()}),
    "start": lambda s: ("post", f"/api/v1/deployments/{s.deployment().pk}/start/", {}),
    "pause": lambda s: ("post", f"/api/v1/deployments/{s.deployment(DeploymentState.RUNNING).pk}/pause/", {}),
    "resume": lambda s: ("post", f"/api/v1/deployments/{s.deployment(DeploymentState.PAUSED).pk}/resume/", {}),
    "abort": lambda s: ("post", f"/api/v1/deployments/{s.deployment().pk}/abort/", {"reason": "no"}),
    "roll back": lambda s: ("post", f"/api/v1/deployments/{s.deployment(DeploymentState.PAUSED).pk}/roll-back/", {}),
    "fail": lambda s: ("post", f"/api/v1/deployments/{s.deployment(DeploymentState.PAUSED).pk}/fail/", {}),
    "delete": lambda s: ("delete", f"/api/v1/deployments/{s.deployment().pk}/", None),
    "answer": lambda s: ("post", f"/api/v1/steps/{s.waiting_step().pk}/answer/", {"answer": "proceed"}),
    "roll back a release": lambda s: (
        "post",
        f"/api/v1/deployments/{s.released().pk}/roll-back-release/",
        {"reason": "P1"},
    ),
    "redeploy an earlier package": lambda s: ("post", "/api/v1/deployments/redeploy/", s.redeploy_body()),
    "add a process": lambda s: ("post", "/api/v1/processes/", {"service": s.world.service.pk, "name": "other"}),
    "edit a process": lambda s: ("patch", f"/api/v1/processes/{s.world.process.pk}/", {"bake_seconds": 5}),
    "add a step": lambda s: (
        "post",
        "/api/v1/step-templates/",
        {"process": s.world.process.pk, "name": "more", "executor": "simulator"},
    ),
    "edit a step": lambda s: (
        "patch",
        f"/api/v1/step-templates/{s.world.process.step_templates.get().pk}/",
        {"retries": 1},
    ),
    "delete a step": lambda s: ("delete", f"/api/v1/step-templates/{s.world.process.step_templates.get().pk}/", None),
    "set a variable": lambda s: (
        "post",
        "/api/v1/variables/",
        {"service": s.world.service.pk, "name": "Token", "value": "x", "is_secret": True},
    ),
    "change a variable": lambda s: (
        "patch",
        f"/api/v1/variables/{Variable.objects.create(service=s.world.service, name='Url', value='a').pk}/",
        {"value": "b"},
    ),
    "add a target": lambda s: (
        "post",
        "/api/v1/targets/",
        {"ci": CiFactory(service=s.world.service, environment=s.world.environment).pk},
    ),
    "relabel a target": lambda s: ("patch", f"/api/v1/targets/{s.world.targets[0].pk}/", {"ring": "canary"}),
}


def _incident(setup, state=IncidentState.OPEN):
    incident, _ = incidents.incident_open(actor=None, title="down", severity="p2", ci=setup.world.targets[0].ci)
    if state == IncidentState.RESOLVED:
        incidents.incident_resolve(incident=incident, actor=None)
    return incident


INCIDENTS = {
    "open": lambda s: ("post", "/api/v1/incidents/", {"title": "x", "severity": "p3", "ci": s.world.targets[0].ci.pk}),
    "update": lambda s: ("patch", f"/api/v1/incidents/{_incident(s).pk}/", {"severity": "p1"}),
    "acknowledge": lambda s: ("post", f"/api/v1/incidents/{_incident(s).pk}/acknowledge/", {}),
    "resolve": lambda s: ("post", f"/api/v1/incidents/{_incident(s).pk}/resolve/", {"reason": "fixed"}),
    "reopen": lambda s: ("post", f"/api/v1/incidents/{_incident(s, IncidentState.RESOLVED).pk}/reopen/", {}),
    "close": lambda s: ("post", f"/api/v1/incidents/{_incident(s, IncidentState.RESOLVED).pk}/close/", {}),
    "alertmanager": lambda s: (
        "post",
        "/api/v1/incidents/alertmanager/",
        {"alerts": [{"status": "firing", "fingerprint": "f", "labels": {"ci": str(s.world.targets[0].ci.pk)}}]},
    ),
}


def _call(client, method, url, body):
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, body, format="json")


@pytest.mark.parametrize("endpoint", list(RUN_DEPLOYMENTS))
@pytest.mark.parametrize("cell", cells("run deployments"))
def test_run_deployments(cell, endpoint):
    setup = Setup(steps=[INTERVENTION] if endpoint == "answer" else None)
    method, url, body = RUN_DEPLOYMENTS[endpoint](setup)
    cell.assert_answer(_call(cell.client(UserFactory(roles=[cell.role])), method, url, body))


@pytest.mark.parametrize("endpoint", list(INCIDENTS))
@pytest.mark.parametrize("cell", cells("open, update, resolve incidents"))
def test_open_update_resolve_incidents(cell, endpoint):
    method, url, body = INCIDENTS[endpoint](Setup())
    cell.assert_answer(_call(cell.client(UserFactory(roles=[cell.role])), method, url, body))


@pytest.mark.parametrize("cell", cells("read"))
def test_read(cell):
    setup = Setup()
    deployment = setup.deployment()
    engine.deployment_advance(deployment_id=deployment.pk)
    incident = _incident(setup)
    step = Step.objects.filter(deployment=deployment).first()
    client = cell.client(UserFactory(roles=[cell.role]))
    urls = [
        "/api/v1/processes/",
        f"/api/v1/processes/{setup.world.process.pk}/",
        "/api/v1/step-templates/",
        "/api/v1/variables/",
        "/api/v1/targets/",
        f"/api/v1/targets/{setup.world.targets[0].pk}/",
        "/api/v1/deployments/",
        f"/api/v1/deployments/{deployment.pk}/",
        f"/api/v1/deployments/{deployment.pk}/plan/",
        f"/api/v1/deployments/{deployment.pk}/events/",
        "/api/v1/steps/",
        f"/api/v1/steps/{step.pk}/",
        "/api/v1/step-logs/",
        "/api/v1/incidents/",
        f"/api/v1/incidents/{incident.pk}/",
    ]
    assert cell.allowed  # every role reads everything
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, f"{cell} {url}: {response.status_code}"
