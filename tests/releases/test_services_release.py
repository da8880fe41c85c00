"""Release services: the lifecycle, decisions on the plan (quorum, roles, ownership, segregation of duties),
withdrawn approvals, and every illegal move refused with the state and transition named.
"""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from rdm_site.models import AuditEvent, Notification
from rdm_site.roles import Role
from rdm_site.selectors import audit_events_for, notifications_about
from releases import services
from releases.choices import BaselineKind, ChangeType, Decision, ReleaseState, ReleaseTransition
from releases.exceptions import AlreadyDecided, IllegalTransition, InvalidInput, NotAllowed, UnmetConditions
from releases.models import Approval, ChangeRecord
from tests.factories import UserFactory
from tests.releases.conftest import (
    accept_review,
    approve_plan,
    approved_change,
    green_release,
    make_world,
    remaining_gates,
    validated_package,
)
from tests.releases.factories import ChangeTemplateFactory, ReleaseFactory
from tests.releases.test_models import RELEASE_MOVES

pytestmark = pytest.mark.django_db


# --- illegal moves -------------------------------------------------------------------------------

RELEASE_SERVICES = {
    ReleaseTransition.PLAN: lambda r, u: services.release_plan(release=r, actor=u),
    ReleaseTransition.SUBMIT: lambda r, u: services.release_submit(release=r, actor=u),
    ReleaseTransition.APPROVE: lambda r, u: services.release_approve(release=r, actor=u),
    ReleaseTransition.REJECT: lambda r, u: services.release_reject(release=r, actor=u, reason="no"),
    ReleaseTransition.MARK_READY: lambda r, u: services.release_mark_ready(release=r, actor=u),
    ReleaseTransition.CANCEL: lambda r, u: services.release_cancel(release=r, actor=u, reason="no longer needed"),
    ReleaseTransition.START_DEPLOYING: lambda r, u: services.release_deploying(release=r, actor=u),
    ReleaseTransition.MARK_DEPLOYED: lambda r, u: services.release_deployed(release=r, actor=u),
    ReleaseTransition.START_ELS: lambda r, u: services.release_els_start(release=r, actor=u),
    ReleaseTransition.START_REVIEW: lambda r, u: services.release_review_start(release=r, actor=u),
    ReleaseTransition.CLOSE: lambda r, u: services.release_close(release=r, actor=u),
    ReleaseTransition.MARK_FAILED: lambda r, u: services.release_failed(release=r, actor=u, reason="boom"),
    ReleaseTransition.MARK_ROLLED_BACK: lambda r, u: services.release_rolled_back(release=r, actor=u, reason="x"),
    ReleaseTransition.REPLAN: lambda r, u: services.release_replan(release=r, actor=u),
}
ILLEGAL = [
    (transition, state)
    for transition in RELEASE_SERVICES
    for state in ReleaseState
    if state not in RELEASE_MOVES[transition]
]


@pytest.mark.parametrize(("transition", "state"), ILLEGAL)
def test_each_release_service_refuses_an_illegal_move_naming_state_and_transition(transition, state):
    # given a release in a state the transition does not start from, and an actor allowed to try
    release = ReleaseFactory(state=state)
    admin = User.objects.create_superuser("boss", "boss@rdm.example", "x")
    admin.groups.add(Group.objects.get_or_create(name=Role.RELEASE_MANAGER)[0])  # a role the policy lets approve
    # when the service is called, then it refuses with the transition and the state named
    with pytest.raises(IllegalTransition) as refused:
        RELEASE_SERVICES[transition](release, admin)
    assert refused.value.state == state
    assert refused.value.transition == transition
    assert f"it is {state.replace('_', ' ')}" in str(refused.value)
    assert transition.replace("_", " ") in str(refused.value)


# --- the lifecycle -------------------------------------------------------------------------------


def test_a_release_goes_from_draft_to_closed_and_every_move_is_audited(world):
    p = world.people
    # given a release made ready for production, with an approved change
    release, _ = green_release(world)
    assert release.state == ReleaseState.READY
    # when the engine and the people follow it through production, ELS and review
    services.release_deploying(release=release, actor=p.dm)
    services.release_deployed(release=release, actor=None)
    services.release_els_start(release=release, actor=p.so)
    release.refresh_from_db()
    release.els_min_duration_days = 0
    release.save(update_fields=["els_min_duration_days"])
    services.release_review_start(release=release, actor=p.dm)
    accept_review(world)
    services.release_baseline_take(release=release, actor=p.rm, kind=BaselineKind.POST_RELEASE)
    services.release_close(release=release, actor=p.so)
    # then it is closed, and the audit trail holds every transition with its from and to states
    assert world.reload().state == ReleaseState.CLOSED
    moves = [(e.action, e.from_state, e.to_state) for e in audit_events_for(release) if e.action.startswith("release.")]
    assert [move for move in moves if move[1]] == [
        ("release.plan", "draft", "planned"),
        ("release.submit", "planned", "submitted"),
        ("release.approve", "submitted", "approved"),
        ("release.mark_ready", "approved", "ready"),
        ("release.start_deploying", "ready", "deploying"),
        ("release.mark_deployed", "deploying", "deployed"),
        ("release.start_els", "deployed", "early_life_support"),
        ("release.start_review", "early_life_support", "in_review"),
        ("release.close", "in_review", "closed"),
    ]


def test_submit_reports_every_unmet_condition_at_once(world):
    p = world.people
    # given a planned release with no description, starting within the policy's lead time
    world.policy.lead_time_days = 5
    world.policy.save()
    services.release_plan(release=world.release, actor=p.rm)
    release = world.reload()
    services.release_update(
        release=release, actor=p.rm, data={"description": "", "planned_start": timezone.now() + timedelta(days=2)}
    )
    # when it is submitted, then both problems are reported together
    with pytest.raises(UnmetConditions) as refused:
        services.release_submit(release=release, actor=p.rm)
    assert len(refused.value.conditions) == 2
    assert "describe the release" in refused.value.conditions
    assert "5 day(s) of lead time" in refused.value.conditions[1]
    assert world.reload().state == ReleaseState.PLANNED


def test_submit_tells_the_approvers_whose_decision_is_awaited(world):
    p = world.people
    services.release_plan(release=world.release, actor=p.rm)
    services.release_submit(release=world.release, actor=p.rm)
    awaited = notifications_about(world.release, kind="approval.awaited")
    # the other release manager and the service's owner; never its own manager, nor another service's owner
    assert sorted(n.recipient.username for n in awaited) == ["rm2", "so"]


def test_a_plan_nobody_may_approve_is_not_submitted(world):
    p = world.people
    world.policy.approver_roles = [Role.CHANGE_APPROVER.value]  # nobody of that role holds approve_release
    world.policy.save()
    services.release_plan(release=world.release, actor=p.rm)
    with pytest.raises(UnmetConditions, match="needs 1 approver"):
        services.release_submit(release=world.release, actor=p.rm)


# --- decisions -----------------------------------------------------------------------------------


def _submitted(world, quorum=1):
    world.policy.approvals_required = quorum
    world.policy.save()
    services.release_plan(release=world.release, actor=world.people.rm)
    services.release_submit(release=world.release, actor=world.people.rm)
    return world.reload()


def test_quorum_counts_distinct_approvers(world):
    p = world.people
    release = _submitted(world, quorum=2)
    # when the owner approves, the release still waits for a second person
    services.release_approve(release=release, actor=p.so, reason="looks good")
    assert world.reload().state == ReleaseState.SUBMITTED
    # and the owner approving again is refused and changes nothing
    with pytest.raises(AlreadyDecided, match="each approver counts once"):
        services.release_approve(release=release, actor=p.so)
    assert world.reload().state == ReleaseState.SUBMITTED
    # when a second, distinct person approves, the quorum is reached
    services.release_approve(release=release, actor=p.rm2)
    assert world.reload().state == ReleaseState.APPROVED
    assert Approval.objects.filter(release=release, withdrawn_at=None).count() == 2


@pytest.mark.parametrize(
    ("relation", "message"),
    [("manager", "they manage it"), ("requester", "they requested it"), ("builder", "they built its package")],
)
def test_segregation_of_duties_refuses_approving_what_one_manages_requested_or_built(world, relation, message):
    p = world.people
    # given rm2 tied to the release as its manager, requester or the builder of its package
    release = world.release
    if relation == "manager":
        release.release_manager = p.rm2
    elif relation == "requester":
        release.requested_by = p.rm2
    release.save()
    if relation == "builder":
        p.rm2.groups.add(*p.ci.groups.all())
        p.rm2 = User.objects.get(pk=p.rm2.pk)  # fresh permission cache
        services.package_register(release=release, actor=p.rm2, version="b1")
    _submitted(world)
    # when rm2 approves, then it is refused, saying why
    with pytest.raises(NotAllowed, match=rf"rm2 may not approve release .*: {message} \(segregation of duties\)"):
        services.release_approve(release=release, actor=p.rm2)
    assert not Approval.objects.filter(release=release).exists()


def test_a_service_owner_approves_only_releases_of_their_own_services(world):
    p = world.people
    release = _submitted(world)
    with pytest.raises(NotAllowed, match="Service Owners act only for releases of services they own"):
        services.release_approve(release=release, actor=p.so_other)
    services.release_approve(release=release, actor=p.so)
    assert world.reload().state == ReleaseState.APPROVED


def test_only_roles_the_policy_names_may_approve(world):
    p = world.people
    world.policy.approver_roles = [Role.RELEASE_MANAGER.value]
    world.policy.save()
    release = _submitted(world)
    with pytest.raises(NotAllowed, match="the policy lets only these roles approve: Release Manager"):
        services.release_approve(release=release, actor=p.so)


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.RELEASE_MANAGER, True),
        (Role.SERVICE_OWNER, True),  # as owner of the release's service
        (Role.CHANGE_APPROVER, False),
        (Role.EMERGENCY_APPROVER, False),
        (Role.DEPLOYMENT_MANAGER, False),
        (Role.BUILD_ENGINEER, False),
        (Role.VIEWER, False),
    ],
)
@pytest.mark.parametrize("decision", [Decision.APPROVED, Decision.REJECTED])
def test_role_matrix_for_deciding_on_a_release_plan(role, allowed, decision):
    # given a submitted release whose service is owned by the deciding user when they are a Service Owner
    decider = UserFactory(username=f"decider-{role.name.lower()}", roles=[role])
    world = make_world()
    if role == Role.SERVICE_OWNER:
        world.service.owner = decider
        world.service.save()
    release = _submitted(world)
    # when they decide
    decide = services.release_approve if decision == Decision.APPROVED else services.release_reject
    if allowed:
        decide(release=release, actor=decider, reason="decided")
        assert Approval.objects.get(release=release).decision == decision
    else:
        with pytest.raises(NotAllowed, match=r"releases\.approve_release"):
            decide(release=release, actor=decider, reason="decided")


def test_rejection_needs_a_reason_tells_the_manager_and_replanning_clears_decisions(world):
    p = world.people
    release = _submitted(world)
    with pytest.raises(InvalidInput, match="reason"):
        services.release_reject(release=release, actor=p.so, reason="  ")
    services.release_reject(release=release, actor=p.so, reason="Black Friday is too close")
    assert world.reload().state == ReleaseState.REJECTED
    assert Notification.objects.filter(kind="release.rejected", recipient=p.rm).exists()
    # when the manager re-plans, the rejection is withdrawn and the owner may decide again
    services.release_replan(release=release, actor=p.rm, reason="moved to January")
    services.release_submit(release=release, actor=p.rm)
    services.release_approve(release=release, actor=p.so)
    assert world.reload().state == ReleaseState.APPROVED
    assert Approval.objects.get(release=release, decision=Decision.REJECTED).withdrawn_at is not None


# --- approvals withdrawn when what was approved changes -----------------------------------------


def test_a_new_package_withdraws_the_approvals_visibly(world):
    p = world.people
    # given an approved release with its first package
    approve_plan(world)
    validated_package(world, "b1")
    assert world.reload().state == ReleaseState.APPROVED
    approval = Approval.objects.get(release=world.release)
    # when a rebuild is registered
    services.package_register(release=world.release, actor=p.ci, version="b2")
    # then the approval is withdrawn (kept, with the moment and reason), the release awaits approval again,
    # the withdrawal is audited and the approver told
    approval.refresh_from_db()
    assert approval.withdrawn_at is not None
    assert "b2 replaced build b1" in approval.withdrawn_reason
    assert world.reload().state == ReleaseState.SUBMITTED
    assert [e.reason for e in audit_events_for(approval) if e.action == "approval.withdraw"] == [
        approval.withdrawn_reason
    ]
    reopened = [e for e in audit_events_for(world.release) if e.action == "release.reopen_approval"]
    assert [(e.from_state, e.to_state) for e in reopened] == [("approved", "submitted")]
    assert Notification.objects.filter(kind="approval.withdrawn", recipient=p.so).exists()
    # and the same person may approve the new package
    services.release_approve(release=world.release, actor=p.so)
    assert world.reload().state == ReleaseState.APPROVED


def test_an_approver_who_then_builds_the_package_no_longer_counts(world):
    p = world.people
    # given the plan approved by rm2 alone, who also holds the Build/CI role
    p.rm2.groups.add(*p.ci.groups.all())
    rm2 = User.objects.get(pk=p.rm2.pk)
    services.release_plan(release=world.release, actor=p.rm)
    services.release_submit(release=world.release, actor=p.rm)
    services.release_approve(release=world.release, actor=rm2)
    assert world.reload().state == ReleaseState.APPROVED
    # when rm2 registers the first package, their approval is withdrawn (segregation of duties)
    services.package_register(release=world.release, actor=rm2, version="b1")
    assert Approval.objects.get(release=world.release).withdrawn_reason == "the approver built the package"
    assert world.reload().state == ReleaseState.SUBMITTED


def test_a_ready_release_goes_back_to_submitted_when_its_dates_change(world):
    p = world.people
    release, _ = green_release(world)
    later = {
        "planned_start": release.planned_start + timedelta(days=1),
        "planned_end": release.planned_end + timedelta(days=1),
    }
    services.release_update(release=release, actor=p.rm, data=later)
    assert world.reload().state == ReleaseState.SUBMITTED
    assert Approval.objects.filter(release=release, withdrawn_at=None).count() == 0


def test_an_edit_that_breaks_the_plan_is_refused_as_invalid_input(world):
    release = world.release
    with pytest.raises(InvalidInput, match="planned_end: The planned end comes after the planned start"):
        services.release_update(release=release, actor=world.people.rm, data={"planned_end": release.planned_start})


def test_editing_the_description_keeps_the_approvals(world):
    approve_plan(world)
    services.release_update(release=world.release, actor=world.people.rm, data={"description": "Better words."})
    assert world.reload().state == ReleaseState.APPROVED


# --- ready, cancel, deploy, ELS, close ------------------------------------------------------------


def test_mark_ready_lists_every_unmet_gate(world):
    approve_plan(world)
    with pytest.raises(UnmetConditions) as refused:
        services.release_mark_ready(release=world.release, actor=world.people.rm)
    # every gate but the approved plan, and ELS (the policy's defaults schedule it)
    assert len(refused.value.conditions) == 6
    assert refused.value.conditions[0].startswith("Release package built and validated: no package registered")


def test_cancel_needs_a_reason_and_ends_the_release(world):
    p = world.people
    with pytest.raises(InvalidInput):
        services.release_cancel(release=world.release, actor=p.rm, reason="")
    services.release_cancel(release=world.release, actor=p.rm, reason="Superseded by 3.0")
    release = world.reload()
    assert release.state == ReleaseState.CANCELLED
    assert release.end_reason == "Superseded by 3.0"


def test_only_release_managers_submit_and_cancel(world):
    p = world.people
    services.release_plan(release=world.release, actor=p.rm)
    for user in (p.dm, p.so, p.viewer):
        with pytest.raises(NotAllowed, match=r"releases\.submit_release"):
            services.release_submit(release=world.release, actor=user)
        with pytest.raises(NotAllowed, match=r"releases\.cancel_release"):
            services.release_cancel(release=world.release, actor=user, reason="x")


def test_a_build_engineer_deploys_only_under_a_standard_change(world):
    p = world.people
    release, _ = green_release(world)  # carried by a normal change
    with pytest.raises(NotAllowed, match="standard changes only"):
        services.release_deploying(release=release, actor=p.ci)
    services.release_deploying(release=release, actor=p.dm)
    assert world.reload().state == ReleaseState.DEPLOYING


def test_a_standard_change_from_a_pre_approved_template_approves_the_release_on_submit(world):
    p = world.people
    template = ChangeTemplateFactory(services=[world.service], approved_by=p.ca)
    services.release_plan(release=world.release, actor=p.rm)
    change = services.change_create(
        actor=p.ci,
        change_type=ChangeType.STANDARD,
        template=template,
        planned_start=timezone.now() + timedelta(days=1),
        planned_end=timezone.now() + timedelta(days=1, hours=1),
        release=world.release,
    )
    services.change_submit(change=change, actor=p.ci)
    services.release_submit(release=world.release, actor=p.rm)
    assert world.reload().state == ReleaseState.APPROVED
    approval = next(e for e in audit_events_for(world.release) if e.action == "release.approve")
    assert "pre-approved by ca" in approval.reason
    assert not Approval.objects.filter(release=world.release).exists()


def test_els_exits_only_after_its_minimum_duration_and_close_needs_the_post_release_baseline(world):
    p = world.people
    release, _ = green_release(world)
    services.release_deploying(release=release, actor=p.dm)
    services.release_deployed(release=release)
    services.release_els_start(release=release, actor=p.dm)
    with pytest.raises(UnmetConditions, match="ELS lasts at least 3 day"):
        services.release_review_start(release=release, actor=p.dm)
    release.refresh_from_db()
    release.els_min_duration_days = 0
    release.save(update_fields=["els_min_duration_days"])
    services.release_review_start(release=release, actor=p.dm)
    with pytest.raises(UnmetConditions, match="post-release baseline"):
        services.release_close(release=release, actor=p.rm)


def test_a_service_owner_runs_els_only_for_own_services(world):
    p = world.people
    release, _ = green_release(world)
    services.release_deploying(release=release, actor=p.dm)
    services.release_deployed(release=release)
    with pytest.raises(NotAllowed, match="services they own"):
        services.release_els_start(release=release, actor=p.so_other)
    services.release_els_start(release=release, actor=p.so)


def test_a_failed_deployment_can_be_replanned_and_approvals_start_over(world):
    p = world.people
    release, _ = green_release(world)
    services.release_deploying(release=release, actor=p.dm)
    services.release_failed(release=release, reason="health check failed")
    assert world.reload().state == ReleaseState.FAILED
    services.release_replan(release=release, actor=p.rm)
    assert world.reload().state == ReleaseState.PLANNED
    assert not Approval.objects.filter(release=release, withdrawn_at=None).exists()


def test_release_notes_are_built_from_units_and_commits(world):
    approve_plan(world)
    validated_package(world)
    remaining_gates(world)
    release = services.release_notes_build(release=world.release, actor=world.people.rm)
    assert "# Shop 2.0" in release.release_notes
    assert "shop-app (application artifact; changes shop-app)" in release.release_notes
    assert "abc1234def Faster checkout (ann)" in release.release_notes
    assert "Work items: SHOP-1" in release.release_notes


def test_engine_moves_may_be_made_by_rdm_itself(world):
    release, change = green_release(world)
    services.change_schedule(change=change)
    services.release_deploying(release=release)
    services.release_rolled_back(release=release, reason="error rate")
    assert world.reload().state == ReleaseState.ROLLED_BACK
    assert ChangeRecord.objects.get(pk=change.pk).state == "scheduled"


def test_approved_change_helper_uses_the_emergency_cab_for_emergency_changes(world):
    # (sanity of the test helpers: an emergency change for a normal release is refused at creation)
    with pytest.raises(InvalidInput, match="normal or standard change"):
        approved_change(world, timezone.now() + timedelta(days=1), change_type=ChangeType.EMERGENCY)


# --- free text, the ELS plan, edits of sets, links ------------------------------------------------

LONG = "x" * 200_000
DAY = timedelta(days=1)


@pytest.mark.parametrize(
    "call",
    [
        lambda w: services.release_reject(release=w.release, actor=w.people.so, reason=LONG),
        lambda w: services.release_approve(release=w.release, actor=w.people.so, reason=LONG),
        lambda w: services.release_cancel(release=w.release, actor=w.people.rm, reason=LONG),
        lambda w: services.release_update(release=w.release, actor=w.people.rm, data={"description": LONG}),
    ],
    ids=["reject", "approve", "cancel", "description"],
)
def test_a_200000_character_text_is_refused_clearly_and_nothing_is_written(world, call):
    # given a submitted release and the number of audit events so far
    p = world.people
    services.release_plan(release=world.release, actor=p.rm)
    services.release_submit(release=world.release, actor=p.rm)
    written = AuditEvent.objects.count()
    # when a person gives a 200,000-character reason or description, then it is refused saying how long
    with pytest.raises(InvalidInput, match=r"at most \d+ characters \(it has 200000\)"):
        call(world)
    # and nothing was written
    assert (AuditEvent.objects.count(), world.reload().state) == (written, ReleaseState.SUBMITTED)
    assert not Approval.objects.filter(release=world.release).exists()


def test_a_release_is_created_with_its_els_plan_and_its_sets_are_edited_with_names_in_the_trail(world):
    p = world.people
    release = services.release_create(
        actor=p.rm,
        name="Portal",
        version="1.0",
        policy=world.policy,
        services=[world.service],
        els_exit_criteria={"max_incidents": 1},
        els_min_duration_days=5,
        els_staff=[p.dm],
    )
    assert (release.els_exit_criteria, release.els_min_duration_days, list(release.els_staff.all())) == (
        {"max_incidents": 1},
        5,
        [p.dm],
    )
    services.release_update(release=release, actor=p.rm, data={"els_staff": [p.dm, p.dm2]})
    assert audit_events_for(release).get(action="release.update").changes == {"els_staff": [["dm"], ["dm", "dm2"]]}


def test_notifications_link_to_the_record_they_are_about(world):
    p = world.people
    approve_plan(world)
    services.release_update(release=world.release, actor=p.rm, data={"planned_end": world.release.planned_end + DAY})
    withdrawn = Notification.objects.get(kind="approval.withdrawn", recipient=p.so)
    awaited = Notification.objects.filter(kind="approval.awaited").first()
    assert withdrawn.link == awaited.link == world.release.get_absolute_url() == f"/releases/{world.release.pk}/"
