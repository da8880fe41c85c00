"""The incidents API and Prometheus Alertmanager's webhook: monitoring opens, updates and resolves incidents
with a token; a repeat is one incident; bad payloads are 400 and unknown references 422, with nothing written."""

import pytest

from deployments.choices import IncidentState
from deployments.models import Incident
from deployments.services import deployment_create
from rdm_site.roles import Role
from tests.deployments.api.conftest import list_queries, token_client
from tests.deployments.factories import CiFactory, EnvironmentFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def monitoring(db):
    """Alertmanager's token: a Service Owner's, scoped to incidents."""
    return token_client(UserFactory(username="prometheus", roles=[Role.SERVICE_OWNER]), "incidents")


def alert(status="firing", fingerprint="a1b2c3", **labels):
    return {
        "status": status,
        "labels": {"alertname": "HighErrorRate", "severity": "critical", **labels},
        "annotations": {"summary": "5xx above 5 %", "description": "shop answers 500"},
        "startsAt": "2030-01-31T22:05:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "https://prometheus.example/graph",
        "fingerprint": fingerprint,
    }


def webhook(*alerts):
    return {"version": "4", "status": alerts[0]["status"], "receiver": "rdm", "groupKey": "{}", "alerts": list(alerts)}


def test_an_incident_is_opened_updated_and_moved_through_its_lifecycle(monitoring):
    ci = CiFactory()
    made = monitoring.post(
        "/api/v1/incidents/",
        {"title": "latency", "severity": "p2", "ci": ci.pk, "source": "datadog", "external_id": "m-1"},
        format="json",
    )
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["state"] == "open"
    assert body["opened_by"] == "prometheus"
    assert body["actions"] == ["update", "acknowledge", "resolve", "correct_correlation"]
    repeat = monitoring.post(
        "/api/v1/incidents/",
        {"title": "latency worse", "severity": "p1", "ci": ci.pk, "source": "datadog", "external_id": "m-1"},
        format="json",
    )
    assert repeat.status_code == 200
    assert repeat.json()["id"] == body["id"]
    assert repeat.json()["severity"] == "p1"
    url = f"/api/v1/incidents/{body['id']}/"
    edited = monitoring.patch(url, {"description": "p99 at 3 s", "external_id": "other"}, format="json").json()
    assert edited["description"] == "p99 at 3 s"
    assert edited["external_id"] == "m-1"
    assert monitoring.post(f"{url}acknowledge/", {}, format="json").json()["state"] == "acknowledged"
    assert monitoring.post(f"{url}close/", {}, format="json").status_code == 409
    resolved = monitoring.post(f"{url}resolve/", {"reason": "rolled back"}, format="json").json()
    assert resolved["state"] == "resolved"
    assert resolved["actions"] == ["update", "reopen", "close", "correct_correlation"]
    assert monitoring.post(f"{url}reopen/", {}, format="json").json()["state"] == "open"
    monitoring.post(f"{url}resolve/", {}, format="json")
    assert monitoring.post(f"{url}close/", {}, format="json").json()["state"] == "closed"
    assert monitoring.get(f"/api/v1/incidents/?state=closed&ci={ci.pk}").json()["count"] == 1
    assert monitoring.delete(url).status_code == 405


def test_an_incident_without_a_reference_is_400(monitoring):
    response = monitoring.post("/api/v1/incidents/", {"title": "?", "severity": "p3"}, format="json")
    assert response.status_code == 400
    assert "at least one" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"title": "x", "severity": "p7", "ci": "CI"},
        {"title": "\u0000", "severity": "p1", "ci": "CI"},
        {"title": "x" * 300, "severity": "p1", "ci": "CI"},
        {"title": "x", "severity": "p1", "ci": "CI", "description": "d" * 30000},
        {"title": "x", "severity": "p1", "ci": 99999999999999999999},
        {"title": "x", "severity": "p1", "release": "shop"},
        {"title": "x", "severity": "p1", "deployment": [1]},
        {"title": "x", "severity": "p1", "ci": "CI", "state": "closed", "source": {"a": 1}},
    ],
)
def test_bad_incident_input_is_400_never_500(monitoring, body):
    ci = CiFactory()
    body = {key: (ci.pk if value == "CI" else value) for key, value in body.items()}
    response = monitoring.post("/api/v1/incidents/", body, format="json")
    assert response.status_code == 400, response.content[:300]
    assert not Incident.objects.exists()


def test_alertmanager_firing_opens_then_updates_and_resolved_resolves(monitoring, manager):
    environment = EnvironmentFactory(name="production-like")
    ci = CiFactory(name="shop-app", environment=environment)
    CiFactory(name="shop-app")  # the same name elsewhere: the environment label decides
    url = "/api/v1/incidents/alertmanager/"

    opened = monitoring.post(url, webhook(alert(ci="shop-app", environment="production-like")), format="json")
    assert opened.status_code == 200, opened.content
    assert len(opened.json()["opened"]) == 1
    incident = Incident.objects.get()
    assert (incident.ci, incident.severity, incident.source, incident.external_id) == (
        ci,
        "p1",
        "alertmanager",
        "a1b2c3",
    )
    assert incident.title == "5xx above 5 %"
    assert "https://prometheus.example/graph" in incident.description

    again = monitoring.post(url, webhook(alert(ci=str(ci.pk), severity="warning")), format="json").json()
    assert again["updated"] == [incident.pk]
    incident.refresh_from_db()
    assert incident.severity == "p3"

    resolved = monitoring.post(url, webhook(alert("resolved", ci=str(ci.pk)), alert("resolved", "zzz")), format="json")
    assert resolved.json() == {"opened": [], "updated": [], "resolved": [incident.pk], "ignored": 1}
    incident.refresh_from_db()
    assert incident.state == IncidentState.RESOLVED
    assert Incident.objects.count() == 1


def test_alertmanager_links_a_deployment_and_a_release_by_their_labels(monitoring, landscape, manager):
    world = landscape(targets=1)
    deployment = deployment_create(actor=manager, process=world.process, environment=world.environment)
    response = monitoring.post(
        "/api/v1/incidents/alertmanager/", webhook(alert(deployment=str(deployment.pk), severity="info")), format="json"
    )
    assert response.status_code == 200, response.content
    assert Incident.objects.get().deployment == deployment
    assert Incident.objects.get().severity == "p4"


@pytest.mark.parametrize(
    "labels",
    [{}, {"ci": "no-such-ci"}, {"deployment": "99999999999999999999999"}, {"release": "Nothing 9.9"}],
)
def test_alertmanager_alerts_naming_nothing_known_refuse_the_batch(monitoring, labels):
    ci = CiFactory()
    batch = webhook(alert(fingerprint="good", ci=str(ci.pk)), alert(fingerprint="bad", **labels))
    response = monitoring.post("/api/v1/incidents/alertmanager/", batch, format="json")
    assert response.status_code == 422
    assert any("alert bad" in condition for condition in response.json()["conditions"])
    assert not Incident.objects.exists()


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"alerts": []},
        {"alerts": "x"},
        {"alerts": [{"status": "pending", "fingerprint": "x"}]},
        {"alerts": [{"status": "firing"}]},
        {"alerts": [{"status": "firing", "fingerprint": "x", "labels": {"ci": ["a"]}}]},
        {"alerts": [{"status": "firing", "fingerprint": "x", "labels": {"ci": "a\u0000"}}]},
        {"alerts": [{"status": "firing", "fingerprint": "x", "startsAt": "yesterday"}]},
        {"alerts": [{"status": "firing", "fingerprint": "f" * 500}]},
    ],
)
def test_alertmanager_malformed_payloads_are_400(monitoring, payload):
    response = monitoring.post("/api/v1/incidents/alertmanager/", payload, format="json")
    assert response.status_code == 400, response.content[:300]


def test_alertmanager_needs_a_token_that_may_open_incidents(db):
    owner = UserFactory(roles=[Role.SERVICE_OWNER])
    body = webhook(alert(ci=str(CiFactory().pk)))
    read_only = token_client(owner, "read").post("/api/v1/incidents/alertmanager/", body, format="json")
    assert read_only.status_code == 403
    assert "lacks the scope" in read_only.json()["detail"]
    viewer = token_client(UserFactory(roles=[Role.VIEWER]), "incidents")
    assert viewer.post("/api/v1/incidents/alertmanager/", body, format="json").status_code == 403
    from rest_framework.test import APIClient

    assert APIClient().post("/api/v1/incidents/alertmanager/", body, format="json").status_code == 401
    assert not Incident.objects.exists()


def test_the_incidents_list_makes_the_same_queries_for_3_and_30_rows(monitoring, landscape, manager):
    world = landscape(targets=1)
    deployment = deployment_create(actor=manager, process=world.process, environment=world.environment)

    def open_some(count):
        for _ in range(count):
            monitoring.post(
                "/api/v1/incidents/",
                {"title": "x", "severity": "p3", "deployment": deployment.pk, "ci": CiFactory().pk},
                format="json",
            )

    open_some(3)
    three = list_queries(monitoring, "/api/v1/incidents/", 3)
    open_some(27)
    assert list_queries(monitoring, "/api/v1/incidents/", 30) == three
