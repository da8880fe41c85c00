"""The incident pages, through Django's test client: who may open, update and move an incident (a forged post
changes nothing), the buttons each state offers, refusals shown, the correlation panel in each of its forms and
the audited correction of the link, the list's filters, and pages whose queries do not grow with their rows."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cmdb.choices import RelationshipKind
from deployments import services
from deployments.choices import CorrelationMethod, DeploymentState, IncidentState
from deployments.incidents import (
    incident_acknowledge,
    incident_close,
    incident_correlation_correct,
    incident_open,
    incident_resolve,
)
from deployments.models import Deployment, Incident
from rdm_site.models import AuditEvent
from tests.cmdb.factories import RelationshipFactory
from tests.deployments.conftest import drive
from tests.deployments.factories import CiFactory
from tests.deployments.governed import Governed

pytestmark = pytest.mark.django_db

LIST = reverse("deployments:incident_list")
NEW = reverse("deployments:incident_create")


@pytest.fixture
def deployed() -> tuple[Governed, Deployment]:
    """A production deployment of Shop that succeeded just now, on two targets."""
    governed = Governed(targets=2)
    deployment = governed.plan()
    services.deployment_start(deployment=deployment, actor=governed.dm)
    deployment = drive(deployment)
    assert deployment.state == DeploymentState.SUCCEEDED
    return governed, deployment


def opened(severity: str = "p3", title: str = "errors", **references) -> Incident:
    incident, _ = incident_open(actor=None, title=title, severity=severity, **references)
    return incident


def transition(incident: Incident, action: str) -> str:
    return reverse("deployments:incident_transition", args=[incident.pk, action])


def edit_url(incident: Incident) -> str:
    return reverse("deployments:incident_update", args=[incident.pk])


def correct_url(incident: Incident) -> str:
    return reverse("deployments:incident_correlation", args=[incident.pk])


def actions_in(page: str) -> set[str]:
    return set(re.findall(r'data-action="(\w+)"', page))


def listed(client, **filters) -> list[int]:
    page = client.get(LIST, filters).content.decode()
    return [int(pk) for pk in re.findall(r'<td ><a href="/incidents/(\d+)/">\d+</a></td>', page)]


def messages_of(answer) -> list[str]:
    return [str(message) for message in answer.context["messages"]]


# --- who may ------------------------------------------------------------------------------------------------------


def test_the_roles_that_may_open_incidents_get_the_form_and_the_others_403(client, deployed):
    governed, _deployment = deployed
    people = governed.world.people
    for user, status in (
        (people.rm, 200),
        (people.dm, 200),
        (people.ci, 200),
        (people.so, 200),
        (people.ca, 403),
        (people.ea, 403),
        (people.viewer, 403),
    ):
        client.force_login(user)
        assert client.get(NEW).status_code == status, user
        assert ("New incident" in client.get(LIST).content.decode()) == (status == 200), user
    answer = client.post(NEW, {"title": "forged", "severity": "p1", "ci": governed.targets[0].ci.pk})
    assert answer.status_code == 403
    assert not Incident.objects.exists()


def test_a_viewer_reads_every_incident_page_without_a_control_and_a_forged_one_changes_nothing(client, deployed):
    governed, deployment = deployed
    incident = opened(deployment=deployment)
    client.force_login(governed.world.people.viewer)

    assert client.get(LIST).status_code == 200
    page = client.get(incident.get_absolute_url()).content.decode()
    assert actions_in(page) == set()
    assert "Not available to you" in page
    assert "Correct the link" not in page
    assert edit_url(incident) not in page

    assert client.post(transition(incident, "acknowledge")).status_code == 403
    assert client.get(edit_url(incident)).status_code == 403
    assert client.post(edit_url(incident), {"title": "forged", "severity": "p4"}).status_code == 403
    assert client.post(correct_url(incident), {"deployment": "", "reason": "forged"}).status_code == 403
    incident.refresh_from_db()
    assert (incident.state, incident.title, incident.deployment) == (IncidentState.OPEN, "errors", deployment)


# --- opening ------------------------------------------------------------------------------------------------------


def test_a_service_owner_opens_an_incident_on_a_ci_and_it_is_linked_by_ci(client, deployed):
    governed, deployment = deployed
    ci = governed.targets[1].ci
    client.force_login(governed.world.people.so)

    answer = client.post(NEW, {"title": "checkout slow", "description": "p95 above 2 s", "severity": "p2", "ci": ci.pk})

    incident = Incident.objects.get()
    assert answer.status_code == 302
    assert answer.url == incident.get_absolute_url()
    assert (incident.opened_by, incident.deployment, incident.correlation) == (
        governed.world.people.so,
        deployment,
        CorrelationMethod.CI,
    )
    page = client.get(incident.get_absolute_url()).content.decode()
    assert 'data-correlation="ci"' in page
    text = re.search(r"data-correlation-text>(.*?)</p>", page, re.S).group(1)
    assert f'Linked to deployment <a href="{deployment.get_absolute_url()}">' in text
    assert f">{ci.name}</a>: the deployment changed it." in text
    assert "It counts against Early Life Support" in page


def test_opening_bad_input_is_said_on_the_fields_and_nothing_is_lost_or_made(client, deployed):
    governed, _deployment = deployed
    client.force_login(governed.dm)

    answer = client.post(NEW, {"title": "", "severity": "p9", "description": "kept"})
    assert answer.status_code == 422
    assert set(answer.context["form"].errors) == {"title", "severity"}
    assert "kept</textarea>" in answer.content.decode()

    # valid fields, but neither a CI nor a deployment: the service says what is missing
    answer = client.post(NEW, {"title": "something is off", "severity": "p4"})
    assert answer.status_code == 422
    assert any("name at least one of the deployment, release or CI" in text for text in messages_of(answer))
    assert 'value="something is off"' in answer.content.decode()
    assert not Incident.objects.exists()


# --- transitions and edits ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "offered"),
    [
        (IncidentState.OPEN, {"acknowledge", "resolve", "correct_correlation"}),
        (IncidentState.ACKNOWLEDGED, {"resolve", "correct_correlation"}),
        (IncidentState.RESOLVED, {"reopen", "close", "correct_correlation"}),
        (IncidentState.CLOSED, {"correct_correlation"}),
    ],
)
def test_each_state_offers_its_transitions_and_the_edit_until_closed(client, deployed, state, offered):
    governed, deployment = deployed
    incident = opened(deployment=deployment)
    moves = {
        IncidentState.ACKNOWLEDGED: [incident_acknowledge],
        IncidentState.RESOLVED: [incident_resolve],
        IncidentState.CLOSED: [incident_resolve, incident_close],
    }
    for move in moves.get(state, []):
        move(incident=incident, actor=governed.dm)
    client.force_login(governed.world.people.rm)

    page = client.get(incident.get_absolute_url()).content.decode()

    assert actions_in(page) == offered
    assert (edit_url(incident) in page) == (state != IncidentState.CLOSED)


def test_a_deployment_manager_acknowledges_resolves_with_a_reason_reopens_and_closes(client, deployed):
    governed, deployment = deployed
    incident = opened(severity="p1", deployment=deployment)
    client.force_login(governed.dm)

    for action, reason, state in (
        ("acknowledge", "", IncidentState.ACKNOWLEDGED),
        ("resolve", "restarted the pods", IncidentState.RESOLVED),
        ("reopen", "came back", IncidentState.OPEN),
        ("resolve", "rolled the config back", IncidentState.RESOLVED),
        ("close", "post-mortem done", IncidentState.CLOSED),
    ):
        answer = client.post(transition(incident, action), {"reason": reason, "next": incident.get_absolute_url()})
        assert answer.status_code == 302
        assert answer.url == incident.get_absolute_url()
        incident.refresh_from_db()
        assert incident.state == state, action
    reasons = list(
        AuditEvent.objects.filter(object_id=str(incident.pk), action="incident.resolve").values_list(
            "reason", flat=True
        )
    )
    assert sorted(reasons) == ["restarted the pods", "rolled the config back"]
    page = client.get(incident.get_absolute_url()).content.decode()
    assert "post-mortem done" in page  # the timeline
    assert "data-time-to-restore" in page
    assert "not restored yet" not in page


def test_a_move_the_state_does_not_allow_is_refused_with_the_reason(client, deployed):
    governed, deployment = deployed
    incident = opened(deployment=deployment)
    client.force_login(governed.dm)

    answer = client.post(transition(incident, "close"), {"reason": "early"}, follow=True)

    assert answer.redirect_chain[-1][0] == incident.get_absolute_url()
    assert any("close" in text.lower() for text in messages_of(answer))
    incident.refresh_from_db()
    assert incident.state == IncidentState.OPEN


def test_the_edit_form_changes_what_was_changed_and_is_audited(client, deployed):
    governed, deployment = deployed
    incident = opened(title="errors", ci=governed.targets[0].ci)
    client.force_login(governed.world.people.ci)
    form = client.get(edit_url(incident))
    assert form.status_code == 200
    assert 'value="errors"' in form.content.decode()

    answer = client.post(
        edit_url(incident),
        {"title": "checkout errors", "description": "", "severity": "p2", "ci": governed.targets[0].ci.pk},
    )

    assert answer.status_code == 302
    incident.refresh_from_db()
    assert (incident.title, incident.severity, incident.deployment) == ("checkout errors", "p2", deployment)
    event = AuditEvent.objects.get(action="incident.update", object_id=str(incident.pk))
    assert set(event.changes) == {"title", "severity"}

    # taking the CI away leaves nothing it concerns but its deployment: allowed; an empty title is not
    answer = client.post(edit_url(incident), {"title": "", "severity": "p2"})
    assert answer.status_code == 422
    assert "title" in answer.context["form"].errors


def test_a_closed_incident_cannot_be_edited_and_the_page_says_why(client, deployed):
    governed, deployment = deployed
    incident = opened(deployment=deployment)
    incident_resolve(incident=incident, actor=governed.dm)
    incident_close(incident=incident, actor=governed.dm)
    client.force_login(governed.dm)

    answer = client.get(edit_url(incident), follow=True)

    assert answer.redirect_chain[-1][0] == incident.get_absolute_url()
    assert messages_of(answer)


# --- the correlation panel ----------------------------------------------------------------------------------------


def test_the_panel_says_how_the_link_was_made(client, deployed):
    governed, deployment = deployed
    checkout = CiFactory(name="checkout", environment=governed.world.production)
    RelationshipFactory(source=checkout, target=governed.targets[0].ci, kind=RelationshipKind.DEPENDS_ON)
    billing = CiFactory(name="billing", environment=governed.world.production)
    client.force_login(governed.world.people.viewer)

    def panel(incident: Incident) -> str:
        page = client.get(incident.get_absolute_url()).content.decode()
        return " ".join(re.search(r"data-correlation-text>(.*?)</p>", page, re.S).group(1).split())

    by_impact = opened(ci=checkout)
    assert by_impact.correlation == CorrelationMethod.IMPACT
    text = panel(by_impact)
    assert (
        f'by impact via <a href="{governed.targets[0].ci.get_absolute_url()}">{governed.targets[0].ci.name}</a>' in text
    )
    assert "reaches checkout" in text
    assert "explicitly" in panel(opened(deployment=deployment))
    assert panel(opened(ci=billing)).startswith("Not linked to a deployment: none named")


def test_a_person_corrects_the_link_with_a_reason_and_it_is_audited(client, deployed):
    governed, deployment = deployed
    incident = opened(ci=governed.targets[0].ci)
    client.force_login(governed.world.people.so)

    # without a reason: said next to the field, nothing changes
    answer = client.post(correct_url(incident), {"deployment": ""})
    assert answer.status_code == 422
    assert list(answer.context["form"].errors) == ["reason"]
    # a deployment that is not a candidate is refused on its field
    answer = client.post(correct_url(incident), {"deployment": deployment.pk + 1000, "reason": "guess"})
    assert answer.status_code == 422
    assert "deployment" in answer.context["form"].errors
    incident.refresh_from_db()
    assert (incident.deployment, incident.correlation) == (deployment, CorrelationMethod.CI)

    # none caused it
    answer = client.post(correct_url(incident), {"deployment": "", "reason": "the CDN failed, not us"})
    assert answer.status_code == 302
    assert answer.url == incident.get_absolute_url()
    incident.refresh_from_db()
    assert (incident.deployment, incident.correlation) == (None, CorrelationMethod.CORRECTED)
    event = AuditEvent.objects.get(action="incident.correct_correlation", object_id=str(incident.pk))
    assert (event.reason, event.changes["correlation"]) == ("the CDN failed, not us", ["ci", "corrected"])
    page = client.get(incident.get_absolute_url()).content.decode()
    assert "a person found that none caused it" in page
    assert "Corrected by so" in page
    assert "the CDN failed, not us" in page

    # and back to the deployment, which the form still offers
    client.post(correct_url(incident), {"deployment": deployment.pk, "reason": "it was the release after all"})
    incident.refresh_from_db()
    assert (incident.deployment, incident.correlation) == (deployment, CorrelationMethod.CORRECTED)


# --- the list -----------------------------------------------------------------------------------------------------


def test_the_list_filters_by_state_severity_service_link_and_openness(client, deployed):
    governed, deployment = deployed
    search_ci = CiFactory(name="search-1", environment=governed.world.production, service=governed.world.other_service)
    p1 = opened(severity="p1", deployment=deployment)
    p3 = opened(severity="p3", ci=governed.targets[0].ci)
    elsewhere = opened(severity="p3", ci=search_ci)
    incident_resolve(incident=p3, actor=governed.dm)
    incident_correlation_correct(incident=elsewhere, actor=governed.dm, deployment=None, reason="not ours")
    client.force_login(governed.world.people.viewer)

    assert listed(client) == [elsewhere.pk, p3.pk, p1.pk]
    assert listed(client, state="resolved") == [p3.pk]
    assert listed(client, severity="p1") == [p1.pk]
    assert listed(client, service=governed.world.service.pk) == [p3.pk, p1.pk]
    assert listed(client, service=governed.world.other_service.pk) == [elsewhere.pk]
    assert listed(client, correlation="ci") == [p3.pk]
    assert listed(client, correlation="corrected") == [elsewhere.pk]
    assert listed(client, open="true") == [elsewhere.pk, p1.pk]
    assert listed(client, open="false") == [p3.pk]
    assert listed(client, severity="p9") == []


def test_the_list_and_an_incident_page_cost_the_same_queries_at_any_size(client, deployed):
    governed, deployment = deployed

    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    incident = opened(severity="p1", deployment=deployment)
    client.force_login(governed.dm)
    list_one, page_one = queries(LIST), queries(incident.get_absolute_url())
    for n in range(4):
        opened(title=f"slow {n}", ci=governed.targets[n % 2].ci)
        opened(title=f"down {n}", release=governed.release)
    assert queries(LIST) == list_one
    assert queries(incident.get_absolute_url()) == page_one
