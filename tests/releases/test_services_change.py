"""Change services: who may raise and decide which changes, standard pre-approval, the engine's moves,
reviews, freeze overrides, and conflicts between schedules.
"""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from rdm_site.selectors import audit_events_for
from releases import services
from releases.choices import ChangeOutcome, ChangeState, ChangeTransition, ChangeType
from releases.exceptions import AlreadyDecided, IllegalTransition, InvalidInput, NotAllowed, UnmetConditions
from releases.models import Approval, ChangeRecord, FreezeOverride
from releases.selectors import change_conflicts
from tests.releases.factories import (
    ChangeFactory,
    ChangeTemplateFactory,
    ConfigurationItemFactory,
    FreezeFactory,
    ServiceFactory,
)
from tests.releases.test_models import CHANGE_MOVES

pytestmark = pytest.mark.django_db


def _change(world, actor=None, change_type=ChangeType.NORMAL, **fields):
    start = fields.pop("planned_start", timezone.now() + timedelta(days=2))  # past the default lead time
    return services.change_create(
        actor=actor or world.people.rm,
        change_type=change_type,
        title=fields.pop("title", "Upgrade the shop"),
        planned_start=start,
        planned_end=fields.pop("planned_end", start + timedelta(hours=2)),
        services=fields.pop("services", [world.service]),
        **fields,
    )


def _assessed(world, change_type=ChangeType.NORMAL, actor=None):
    change = _change(world, actor=actor, change_type=change_type)
    services.change_submit(change=change, actor=change.requested_by)
    services.change_assess(change=change, actor=world.people.ea, assessment="ok")
    change.refresh_from_db()
    return change


CHANGE_SERVICES = {
    ChangeTransition.SUBMIT: lambda c, u: services.change_submit(change=c, actor=u),
    ChangeTransition.ASSESS: lambda c, u: services.change_assess(change=c, actor=u),
    ChangeTransition.APPROVE: lambda c, u: services.change_approve(change=c, actor=u),
    ChangeTransition.REJECT: lambda c, u: services.change_reject(change=c, actor=u, reason="no"),
    ChangeTransition.SCHEDULE: lambda c, u: services.change_schedule(change=c, actor=u),
    ChangeTransition.START: lambda c, u: services.change_start(change=c, actor=u),
    ChangeTransition.MARK_IMPLEMENTED: lambda c, u: services.change_complete(
        change=c, actor=u, outcome=ChangeOutcome.IMPLEMENTED
    ),
    ChangeTransition.REVIEW: lambda c, u: services.change_review(change=c, actor=u, notes="fine"),
    ChangeTransition.CLOSE: lambda c, u: services.change_close(change=c, actor=u),
}


@pytest.mark.parametrize(
    ("transition", "state"),
    [(t, s) for t in CHANGE_SERVICES for s in ChangeState if s not in CHANGE_MOVES[t]],
)
def test_each_change_service_refuses_an_illegal_move_naming_state_and_transition(transition, state):
    change = ChangeFactory(state=state)
    admin = User.objects.create_superuser("boss", "boss@rdm.example", "x")
    with pytest.raises(IllegalTransition) as refused:
        CHANGE_SERVICES[transition](change, admin)
    assert refused.value.state == state
    assert f"it is {state.replace('_', ' ')}" in str(refused.value)


# --- creating -------------------------------------------------------------------------------------


def test_change_numbers_come_in_sequence(world):
    first, second = _change(world), _change(world)
    assert first.number.startswith("CHG-")
    assert int(second.number[4:]) == int(first.number[4:]) + 1


def test_a_build_engineer_creates_standard_changes_only(world):
    p = world.people
    template = ChangeTemplateFactory(services=[world.service])
    with pytest.raises(NotAllowed, match="standard changes from a template only"):
        _change(world, actor=p.ci)
    change = _change(world, actor=p.ci, change_type=ChangeType.STANDARD, template=template, title="")
    assert (change.title, change.risk, list(change.services.all())) == (template.name, "low", [world.service])


@pytest.mark.parametrize("username", ["ca", "so", "viewer"])
def test_roles_without_the_permission_create_no_change(world, username):
    with pytest.raises(NotAllowed, match=r"releases\.add_changerecord"):
        _change(world, actor=getattr(world.people, username))


def test_a_standard_change_needs_an_approved_template_covering_its_services(world):
    unapproved = ChangeTemplateFactory(services=[world.service], approved_by=None, approved_at=None)
    with pytest.raises(InvalidInput) as refused:
        _change(
            world,
            change_type=ChangeType.STANDARD,
            template=unapproved,
            services=[world.service, world.other_service],
        )
    assert refused.value.errors == [
        f"template {unapproved} is not active and pre-approved",
        f"template {unapproved} does not cover: Search",
    ]


def test_a_standard_change_is_approved_on_submit_by_its_template(world):
    p = world.people
    template = ChangeTemplateFactory(services=[world.service], approved_by=p.ca)
    change = _change(world, actor=p.ci, change_type=ChangeType.STANDARD, template=template)
    services.change_submit(change=change, actor=p.ci)
    change.refresh_from_db()
    assert change.state == ChangeState.APPROVED
    moves = [(e.action, e.to_state, e.reason) for e in audit_events_for(change) if e.from_state]
    assert moves[-1][:2] == ("change.preapprove", "approved")
    assert "pre-approved by ca" in moves[-1][2]


def test_a_template_is_pre_approved_by_a_change_approver_not_its_author(world):
    p = world.people
    template = ChangeTemplateFactory(approved_by=None, approved_at=None, created_by=p.ca)
    with pytest.raises(NotAllowed, match="they created it"):
        services.change_template_approve(template=template, actor=p.ca)
    services.change_template_approve(template=template, actor=p.ea)
    with pytest.raises(AlreadyDecided):
        services.change_template_approve(template=template, actor=p.ea)


# --- deciding -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change_type", "username", "allowed"),
    [
        (ChangeType.NORMAL, "ca", True),
        (ChangeType.NORMAL, "ea", True),
        (ChangeType.NORMAL, "rm2", False),
        (ChangeType.NORMAL, "dm", False),
        (ChangeType.NORMAL, "so", False),
        (ChangeType.EMERGENCY, "ea", True),
        (ChangeType.EMERGENCY, "ca", False),
        (ChangeType.EMERGENCY, "rm2", False),
    ],
)
def test_role_matrix_for_approving_changes(change_type, username, allowed):
    from tests.releases.conftest import make_world
    from tests.releases.factories import PolicyFactory

    world = make_world()
    if change_type == ChangeType.EMERGENCY:
        world.release.release_type = "emergency"
        world.release.policy = PolicyFactory(release_type="emergency")
        world.release.save()
    change = _assessed(world, change_type=change_type)
    actor = getattr(world.people, username)
    if allowed:
        services.change_approve(change=change, actor=actor)
        change.refresh_from_db()
        assert change.state == ChangeState.APPROVED
    else:
        with pytest.raises(NotAllowed, match=r"releases\.approve"):
            services.change_approve(change=change, actor=actor)


def test_nobody_approves_a_change_they_requested(world):
    p = world.people
    p.ea.groups.add(*p.rm.groups.all())  # an emergency approver who also raises changes
    requester = User.objects.get(pk=p.ea.pk)
    change = _assessed(world, actor=requester)
    with pytest.raises(NotAllowed, match=r"ea may not approve change CHG-\d+: they requested it \(segregation"):
        services.change_approve(change=change, actor=requester)
    services.change_approve(change=change, actor=p.ca)


def test_rejecting_a_change_needs_a_reason_and_is_recorded_as_a_decision(world):
    p = world.people
    change = _assessed(world)
    with pytest.raises(InvalidInput):
        services.change_reject(change=change, actor=p.ca, reason=" ")
    services.change_reject(change=change, actor=p.ca, reason="Clashes with the sale")
    change.refresh_from_db()
    assert change.state == ChangeState.REJECTED
    assert Approval.objects.get(change=change).decision == "rejected"


def test_a_change_whose_schedule_is_over_is_not_approved(world):
    change = _assessed(world)
    change.planned_start, change.planned_end = timezone.now() - timedelta(hours=3), timezone.now() - timedelta(hours=1)
    change.save()
    with pytest.raises(UnmetConditions, match="already over"):
        services.change_approve(change=change, actor=world.people.ca)


# --- carrying out and closing ---------------------------------------------------------------------


def test_the_engine_follows_the_deployment_and_an_emergency_change_is_reviewed_before_closing(world):
    from tests.releases.factories import PolicyFactory

    p = world.people
    world.release.release_type = "emergency"
    world.release.policy = PolicyFactory(release_type="emergency")
    world.release.save()
    change = _change(world, change_type=ChangeType.EMERGENCY, planned_start=timezone.now() - timedelta(minutes=5))
    assert change.requires_review
    services.change_submit(change=change, actor=p.rm)
    services.change_assess(change=change, actor=p.ea)
    services.change_approve(change=change, actor=p.ea, reason="outage")
    services.change_schedule(change=change, actor=p.dm)
    services.change_start(change=change, actor=p.dm)
    services.change_complete(change=change, actor=None, outcome=ChangeOutcome.IMPLEMENTED)
    with pytest.raises(UnmetConditions, match="emergency change is reviewed before it closes"):
        services.change_close(change=change, actor=p.rm)
    with pytest.raises(InvalidInput):
        services.change_review(change=change, actor=p.so, notes="")
    services.change_review(change=change, actor=p.so, notes="Root cause fixed")
    services.change_close(change=change, actor=p.rm)
    change.refresh_from_db()
    assert change.state == ChangeState.CLOSED


def test_a_normal_change_closes_without_review_after_success(world):
    p = world.people
    change = _assessed(world)
    services.change_approve(change=change, actor=p.ca)
    ChangeRecord.objects.filter(pk=change.pk).update(planned_start=timezone.now() - timedelta(minutes=1))  # time passed
    services.change_schedule(change=change, actor=p.dm)
    services.change_start(change=change, actor=p.dm)
    services.change_complete(change=change, actor=p.dm, outcome="implemented")
    services.change_close(change=change, actor=p.rm)
    change.refresh_from_db()
    assert change.state == ChangeState.CLOSED


def test_a_change_starts_only_within_its_schedule(world):
    p = world.people
    change = _assessed(world)
    services.change_approve(change=change, actor=p.ca)
    services.change_schedule(change=change, actor=p.dm)
    with pytest.raises(UnmetConditions, match="schedule does not cover"):
        services.change_start(change=change, actor=p.dm)


def test_a_build_engineer_carries_out_standard_changes_only(world):
    p = world.people
    change = _assessed(world)
    services.change_approve(change=change, actor=p.ca)
    with pytest.raises(NotAllowed, match=r"releases\.implement_change"):
        services.change_schedule(change=change, actor=p.ci)
    template = ChangeTemplateFactory(services=[world.service])
    standard = _change(world, actor=p.ci, change_type=ChangeType.STANDARD, template=template)
    services.change_submit(change=standard, actor=p.ci)
    services.change_schedule(change=standard, actor=p.ci)


# --- freeze overrides -----------------------------------------------------------------------------


def test_a_freeze_override_needs_an_emergency_approver_and_a_reason_and_is_audited(world):
    p = world.people
    change = _change(world)
    FreezeFactory(name="Peak", start=change.planned_start - timedelta(days=1), end=change.planned_end)
    with pytest.raises(NotAllowed, match=r"releases\.override_freeze"):
        services.freeze_override(change=change, actor=p.ca, reason="urgent")
    with pytest.raises(InvalidInput, match="reason"):
        services.freeze_override(change=change, actor=p.ea, reason="")
    override = services.freeze_override(change=change, actor=p.ea, reason="Payment outage fix")
    assert (override.valid_from, override.valid_until) == (change.planned_start, change.planned_end)
    event = next(e for e in audit_events_for(change) if e.action == "change.override_freeze")
    assert (event.actor_label, event.reason) == ("ea", "every freeze over its schedule (Peak): Payment outage fix")


def test_overriding_freezes_for_a_change_that_no_freeze_touches_is_refused_and_nothing_is_stored(world):
    # given a change, a freeze on another service over its schedule, and a freeze on its service months later
    p = world.people
    change = _change(world)
    FreezeFactory(
        name="Search peak", start=change.planned_start, end=change.planned_end, services=[world.other_service]
    )
    later = FreezeFactory(
        name="Summer", start=change.planned_end + timedelta(days=90), end=change.planned_end + timedelta(days=95)
    )
    # when an emergency approver overrides every freeze, or the later one, then each is refused with the reason
    with pytest.raises(UnmetConditions, match="no freeze overlaps the change's schedule"):
        services.freeze_override(change=change, actor=p.ea, reason="just in case")
    with pytest.raises(UnmetConditions, match="freeze Summer does not overlap"):
        services.freeze_override(change=change, actor=p.ea, reason="just in case", freeze=later)
    assert not FreezeOverride.objects.exists()
    assert not [e for e in audit_events_for(change) if e.action == "change.override_freeze"]


# --- conflicts ------------------------------------------------------------------------------------


# One instant for every change of a test: taking now() per change let a second tick between two
# of them turn "ends exactly when the other starts" into an overlap.
_BASE = timezone.now().replace(microsecond=0) + timedelta(days=3)


def _scheduled(services_=(), cis=(), start=0, hours=2, state="approved"):
    return ChangeFactory(
        planned_start=_BASE + timedelta(hours=start),
        planned_end=_BASE + timedelta(hours=start + hours),
        services=list(services_),
        configuration_items=list(cis),
        state=state,
    )


def test_overlapping_changes_on_a_shared_service_conflict():
    shop, search = ServiceFactory(), ServiceFactory()
    change = _scheduled([shop], start=0, hours=2)
    overlapping = _scheduled([shop, search], start=1, hours=2)
    _scheduled([search], start=0, hours=2)  # other service
    assert list(change_conflicts(change)) == [overlapping]


def test_overlapping_changes_on_a_shared_ci_conflict():
    ci = ConfigurationItemFactory()
    change = _scheduled(cis=[ci], start=0, hours=2)
    overlapping = _scheduled(services_=[ServiceFactory()], cis=[ci], start=-1, hours=2)
    assert list(change_conflicts(change)) == [overlapping]


def test_changes_that_only_touch_do_not_conflict():
    shop = ServiceFactory()
    change = _scheduled([shop], start=0, hours=2)
    _scheduled([shop], start=2, hours=2)  # starts exactly when the first ends
    _scheduled([shop], start=-2, hours=2)  # ends exactly when the first starts
    assert list(change_conflicts(change)) == []


def test_finished_changes_do_not_conflict():
    shop = ServiceFactory()
    change = _scheduled([shop])
    _scheduled([shop], state="closed")
    _scheduled([shop], state="rejected")
    _scheduled([shop], state="implemented")
    assert list(change_conflicts(change)) == []


def test_conflicts_are_found_in_one_query(django_assert_num_queries):
    shop, ci = ServiceFactory(), ConfigurationItemFactory()
    change = _scheduled([shop], cis=[ci])
    for _ in range(3):
        _scheduled([shop], cis=[ci], start=1)
    with django_assert_num_queries(1):
        assert len(list(change_conflicts(change))) == 3


# --- editing --------------------------------------------------------------------------------------


def _approved(world):
    change = _assessed(world)
    services.change_approve(change=change, actor=world.people.ca, reason="Fine.")
    change.refresh_from_db()
    return change


def test_editing_what_the_cab_approved_withdraws_the_approval_and_asks_again(world):
    # given an approved normal change
    p = world.people
    change = _approved(world)
    later = (change.planned_start + timedelta(days=1)).replace(microsecond=0)
    # when its requester moves the schedule a day later
    services.change_update(
        change=change, actor=p.rm, data={"planned_start": later, "planned_end": later + timedelta(hours=2)}
    )
    # then the approval is withdrawn (kept, stamped), the change awaits assessment again, and the trail says so
    change.refresh_from_db()
    approval = Approval.objects.get(change=change)
    assert change.state == ChangeState.SUBMITTED
    assert approval.withdrawn_at is not None
    assert "planned_end, planned_start" in approval.withdrawn_reason
    actions = [e.action for e in audit_events_for(change) if e.action.startswith("change.")]
    assert actions[-2:] == ["change.update", "change.reopen_approval"]
    moved = audit_events_for(change).get(action="change.update").changes["planned_start"]
    assert parse_datetime(moved[1]) == later
    # and it is decided again from there
    services.change_assess(change=change, actor=p.ca, assessment="Still fine.")
    services.change_approve(change=change, actor=p.ca)
    assert Approval.objects.filter(change=change, withdrawn_at=None).count() == 1


def test_a_cosmetic_edit_keeps_the_approval(world):
    change = _approved(world)
    services.change_update(change=change, actor=world.people.rm, data={"title": "Upgrade the web shop"})
    change.refresh_from_db()
    assert (change.state, change.title) == (ChangeState.APPROVED, "Upgrade the web shop")
    assert Approval.objects.get(change=change).withdrawn_at is None


def test_a_change_is_edited_only_before_it_is_carried_out_and_conflicts_are_recorded(world):
    p = world.people
    running = ChangeFactory(state=ChangeState.IMPLEMENTING, requested_by=p.rm, services=[world.service])
    with pytest.raises(IllegalTransition, match="it is implementing"):
        services.change_update(change=running, actor=p.rm, data={"title": "Too late"})
    # an edit that moves the schedule onto another change's is recorded with the conflict
    change = _change(world)
    other = _change(world, planned_start=change.planned_start + timedelta(days=2))
    services.change_update(
        change=other, actor=p.rm, data={"planned_start": change.planned_start, "planned_end": change.planned_end}
    )
    assert audit_events_for(other).get(action="change.update").reason == f"conflicts with {change.number}"


def test_a_normal_change_asked_for_within_its_lead_time_is_neither_submitted_nor_approved(world):
    # given the release's policy asks for a day's notice, and a normal change one minute ahead
    p = world.people
    world.policy.lead_time_days = 1
    world.policy.save()
    soon = timezone.now() + timedelta(minutes=1)
    change = _change(world, planned_start=soon, release=world.release)
    # when it is submitted, then the lead time is among the unmet conditions
    with pytest.raises(UnmetConditions, match=r"policy minor needs 1 day\(s\) of lead time"):
        services.change_submit(change=change, actor=p.rm)
    # and one that reached the CAB without it (submitted a minute before it starts) is not approved
    assessed = ChangeFactory(
        state=ChangeState.ASSESSED,
        requested_by=p.rm,
        release=world.release,
        services=[world.service],
        planned_start=soon,
        submitted_at=timezone.now(),
    )
    with pytest.raises(UnmetConditions, match="lead time"):
        services.change_approve(change=assessed, actor=p.ca)
    # while an emergency change is exempt
    emergency = ChangeFactory(
        state=ChangeState.ASSESSED, change_type=ChangeType.EMERGENCY, requested_by=p.rm, services=[world.service],
        planned_start=soon, submitted_at=timezone.now(),
    )  # fmt: skip
    assert services.change_approve(change=emergency, actor=p.ea).state == ChangeState.APPROVED


def test_editing_a_template_the_cab_pre_approved_withdraws_the_pre_approval(world):
    p = world.people
    template = services.change_template_create(
        actor=p.rm, name="Rotate certificates", description="Automated.", services=[world.service]
    )
    assert template.created_by == p.rm
    services.change_template_approve(template=template, actor=p.ca)
    services.change_template_update(template=template, actor=p.rm, data={"active": False})
    template.refresh_from_db()
    assert template.approved_at is not None  # switching it off is not what the CAB approved
    services.change_template_update(template=template, actor=p.rm, data={"risk": "high", "active": True})
    template.refresh_from_db()
    assert (template.approved_at, template.pre_approved) == (None, False)
    event = audit_events_for(template).filter(action="change_template.update").last()
    assert event.changes["risk"] == ["low", "high"]
    assert event.changes["approved_by"] == ["ca", None]
