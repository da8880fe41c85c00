"""Decisions made at the same moment on two real database connections: exactly one wins, nothing counts twice."""

import threading

import pytest
from django.db import connection

from releases import services
from releases.choices import ChangeState, ReleaseState
from releases.exceptions import AlreadyDecided, ConcurrentModification, DomainError, IllegalTransition
from releases.models import Approval, ChangeRecord, Release
from tests.releases.conftest import make_world


def _at_once(**calls) -> dict:
    """Run each call in its own thread (so on its own connection), released together by a barrier."""
    barrier = threading.Barrier(len(calls))
    outcomes = {}

    def run(name, call):
        try:
            barrier.wait(timeout=10)
            call()
            outcomes[name] = "ok"
        except DomainError as error:
            outcomes[name] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=item) for item in calls.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(3))
def test_approve_and_reject_of_the_same_change_at_once_exactly_one_wins(attempt):
    # given an assessed normal change and two approvers
    world = make_world()
    p = world.people
    change = services.change_create(
        actor=p.rm,
        change_type="normal",
        title="Upgrade",
        planned_start=world.release.planned_start,
        planned_end=world.release.planned_end,
        services=[world.service],
    )
    services.change_submit(change=change, actor=p.rm)
    services.change_assess(change=change, actor=p.ca)
    # when one approves while the other rejects, at the same moment
    outcomes = _at_once(
        approve=lambda: services.change_approve(change=ChangeRecord.objects.get(pk=change.pk), actor=p.ca),
        reject=lambda: services.change_reject(change=ChangeRecord.objects.get(pk=change.pk), actor=p.ea, reason="no"),
    )
    # then exactly one succeeded and the other was refused by the state machine
    winners = [name for name, outcome in outcomes.items() if outcome == "ok"]
    assert len(winners) == 1, outcomes
    loser = next(outcome for outcome in outcomes.values() if outcome != "ok")
    assert isinstance(loser, IllegalTransition | ConcurrentModification)
    final = ChangeRecord.objects.get(pk=change.pk).state
    assert final == (ChangeState.APPROVED if winners == ["approve"] else ChangeState.REJECTED)
    assert Approval.objects.filter(change=change).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_same_person_approving_twice_at_once_is_counted_once():
    # given a release that needs two approvals
    world = make_world()
    p = world.people
    world.policy.approvals_required = 2
    world.policy.save()
    services.release_plan(release=world.release, actor=p.rm)
    services.release_submit(release=world.release, actor=p.rm)
    # when the owner's approval arrives twice at the same moment
    outcomes = _at_once(
        first=lambda: services.release_approve(release=Release.objects.get(pk=world.release.pk), actor=p.so),
        second=lambda: services.release_approve(release=Release.objects.get(pk=world.release.pk), actor=p.so),
    )
    # then one counts, the other is refused as already decided, and the quorum is not reached
    assert sorted(type(outcome).__name__ if outcome != "ok" else outcome for outcome in outcomes.values()) == [
        "AlreadyDecided",
        "ok",
    ]
    assert Approval.objects.filter(release=world.release, withdrawn_at=None).count() == 1
    assert Release.objects.get(pk=world.release.pk).state == ReleaseState.SUBMITTED


@pytest.mark.django_db
def test_a_duplicate_that_slips_past_the_lock_is_caught_by_the_database(world, monkeypatch):
    # given the owner's approval already recorded, and a check that (as in a race) does not see it
    p = world.people
    world.policy.approvals_required = 2
    world.policy.save()
    services.release_plan(release=world.release, actor=p.rm)
    services.release_submit(release=world.release, actor=p.rm)
    services.release_approve(release=world.release, actor=p.so)
    monkeypatch.setattr("releases.services.approval.release_active_approvals", lambda *a, **k: Approval.objects.none())
    # when the owner approves again, then the partial unique constraint refuses it as "already decided"
    with pytest.raises(AlreadyDecided, match="already decided"):
        services.release_approve(release=world.release, actor=p.so)
    assert Approval.objects.filter(release=world.release).count() == 1
