"""Early Life Support: started by a production success, extended, exited only when its criteria hold, offered
by the beat once, and alerted by a P1; its state machine cell by cell."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_fsm import can_proceed

from deployments import els, services
from deployments.choices import DeploymentNotice, DeploymentState, ElsState, ElsTransition
from deployments.incidents import incident_open, incident_resolve
from deployments.models import Deployment, EarlyLifeSupport
from deployments.tasks import els_exits_offer_task
from rdm_site.exceptions import IllegalTransition, InvalidInput, NotAllowed, UnmetConditions
from rdm_site.models import AuditEvent, Notification
from releases.choices import ReleaseState
from releases.models import Release
from tests.deployments.conftest import drive
from tests.deployments.governed import Governed
from tests.releases.factories import PackageFactory

pytestmark = pytest.mark.django_db


def in_els() -> tuple[Governed, EarlyLifeSupport]:
    """A release whose production deployment succeeded: its ELS period is running."""
    governed = Governed(targets=2)
    deployment = governed.plan()
    services.deployment_start(deployment=deployment, actor=governed.dm)
    deployment = drive(deployment)
    assert deployment.state == DeploymentState.SUCCEEDED
    return governed, deployment.early_life_support


def days_pass(period: EarlyLifeSupport, days: int) -> EarlyLifeSupport:
    """Move the period's (and its release's) start ``days`` into the past."""
    started = timezone.now() - timedelta(days=days)
    EarlyLifeSupport.objects.filter(pk=period.pk).update(started_at=started)
    Release.objects.filter(pk=period.release_id).update(els_started_at=started)
    period.refresh_from_db()
    return period


def kinds_sent_to(user) -> list[str]:
    return list(Notification.objects.filter(recipient=user).values_list("kind", flat=True))


def test_a_production_success_starts_els_with_the_plan_and_the_release_follows():
    # given a green release, when its production deployment succeeds
    governed, period = in_els()
    people = governed.world.people

    # then its period runs with the policy's defaults: the service owner on duty, its criteria and durations
    assert period.state == ElsState.ACTIVE
    assert list(period.staff.all()) == [people.so]
    assert period.exit_criteria == governed.world.policy.els_exit_criteria
    assert period.min_duration_days == governed.world.policy.els_min_duration_days
    expected_end = period.started_at + timedelta(days=governed.world.policy.els_duration_days)
    assert abs(period.planned_end - expected_end) < timedelta(seconds=5)
    assert governed.world.reload().state == ReleaseState.EARLY_LIFE_SUPPORT
    assert AuditEvent.objects.filter(action="els.start", object_id=str(period.pk)).exists()
    # and the staff and release manager heard of it, as of the deployment's start and success
    assert DeploymentNotice.ELS_STARTED in kinds_sent_to(people.so)
    assert {DeploymentNotice.STARTED, DeploymentNotice.SUCCEEDED, DeploymentNotice.ELS_STARTED} <= set(
        kinds_sent_to(people.rm)
    )
    assert {DeploymentNotice.STARTED, DeploymentNotice.SUCCEEDED} <= set(kinds_sent_to(people.dm))


def test_exit_when_every_criterion_holds_moves_the_release_to_review():
    governed, period = in_els()
    period = days_pass(period, governed.world.policy.els_min_duration_days)
    assert all(result.met for result in els.els_criteria_evaluate(period))

    els.els_exit(els=period, actor=governed.world.people.so, reason="quiet for three days")

    period.refresh_from_db()
    assert period.state == ElsState.EXITED
    assert period.exited_at is not None
    release = governed.world.reload()
    assert release.state == ReleaseState.IN_REVIEW
    assert release.review.state == "due", "the post-implementation review falls due"
    assert DeploymentNotice.ELS_EXITED in kinds_sent_to(governed.world.people.so)
    event = AuditEvent.objects.get(action="els.exit", object_id=str(period.pk))
    assert (event.from_state, event.to_state, event.reason) == ("active", "exited", "quiet for three days")


def test_an_open_p1_blocks_the_exit_and_every_unmet_criterion_is_listed():
    # given a period just started, with a P1 against its deployment
    governed, period = in_els()
    incident, _ = incident_open(actor=None, title="checkout down", severity="p1", deployment=period.deployment)

    # when the service owner tries to exit, then the open P1 and the minimum duration are both named
    with pytest.raises(UnmetConditions) as refused:
        els.els_exit(els=period, actor=governed.world.people.so)
    assert [condition.split(":")[0] for condition in refused.value.conditions] == [
        "open P1/P2 incidents",
        "minimum duration",
    ]
    assert "1 (limit 0)" in refused.value.conditions[0]

    # and once the time has passed and the P1 is resolved, it exits
    days_pass(period, 3)
    incident_resolve(incident=incident, actor=None, reason="fixed")
    els.els_exit(els=period, actor=governed.world.people.so)
    assert governed.world.reload().state == ReleaseState.IN_REVIEW


def test_too_many_incidents_during_els_block_the_exit():
    governed, period = in_els()
    period = days_pass(period, 5)
    for n in range(4):
        incident_open(actor=None, title=f"slow {n}", severity="p4", deployment=period.deployment)
    with pytest.raises(UnmetConditions) as refused:
        els.els_exit(els=period, actor=governed.world.people.so)
    assert refused.value.conditions == ["incidents during ELS: 4 (limit 3)"]


def test_extension_needs_a_reason_and_a_later_end_and_can_be_withdrawn():
    governed, period = in_els()
    so = governed.world.people.so
    original = period.planned_end

    with pytest.raises(InvalidInput):
        els.els_extend(els=period, actor=so, reason="", new_end=original + timedelta(days=2))
    with pytest.raises(InvalidInput):
        els.els_extend(els=period, actor=so, reason="a P2 last night", new_end=original - timedelta(hours=1))

    els.els_extend(els=period, actor=so, reason="a P2 last night", new_end=original + timedelta(days=2))
    period.refresh_from_db()
    assert (period.state, period.planned_end, period.original_end) == (
        ElsState.EXTENDED,
        original + timedelta(days=2),
        original,
    )
    event = AuditEvent.objects.get(action="els.extend", object_id=str(period.pk))
    assert event.reason == "a P2 last night"
    assert event.changes["planned_end"][0] == original.isoformat()

    els.els_extension_withdraw(els=period, actor=so, reason="false alarm")
    period.refresh_from_db()
    assert (period.state, period.planned_end) == (ElsState.ACTIVE, original)


def test_only_els_managers_and_owners_of_the_service_act():
    governed, period = in_els()
    people = governed.world.people
    later = period.planned_end + timedelta(days=1)
    for outsider in (people.rm, people.so_other, people.viewer):
        with pytest.raises(NotAllowed):
            els.els_extend(els=period, actor=outsider, reason="more", new_end=later)
    els.els_extend(els=period, actor=people.dm, reason="more", new_end=later)
    assert els.els_available_actions(period, people.so) == [ElsTransition.EXTEND, ElsTransition.EXIT]
    assert els.els_available_actions(period, people.so_other) == []
    with pytest.raises(IllegalTransition):
        els.els_start(els=period, actor=people.dm)


def test_the_beat_offers_the_exit_once_and_never_exits():
    governed, period = in_els()
    people = governed.world.people
    assert els_exits_offer_task.apply().get() == 0, "not before the minimum duration"

    days_pass(period, 3)
    assert els_exits_offer_task.apply().get() == 1
    assert els_exits_offer_task.apply().get() == 0

    period.refresh_from_db()
    assert period.state == ElsState.ACTIVE
    assert period.exit_offered_at is not None
    assert kinds_sent_to(people.so).count(DeploymentNotice.ELS_EXIT_OFFERED) == 1


def test_a_p1_during_els_alerts_the_deployment_managers_and_offers_the_previous_package():
    # given the package that ran before this release's, deployed to the same environment
    governed, period = in_els()
    deployment = period.deployment
    previous = PackageFactory(release__policy=governed.world.policy, release__services=[governed.world.service])
    Deployment.objects.create(
        service=deployment.service,
        environment=deployment.environment,
        process=deployment.process,
        package=previous,
        model=deployment.model,
        state=DeploymentState.SUCCEEDED,
        finished_at=deployment.finished_at - timedelta(days=10),
    )

    # when monitoring opens a P1 on a CI the deployment changed
    incident_open(actor=None, title="checkout down", severity="p1", ci=governed.targets[0].ci)

    # then the Deployment Manager hears of it, with a link to the rollback of the deployment to the previous package
    alert = Notification.objects.get(recipient=governed.dm, kind=DeploymentNotice.ELS_INCIDENT)
    assert alert.link == f"/deployments/{deployment.pk}/#rollout-controls"
    assert alert.link in alert.body
    assert f"rolls {deployment} back to the previous package" in alert.body
    assert Notification.objects.filter(recipient=governed.world.people.so, kind=DeploymentNotice.ELS_INCIDENT)
    # a P3 alerts nobody
    alerts = Notification.objects.filter(kind=DeploymentNotice.ELS_INCIDENT)
    before = alerts.count()
    incident_open(actor=None, title="slow", severity="p3", deployment=deployment)
    assert alerts.count() == before


def test_the_admin_shows_the_criteria_and_extends_through_the_service(client):
    governed, period = in_els()
    client.force_login(governed.dm)
    changelist = reverse("admin:deployments_earlylifesupport_changelist")

    page = client.get(reverse("admin:deployments_earlylifesupport_change", args=[period.pk])).content.decode()
    assert "open P1/P2 incidents: 0 (limit 0)" in page
    new_end = (period.planned_end + timedelta(days=2)).strftime("%Y-%m-%d %H:%M")
    client.post(
        changelist,
        {"action": "extend", "_selected_action": [period.pk], "apply": "1", "reason": f"{new_end}; a P2 last night"},
    )

    period.refresh_from_db()
    assert period.state == ElsState.EXTENDED
    assert period.planned_end.strftime("%Y-%m-%d %H:%M") == new_end
    assert AuditEvent.objects.get(action="els.extend").reason == "a P2 last night"


# --- the state machine, every state x transition ---------------------------------------------------------------

ALLOWED = {
    ElsTransition.START: {ElsState.SCHEDULED: ElsState.ACTIVE},
    ElsTransition.EXTEND: {ElsState.ACTIVE: ElsState.EXTENDED, ElsState.EXTENDED: ElsState.EXTENDED},
    ElsTransition.WITHDRAW_EXTENSION: {ElsState.EXTENDED: ElsState.ACTIVE},
    ElsTransition.EXIT: {ElsState.ACTIVE: ElsState.EXITED, ElsState.EXTENDED: ElsState.EXITED},
}
ARGUMENTS = {ElsTransition.START: (timezone.now(),), ElsTransition.EXTEND: (timezone.now(),)}


@pytest.mark.parametrize("transition", list(ElsTransition))
@pytest.mark.parametrize("state", list(ElsState))
def test_els_state_machine(state, transition):
    period = EarlyLifeSupport(state=state)
    method = getattr(period, transition)
    target = ALLOWED[transition].get(state)
    assert can_proceed(method) == (target is not None)
    if target is not None:
        method(*ARGUMENTS.get(transition, ()))
        assert period.state == target
