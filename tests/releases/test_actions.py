"""What a person may do with a release, a package or a change: the actions offered are exactly those the
services accept (other outcomes than "not allowed" or "illegal from this state" count as accepted: a
condition on other records, a bad input, a decision already made).
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from releases import services
from releases.actions import (
    CHANGE_ACTIONS,
    PACKAGE_ACTIONS,
    RELEASE_ACTIONS,
    change_available_actions,
    package_available_actions,
    release_available_actions,
)
from releases.choices import ChangeOutcome, ChangeState, ChangeType, PackageState, ReleaseState
from releases.exceptions import DomainError, IllegalTransition, NotAllowed
from tests.releases.factories import ChangeFactory, ChangeTemplateFactory, PackageFactory, ReleaseFactory

pytestmark = pytest.mark.django_db

PEOPLE = ["rm", "rm2", "ca", "ea", "dm", "dm2", "ci", "so", "so_other", "viewer"]
PROPERTY = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

RELEASE_CALLS = {
    "update": lambda r, u: services.release_update(release=r, actor=u, data={"description": "Edited."}),
    "plan": lambda r, u: services.release_plan(release=r, actor=u),
    "submit": lambda r, u: services.release_submit(release=r, actor=u),
    "approve": lambda r, u: services.release_approve(release=r, actor=u),
    "reject": lambda r, u: services.release_reject(release=r, actor=u, reason="Not now."),
    "mark_ready": lambda r, u: services.release_mark_ready(release=r, actor=u),
    "replan": lambda r, u: services.release_replan(release=r, actor=u),
    "cancel": lambda r, u: services.release_cancel(release=r, actor=u, reason="Dropped."),
    "start_deploying": lambda r, u: services.release_deploying(release=r, actor=u),
    "mark_deployed": lambda r, u: services.release_deployed(release=r, actor=u),
    "mark_failed": lambda r, u: services.release_failed(release=r, actor=u, reason="Broke."),
    "mark_rolled_back": lambda r, u: services.release_rolled_back(release=r, actor=u, reason="Broke."),
    "start_els": lambda r, u: services.release_els_start(release=r, actor=u),
    "start_review": lambda r, u: services.release_review_start(release=r, actor=u),
    "close": lambda r, u: services.release_close(release=r, actor=u),
}
PACKAGE_CALLS = {
    "mark_built": lambda p, u: services.package_mark_built(package=p, actor=u),
    "validate": lambda p, u: services.package_validate(package=p, actor=u),
    "reject": lambda p, u: services.package_reject(package=p, actor=u, reason="Smoke test crashed."),
    "record_test_run": lambda p, u: services.test_run_record(package=p, actor=u, suite="regression", passed=3),
}
CHANGE_CALLS = {
    "update": lambda c, u: services.change_update(change=c, actor=u, data={"title": "Edited"}),
    "submit": lambda c, u: services.change_submit(change=c, actor=u),
    "assess": lambda c, u: services.change_assess(change=c, actor=u, assessment="Low risk."),
    "approve": lambda c, u: services.change_approve(change=c, actor=u),
    "reject": lambda c, u: services.change_reject(change=c, actor=u, reason="Too risky."),
    "schedule": lambda c, u: services.change_schedule(change=c, actor=u),
    "start": lambda c, u: services.change_start(change=c, actor=u),
    "mark_implemented": lambda c, u: services.change_complete(change=c, actor=u, outcome=ChangeOutcome.IMPLEMENTED),
    "mark_failed": lambda c, u: services.change_complete(change=c, actor=u, outcome=ChangeOutcome.FAILED),
    "mark_backed_out": lambda c, u: services.change_complete(change=c, actor=u, outcome=ChangeOutcome.BACKED_OUT),
    "review": lambda c, u: services.change_review(change=c, actor=u, notes="Went well."),
    "close": lambda c, u: services.change_close(change=c, actor=u),
    "override_freeze": lambda c, u: services.freeze_override(change=c, actor=u, reason="Outage fix."),
}


def _accepted(call, record, actor) -> bool:
    """Whether the service took the action: anything but "not allowed" or "illegal from this state"."""
    try:
        call(record, actor)
    except (NotAllowed, IllegalTransition):
        return False
    except DomainError:
        return True
    return True


def test_every_action_of_each_rule_table_is_tried_here():
    assert (set(RELEASE_CALLS), set(PACKAGE_CALLS), set(CHANGE_CALLS)) == (
        set(RELEASE_ACTIONS),
        set(PACKAGE_ACTIONS),
        set(CHANGE_ACTIONS),
    )


@PROPERTY
@given(state=st.sampled_from(ReleaseState), person=st.sampled_from(PEOPLE), action=st.sampled_from(list(RELEASE_CALLS)))
def test_a_release_action_is_offered_exactly_when_its_service_accepts_it(world, state, person, action):
    # given a release of the world's service in some state, managed by rm, and someone in some role
    p = world.people
    release = ReleaseFactory(
        state=state, policy=world.policy, services=[world.service], release_manager=p.rm, requested_by=p.rm
    )
    actor = getattr(p, person)
    # when we ask what they may do, and then try
    offered = action in release_available_actions(release, actor)
    # then the offer and the service agree
    assert offered == _accepted(RELEASE_CALLS[action], release, actor)


@PROPERTY
@given(
    state=st.sampled_from(PackageState),
    builder=st.sampled_from(["ci", "dm"]),
    person=st.sampled_from(PEOPLE),
    action=st.sampled_from(list(PACKAGE_CALLS)),
)
def test_a_package_action_is_offered_exactly_when_its_service_accepts_it(world, state, builder, person, action):
    # given a package in some state, built by a pipeline's engineer or by a Deployment Manager (who then may
    # not validate it)
    p = world.people
    release = ReleaseFactory(policy=world.policy, services=[world.service], release_manager=p.rm)
    package = PackageFactory(release=release, state=state, built_by=getattr(p, builder))
    actor = getattr(p, person)
    offered = action in package_available_actions(package, actor)
    assert offered == _accepted(PACKAGE_CALLS[action], package, actor)


@PROPERTY
@given(
    state=st.sampled_from(ChangeState),
    change_type=st.sampled_from(ChangeType),
    person=st.sampled_from(PEOPLE),
    action=st.sampled_from(list(CHANGE_CALLS)),
)
def test_a_change_action_is_offered_exactly_when_its_service_accepts_it(world, state, change_type, person, action):
    # given a change of some type in some state, requested by rm
    p = world.people
    template = ChangeTemplateFactory(services=[world.service]) if change_type == ChangeType.STANDARD else None
    change = ChangeFactory(
        state=state,
        change_type=change_type,
        template=template,
        requested_by=p.rm,
        services=[world.service],
        requires_review=change_type == ChangeType.EMERGENCY,
    )
    actor = getattr(p, person)
    offered = action in change_available_actions(change, actor)
    assert offered == _accepted(CHANGE_CALLS[action], change, actor)


def test_the_offers_read_as_the_role_table_and_the_lifecycles_say(world):
    p = world.people
    submitted = ReleaseFactory(
        state=ReleaseState.SUBMITTED, policy=world.policy, services=[world.service], release_manager=p.rm
    )
    assert release_available_actions(submitted, p.so) == ["approve", "reject"]
    assert release_available_actions(submitted, p.rm) == ["update", "cancel"]  # not their own plan
    assert release_available_actions(submitted, p.so_other) == []  # not their service
    built = PackageFactory(release=world.release, state=PackageState.BUILT, built_by=p.dm)
    assert package_available_actions(built, p.dm) == []  # not their own build
    assert package_available_actions(built, p.dm2) == ["validate", "reject"]
    assert package_available_actions(built, p.ci) == ["record_test_run"]
    assessed = ChangeFactory(state=ChangeState.ASSESSED, requested_by=p.rm, services=[world.service])
    assert change_available_actions(assessed, p.ca) == ["approve", "reject"]
    assert change_available_actions(assessed, p.rm) == ["update"]
