"""Incident services: opened against a deployment, release or CI; one live incident per alert id; every
transition from every state allowed or refused; audited; refused to roles that do not handle incidents."""

import threading

import pytest
from django.db import connection
from django.urls import reverse

from deployments import incidents
from deployments.choices import IncidentSeverity, IncidentState
from deployments.incidents import incident_available_actions
from deployments.models import Incident
from rdm_site.exceptions import IllegalTransition, InvalidInput, NotAllowed
from rdm_site.models import AuditEvent
from rdm_site.roles import Role
from tests.deployments.factories import CiFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TRANSITIONS = {
    "acknowledge": incidents.incident_acknowledge,
    "resolve": incidents.incident_resolve,
    "reopen": incidents.incident_reopen,
    "close": incidents.incident_close,
}
# (state, transition) -> the state it leads to, or None when the state machine refuses it
EXPECTED = {
    (IncidentState.OPEN, "acknowledge"): IncidentState.ACKNOWLEDGED,
    (IncidentState.OPEN, "resolve"): IncidentState.RESOLVED,
    (IncidentState.ACKNOWLEDGED, "resolve"): IncidentState.RESOLVED,
    (IncidentState.RESOLVED, "reopen"): IncidentState.OPEN,
    (IncidentState.RESOLVED, "close"): IncidentState.CLOSED,
}
PATHS = {
    IncidentState.OPEN: [],
    IncidentState.ACKNOWLEDGED: ["acknowledge"],
    IncidentState.RESOLVED: ["resolve"],
    IncidentState.CLOSED: ["resolve", "close"],
}


@pytest.fixture
def responder(db):
    return UserFactory(username="sre", roles=[Role.SERVICE_OWNER])


def open_incident(actor, **fields):
    fields = {"title": "shop answers 500", "severity": IncidentSeverity.P2, "ci": CiFactory(), **fields}
    return incidents.incident_open(actor=actor, **fields)[0]


def in_state(actor, state):
    incident = open_incident(actor)
    for transition in PATHS[state]:
        TRANSITIONS[transition](incident=incident, actor=actor)
    incident.refresh_from_db()
    assert incident.state == state
    return incident


def test_an_incident_is_opened_against_a_ci_and_audited(responder):
    incident = open_incident(responder)
    assert incident.state == IncidentState.OPEN
    assert incident.opened_by == responder
    event = AuditEvent.objects.get(object_type="deployments.incident", object_id=str(incident.pk))
    assert event.action == "incident.open"
    assert event.to_state == "open"


def test_an_incident_names_what_it_concerns(responder):
    with pytest.raises(InvalidInput, match="at least one of the deployment, release or CI"):
        incidents.incident_open(actor=responder, title="?", severity=IncidentSeverity.P4)
    assert not Incident.objects.exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"severity": "p9"},
        {"title": ""},
        {"title": "t" * 201},
        {"description": "d" * 20001},
        {"external_id": "abc"},  # without its source
    ],
)
def test_bad_fields_are_refused_and_nothing_is_written(responder, fields):
    with pytest.raises(InvalidInput):
        open_incident(responder, **fields)
    assert not Incident.objects.exists()
    assert not AuditEvent.objects.filter(object_type="deployments.incident").exists()


def test_an_alert_that_fires_twice_updates_the_incident_it_opened(responder):
    first, new = incidents.incident_open(
        actor=responder, title="5xx", severity="p3", ci=CiFactory(), source="alertmanager", external_id="f1"
    )
    assert new
    again, new = incidents.incident_open(
        actor=responder, title="5xx, worse", severity="p1", source="alertmanager", external_id="f1"
    )
    assert not new
    assert again.pk == first.pk
    again.refresh_from_db()
    assert (again.title, again.severity, again.ci_id) == ("5xx, worse", "p1", first.ci_id)
    actions = AuditEvent.objects.filter(object_id=str(first.pk)).values_list("action", flat=True)
    assert list(actions) == ["incident.open", "incident.update"]


def test_a_resolved_alert_firing_again_reopens_it_and_a_closed_one_opens_a_new_incident(responder):
    alert = {"title": "disk", "severity": "p2", "ci": CiFactory(), "source": "alertmanager", "external_id": "f2"}
    incident, _ = incidents.incident_open(actor=responder, **alert)
    incidents.incident_resolve(incident=incident, actor=responder)
    reopened, new = incidents.incident_open(actor=responder, **alert)
    assert not new
    assert reopened.state == IncidentState.OPEN
    assert reopened.resolved_at is None
    incidents.incident_resolve(incident=reopened, actor=responder)
    incidents.incident_close(incident=reopened, actor=responder)
    fresh, new = incidents.incident_open(actor=responder, **alert)
    assert new
    assert fresh.pk != incident.pk


@pytest.mark.parametrize("state", list(IncidentState))
@pytest.mark.parametrize("transition", list(TRANSITIONS))
def test_every_transition_from_every_state(responder, state, transition):
    incident = in_state(responder, state)
    expected = EXPECTED.get((state, transition))
    if expected is None:
        with pytest.raises(IllegalTransition):
            TRANSITIONS[transition](incident=incident, actor=responder)
        assert transition not in incident_available_actions(incident, responder)
    else:
        moved = TRANSITIONS[transition](incident=incident, actor=responder, reason="done")
        assert moved.state == expected
        assert transition in incident_available_actions(incident, responder)
        event = AuditEvent.objects.filter(action=f"incident.{transition}").get()
        assert (event.from_state, event.to_state, event.reason) == (state, expected, "done")


def test_timestamps_follow_the_lifecycle(responder):
    incident = in_state(responder, IncidentState.ACKNOWLEDGED)
    incidents.incident_resolve(incident=incident, actor=responder)
    incident = incidents.incident_close(incident=incident, actor=responder)
    assert incident.opened_at <= incident.acknowledged_at <= incident.resolved_at <= incident.closed_at


def test_an_update_corrects_the_incident_but_keeps_a_reference(responder):
    incident = open_incident(responder)
    incidents.incident_update(incident=incident, actor=responder, data={"severity": "p1", "title": "down"})
    incident.refresh_from_db()
    assert (incident.severity, incident.title) == ("p1", "down")
    with pytest.raises(InvalidInput, match="at least one"):
        incidents.incident_update(incident=incident, actor=responder, data={"ci": None})
    with pytest.raises(InvalidInput, match="cannot be edited"):
        incidents.incident_update(incident=incident, actor=responder, data={"external_id": "x"})
    closed = in_state(responder, IncidentState.CLOSED)
    with pytest.raises(IllegalTransition):
        incidents.incident_update(incident=closed, actor=responder, data={"title": "late"})


def test_a_long_reason_is_refused(responder):
    incident = open_incident(responder)
    with pytest.raises(InvalidInput, match="at most 2000"):
        incidents.incident_resolve(incident=incident, actor=responder, reason="r" * 2001)


@pytest.mark.parametrize("role", list(Role))
def test_who_may_open_and_handle_incidents(responder, role):
    person = UserFactory(roles=[role])
    may = role in {Role.RELEASE_MANAGER, Role.DEPLOYMENT_MANAGER, Role.BUILD_ENGINEER, Role.SERVICE_OWNER}
    incident = open_incident(responder)
    if may:
        open_incident(person)
        actions = ["update", "acknowledge", "resolve", "correct_correlation"]
        assert incident_available_actions(incident, person) == actions
        incidents.incident_acknowledge(incident=incident, actor=person)
    else:
        with pytest.raises(NotAllowed, match="may not open an incident"):
            open_incident(person)
        assert incident_available_actions(incident, person) == []
        with pytest.raises(NotAllowed):
            incidents.incident_acknowledge(incident=incident, actor=person)


def test_the_admin_opens_and_moves_incidents_through_the_services(client, responder):
    client.force_login(UserFactory(username="dm", roles=[Role.DEPLOYMENT_MANAGER]))
    ci = CiFactory()
    assert client.get(reverse("admin:deployments_incident_add")).status_code == 200
    response = client.post(
        reverse("admin:deployments_incident_add"),
        {"title": "queue stuck", "severity": "p2", "ci": ci.pk, "description": "", "source": "", "external_id": ""},
    )
    assert response.status_code == 302, response.content[:500]
    incident = Incident.objects.get()
    assert incident.opened_by.username == "dm"
    changelist = reverse("admin:deployments_incident_changelist")
    client.post(changelist, {"action": "acknowledge", "_selected_action": [incident.pk]})
    incident.refresh_from_db()
    assert incident.state == IncidentState.ACKNOWLEDGED
    assert client.get(reverse("admin:deployments_incident_change", args=[incident.pk])).status_code == 200
    actions = AuditEvent.objects.filter(object_type="deployments.incident").values_list("action", flat=True)
    assert list(actions) == ["incident.open", "incident.acknowledge"]


@pytest.mark.django_db(transaction=True)
def test_the_same_alert_arriving_twice_at_once_on_two_connections_opens_one_incident():
    actor = UserFactory(roles=[Role.SERVICE_OWNER])
    ci = CiFactory()
    barrier = threading.Barrier(2)
    outcomes = []

    def fire(title):
        try:
            barrier.wait(timeout=10)
            incident, new = incidents.incident_open(
                actor=actor, title=title, severity="p2", ci=ci, source="alertmanager", external_id="same"
            )
            outcomes.append((incident.pk, new))
        finally:
            connection.close()

    threads = [threading.Thread(target=fire, args=(f"alert {n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(outcomes) == 2
    assert len({pk for pk, _ in outcomes}) == 1
    assert sorted(new for _, new in outcomes) == [False, True]
    assert Incident.objects.count() == 1
