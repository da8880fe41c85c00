"""Every (state, transition) pair of Release, ReleasePackage and ChangeRecord: allowed (and where it leads) or
refused, as DESIGN.md "State machines" specifies. The expectations are written out here, not read from the
models, so a change to a state machine must change this specification too.
"""

import pytest
from django_fsm import TransitionNotAllowed, can_proceed

from releases.choices import (
    ChangeState,
    ChangeTransition,
    ChangeType,
    PackageState,
    PackageTransition,
    ReleaseState,
    ReleaseTransition,
)
from releases.exceptions import PackageImmutable
from releases.models import ChangeRecord, Release, ReleasePackage
from tests.releases.factories import SHA, ArtifactFactory, ChangeFactory, PackageFactory, ReleaseFactory

R = ReleaseState
PRE_DEPLOYMENT = {R.DRAFT, R.PLANNED, R.SUBMITTED, R.APPROVED, R.READY, R.REJECTED}
LIVE = {R.DEPLOYING, R.DEPLOYED, R.EARLY_LIFE_SUPPORT}

# transition → {source state: target state}
RELEASE_MOVES = {
    ReleaseTransition.PLAN: {R.DRAFT: R.PLANNED},
    ReleaseTransition.SUBMIT: {R.PLANNED: R.SUBMITTED},
    ReleaseTransition.APPROVE: {R.SUBMITTED: R.APPROVED},
    ReleaseTransition.REJECT: {R.SUBMITTED: R.REJECTED},
    ReleaseTransition.REOPEN_APPROVAL: {R.APPROVED: R.SUBMITTED, R.READY: R.SUBMITTED},
    ReleaseTransition.MARK_READY: {R.APPROVED: R.READY},
    ReleaseTransition.CANCEL: dict.fromkeys(PRE_DEPLOYMENT, R.CANCELLED),
    ReleaseTransition.START_DEPLOYING: {R.READY: R.DEPLOYING},
    ReleaseTransition.MARK_DEPLOYED: {R.DEPLOYING: R.DEPLOYED},
    ReleaseTransition.START_ELS: {R.DEPLOYED: R.EARLY_LIFE_SUPPORT},
    ReleaseTransition.START_REVIEW: {R.EARLY_LIFE_SUPPORT: R.IN_REVIEW},
    ReleaseTransition.CLOSE: {R.IN_REVIEW: R.CLOSED},
    ReleaseTransition.MARK_FAILED: dict.fromkeys(LIVE, R.FAILED),
    ReleaseTransition.MARK_ROLLED_BACK: dict.fromkeys(LIVE, R.ROLLED_BACK),
    ReleaseTransition.REPLAN: {R.REJECTED: R.PLANNED, R.FAILED: R.PLANNED, R.ROLLED_BACK: R.PLANNED},
}

P = PackageState
PACKAGE_MOVES = {
    PackageTransition.MARK_BUILT: {P.ASSEMBLING: P.BUILT},
    PackageTransition.VALIDATE: {P.BUILT: P.VALIDATED},
    PackageTransition.REJECT: {P.BUILT: P.REJECTED},
    PackageTransition.SUPERSEDE: dict.fromkeys([P.ASSEMBLING, P.BUILT, P.VALIDATED, P.REJECTED], P.SUPERSEDED),
}

C = ChangeState
CHANGE_MOVES = {
    ChangeTransition.SUBMIT: {C.DRAFT: C.SUBMITTED},
    ChangeTransition.PREAPPROVE: {C.SUBMITTED: C.APPROVED},  # standard changes only (see below)
    ChangeTransition.ASSESS: {C.SUBMITTED: C.ASSESSED},
    ChangeTransition.APPROVE: {C.ASSESSED: C.APPROVED},
    ChangeTransition.REJECT: {C.ASSESSED: C.REJECTED},
    ChangeTransition.REOPEN_APPROVAL: {C.APPROVED: C.SUBMITTED, C.SCHEDULED: C.SUBMITTED},  # an approved edit
    ChangeTransition.SCHEDULE: {C.APPROVED: C.SCHEDULED},
    ChangeTransition.START: {C.SCHEDULED: C.IMPLEMENTING},
    ChangeTransition.MARK_IMPLEMENTED: {C.IMPLEMENTING: C.IMPLEMENTED},
    ChangeTransition.MARK_FAILED: {C.IMPLEMENTING: C.FAILED},
    # implemented, then backed out by redeploying the earlier package (a rollback after success)
    ChangeTransition.MARK_BACKED_OUT: {C.IMPLEMENTING: C.BACKED_OUT, C.IMPLEMENTED: C.BACKED_OUT},
    ChangeTransition.REVIEW: {C.IMPLEMENTED: C.REVIEWED, C.FAILED: C.REVIEWED, C.BACKED_OUT: C.REVIEWED},
    ChangeTransition.CLOSE: {C.REVIEWED: C.CLOSED, C.IMPLEMENTED: C.CLOSED},  # implemented: when no review needed
}


def _pairs(moves, states):
    return [(state, transition) for transition in moves for state in states]


def _apply(record, transition):
    method = getattr(record, transition)
    if not can_proceed(method):
        with pytest.raises(TransitionNotAllowed):
            method()
        return None
    method()
    return record.state


# Transitions only move state (no queries), so unsaved rows are enough here.
@pytest.mark.parametrize(("state", "transition"), _pairs(RELEASE_MOVES, ReleaseState))
def test_release_state_machine(state, transition):
    # given a release in ``state``
    release = Release(state=state)
    # when the transition is called, then it leads where the specification says, or is refused
    assert _apply(release, transition) == RELEASE_MOVES[transition].get(state)


@pytest.mark.parametrize(("state", "transition"), _pairs(PACKAGE_MOVES, PackageState))
def test_package_state_machine(state, transition):
    package = ReleasePackage(state=state)
    assert _apply(package, transition) == PACKAGE_MOVES[transition].get(state)


@pytest.mark.parametrize("change_type", [ChangeType.STANDARD, ChangeType.NORMAL, ChangeType.EMERGENCY])
@pytest.mark.parametrize(("state", "transition"), _pairs(CHANGE_MOVES, ChangeState))
def test_change_state_machine(state, transition, change_type):
    change = ChangeRecord(state=state, change_type=change_type, requires_review=change_type == ChangeType.EMERGENCY)
    expected = CHANGE_MOVES[transition].get(state)
    if transition == ChangeTransition.PREAPPROVE and change_type != ChangeType.STANDARD:
        expected = None  # only a template's pre-approval approves on submit
    if transition == ChangeTransition.CLOSE and state == C.IMPLEMENTED and change_type == ChangeType.EMERGENCY:
        expected = None  # an emergency change is reviewed before it closes
    assert _apply(change, transition) == expected


@pytest.mark.parametrize(
    ("model", "moves"), [(Release, RELEASE_MOVES), (ReleasePackage, PACKAGE_MOVES), (ChangeRecord, CHANGE_MOVES)]
)
def test_the_specification_names_every_transition_of_the_model(model, moves):
    declared = {t.name for t in model._meta.get_field("state").get_all_transitions(model)}
    assert declared == {str(name) for name in moves}


@pytest.mark.django_db
def test_nobody_assigns_a_state_by_hand():
    release = ReleaseFactory()
    with pytest.raises(AttributeError, match="Direct state modification is not allowed"):
        release.state = ReleaseState.CLOSED


@pytest.mark.django_db
def test_a_stale_copy_cannot_overwrite_a_transition_made_meanwhile():
    from django_fsm import ConcurrentTransition

    # given two copies of the same draft release
    release = ReleaseFactory()
    stale = Release.objects.get(pk=release.pk)
    release.plan()
    release.save()
    # when the stale copy moves and saves, then the save is refused
    stale.cancel()
    with pytest.raises(ConcurrentTransition):
        stale.save()


@pytest.mark.django_db
def test_a_validated_package_is_immutable_but_its_state_still_moves():
    # given a validated package with an artifact
    package = PackageFactory(state=PackageState.BUILT)
    ArtifactFactory(package=package)
    package.validate()
    package.save()
    # when its content is edited, then the save is refused with a clear message
    package.version = "tampered"
    with pytest.raises(PackageImmutable, match="immutable"):
        package.save()
    # and an artifact can be neither added nor removed
    package.refresh_from_db()
    with pytest.raises(PackageImmutable):
        ArtifactFactory(package=package, sha256=SHA)
    with pytest.raises(PackageImmutable):
        package.artifacts.get().delete()
    # while superseding it (a state move) is allowed
    package.supersede()
    package.save()
    assert ReleasePackage.objects.get(pk=package.pk).state == PackageState.SUPERSEDED


@pytest.mark.django_db
def test_one_current_package_per_release_is_a_database_rule():
    from django.db import IntegrityError

    package = PackageFactory()
    with pytest.raises(IntegrityError):
        PackageFactory(release=package.release)


@pytest.mark.django_db
def test_artifact_digests_must_be_sha256_hex():
    from django.core.exceptions import ValidationError

    artifact = ArtifactFactory.build(package=PackageFactory(), sha256="XYZ")
    with pytest.raises(ValidationError, match="64 lower-case hexadecimal"):
        artifact.full_clean()


@pytest.mark.django_db
def test_change_covers_its_schedule_start_inclusive_end_exclusive():
    change = ChangeFactory()
    assert change.covers(change.planned_start)
    assert not change.covers(change.planned_end)
