"""One transition record: every transition and decision of a release, package, change, approval and freeze
override leaves an audit event and, in the same transaction, its outbox row (what webhooks and live pages
publish).
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from rdm_site.models import AuditEvent, OutboxEvent
from releases import services
from releases.choices import (
    BaselineKind,
    ChangeOutcome,
    ChangeState,
    ChangeTransition,
    ChangeType,
    PackageTransition,
    ReleaseState,
    ReleaseTransition,
)
from releases.models import Release
from tests.releases.conftest import SHA, accept_review, green_release
from tests.releases.factories import ChangeFactory, ChangeTemplateFactory, FreezeFactory, ReleaseFactory

pytestmark = pytest.mark.django_db


def _walk_every_path(world) -> None:
    """Drive releases, packages and changes through every transition of their state machines."""
    p = world.people
    release, change = green_release(world)  # plan, submit, approve, mark_ready; package register … validate
    services.release_deploying(release=release, actor=p.dm)
    services.release_deployed(release=release, actor=None)
    services.release_els_start(release=release, actor=p.so)
    Release.objects.filter(pk=release.pk).update(els_min_duration_days=0)  # no need to wait out ELS here
    services.release_review_start(release=release, actor=p.dm)
    accept_review(world)
    services.release_baseline_take(release=release, actor=p.rm, kind=BaselineKind.POST_RELEASE)
    services.release_close(release=release, actor=p.so)
    # a rejected plan, re-planned, then re-opened by an edit after approval, and cancelled
    other = ReleaseFactory(policy=world.policy, services=[world.service], release_manager=p.rm)
    services.release_plan(release=other, actor=p.rm)
    services.release_submit(release=other, actor=p.rm)
    services.release_reject(release=other, actor=p.so, reason="Too early.")
    services.release_replan(release=other, actor=p.rm, reason="Moved a week.")
    services.release_submit(release=other, actor=p.rm)
    services.release_approve(release=other, actor=p.so)
    later = other.planned_end + timedelta(hours=1)
    services.release_update(release=other, actor=p.rm, data={"planned_end": later})  # reopen_approval
    # a rebuilt package (supersede), rejected
    services.package_register(release=other, actor=p.ci, version="b8")
    package = services.package_register(
        release=other, actor=p.ci, version="b9", artifacts=[{"name": "a", "uri": "s3://b/a", "sha256": SHA}]
    )
    services.package_mark_built(package=package, actor=p.ci)
    services.package_reject(package=package, actor=p.dm, reason="Smoke test crashed.")
    services.release_cancel(release=other, actor=p.rm, reason="Superseded by 3.0.")
    for ending in (services.release_failed, services.release_rolled_back):
        deploying = ReleaseFactory(state=ReleaseState.DEPLOYING, policy=world.policy, services=[world.service])
        ending(release=deploying, actor=p.dm, reason="Error rate doubled.")
    # the change carrying the first release, implemented and closed; others rejected, failed, backed out
    services.change_schedule(change=change, actor=p.dm)
    services.change_start(change=change, actor=p.dm, at=change.planned_start)
    services.change_complete(change=change, actor=p.dm, outcome=ChangeOutcome.IMPLEMENTED)
    services.change_close(change=change, actor=p.rm)
    start = timezone.now() + timedelta(days=3)
    rejected = services.change_create(
        actor=p.rm, change_type=ChangeType.NORMAL, title="Risky", planned_start=start,
        planned_end=start + timedelta(hours=1), services=[world.service],
    )  # fmt: skip
    services.change_submit(change=rejected, actor=p.rm)
    services.change_assess(change=rejected, actor=p.ca, assessment="High risk.")
    services.change_approve(change=rejected, actor=p.ca)
    services.change_update(change=rejected, actor=p.rm, data={"planned_end": start + timedelta(hours=2)})  # reopen
    services.change_assess(change=rejected, actor=p.ca, assessment="Still high risk.")
    services.change_reject(change=rejected, actor=p.ca, reason="Not during the sale.")
    for outcome in (ChangeOutcome.FAILED, ChangeOutcome.BACKED_OUT):
        running = ChangeFactory(state=ChangeState.IMPLEMENTING, requested_by=p.rm, services=[world.service])
        services.change_complete(change=running, actor=p.dm, outcome=outcome, reason="It went wrong.")
        services.change_review(change=running, actor=p.rm, notes="Lessons learned.")
    template = ChangeTemplateFactory(services=[world.service])
    standard = services.change_create(
        actor=p.ci, change_type=ChangeType.STANDARD, template=template, planned_start=start,
        planned_end=start + timedelta(hours=1),
    )  # fmt: skip
    services.change_submit(change=standard, actor=p.ci)  # submit, preapprove
    FreezeFactory(start=start - timedelta(days=1), end=start + timedelta(days=1))
    services.freeze_override(change=standard, actor=p.ea, reason="Certificate expires.")


def test_every_transition_and_decision_leaves_an_audit_event_and_its_outbox_row(world):
    # given records driven through every path of their state machines
    _walk_every_path(world)
    # then every transition of each state machine was recorded, by its name
    events = AuditEvent.objects.all()
    actions = set(events.values_list("action", flat=True))
    expected = {
        *(f"release.{transition}" for transition in ReleaseTransition),
        *(f"package.{transition}" for transition in PackageTransition),
        *(f"change.{transition}" for transition in ChangeTransition),
        "approval.approved",
        "approval.rejected",
        "approval.withdraw",
        "change.override_freeze",
    }
    assert expected - actions == set()
    # and each recorded transition, decision and edit has its outbox row, with the same type and object
    recorded = events.filter(action__in=expected | {"release.create", "release.update", "change.update"})
    published = {
        (outbox.audit_event_id, outbox.event_type, outbox.object_type, outbox.object_id)
        for outbox in OutboxEvent.objects.all()
    }
    missing = [e.action for e in recorded if (e.pk, e.action, e.object_type, e.object_id) not in published]
    assert missing == []
    moves = recorded.exclude(from_state="").exclude(action__startswith="approval.")
    assert all(event.to_state for event in moves)
