"""The post-implementation review: falling due pre-filled from the rollout, writing, submitting, accepting or
returning it (segregation of duties), overdue reminders, and the release closing only when every condition holds.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from deployments.models import Deployment, DeploymentEvent, DeploymentProcess, Incident, Step, Wave
from rdm_site.celery import app
from rdm_site.exceptions import IllegalTransition, InvalidInput, NotAllowed, UnmetConditions
from rdm_site.models import Notification
from releases import services
from releases.choices import (
    BaselineKind,
    ChangeState,
    KnowledgeKind,
    ObjectivesMet,
    ReleaseState,
    ReviewState,
)
from releases.models import KnowledgeArticle, PostImplementationReview, Release
from releases.services.review import REVIEW_ACCEPTED, REVIEW_DUE, REVIEW_OVERDUE, REVIEW_RETURNED
from releases.tasks import reviews_remind_overdue_task
from tests.releases.conftest import green_release
from tests.releases.factories import FreezeFactory

pytestmark = pytest.mark.django_db


# --- building a rollout that went wrong, then right ----------------------------------------------


def _at(minutes: int):
    return timezone.now() - timedelta(days=3) + timedelta(minutes=minutes)


def _events(deployment: Deployment, *events: tuple[int, str, str]) -> None:
    DeploymentEvent.objects.bulk_create(
        DeploymentEvent(
            deployment=deployment, seq=seq, type="deployment", state=state, at=_at(seq * 5), message=message
        )
        for seq, (_, state, message) in enumerate(events, start=1)
    )


def rolled_back_then_deployed(world):
    """Deployment 1 ran under a freeze override, paused for the freeze, passed a manual intervention, failed
    wave 2's health gate and rolled back; deployment 2 succeeded. ELS saw one P2 incident, restored in 80 min.
    """
    p = world.people
    release, change = green_release(world, change_start=timezone.now() - timedelta(hours=1))
    FreezeFactory(
        start=timezone.now() - timedelta(days=1), end=timezone.now() + timedelta(days=1), services=[world.service]
    )
    services.freeze_override(change=change, actor=p.ea, reason="The outage fix cannot wait.")
    services.release_deploying(release=release, actor=p.dm)
    process = DeploymentProcess.objects.create(service=world.service, name="shop")
    package = release.packages.get()
    common = {"service": world.service, "environment": world.production, "process": process, "package": package}
    first = Deployment.objects.create(
        **common,
        change=change,
        version="2.0",
        model="phased",
        state="rolled_back",
        started_at=_at(0),
        finished_at=_at(40),
    )
    canary = Wave.objects.create(
        deployment=first,
        index=0,
        name="canary",
        target_count=1,
        state="passed",
        started_at=_at(0),
        finished_at=_at(10),
        health_gate=[{"url": "https://shop.example/health"}],
    )
    Wave.objects.create(
        deployment=first,
        index=1,
        name="10 %",
        target_count=4,
        state="failed",
        started_at=_at(15),
        finished_at=_at(22),
        outcome="health check https://shop.example/health answered 503",
        health_gate=[{"url": "https://shop.example/health"}],
    )
    Step.objects.create(
        deployment=first,
        wave=canary,
        name="Confirm the backup",
        executor="manual_intervention",
        state="succeeded",
        manual_answer="proceed",
        answered_by=p.dm,
        started_at=_at(1),
        answered_at=_at(5),
        idempotency_key="pir-1",
    )
    _events(
        first,
        (1, "running", "the engine started the first wave"),
        (2, "paused", "before wave 2 (10 %): freeze Black Friday"),
        (3, "running", "resumed"),
        (4, "rolling_back", "wave 2 (10 %) failed its health gate"),
        (5, "rolled_back", "every rollback step succeeded"),
    )
    second = Deployment.objects.create(
        **common,
        change=change,
        version="2.0.1",
        model="big_bang",
        state="succeeded",
        started_at=_at(60),
        finished_at=_at(72),
    )
    Wave.objects.create(
        deployment=second, index=0, name="all", target_count=4, state="passed", started_at=_at(60), finished_at=_at(72)
    )
    services.change_schedule(change=change, actor=p.dm)
    services.change_start(change=change, actor=p.dm)
    services.change_complete(change=change, actor=p.dm, outcome="implemented")
    services.release_deployed(release=release)
    services.release_els_start(release=release, actor=p.so)
    Release.objects.filter(pk=release.pk).update(els_min_duration_days=0, els_started_at=_at(80))
    Incident.objects.create(
        title="Checkout slow",
        severity="p2",
        state="resolved",
        release=release,
        deployment=second,
        opened_at=_at(100),
        resolved_at=_at(180),
    )
    return world.reload(), change


def reviewed_release(world) -> PostImplementationReview:
    release, _ = rolled_back_then_deployed(world)
    services.release_review_start(release=release, actor=world.people.dm)
    return PostImplementationReview.objects.get(release=release)


def written(review, actor, **fields) -> PostImplementationReview:
    data = {"objectives_met": ObjectivesMet.YES, "lessons": ["Bake the canary for longer before 10 %."], **fields}
    return services.review_update(review=review, actor=actor, data=data)


# --- falling due, pre-filled -----------------------------------------------------------------------


def test_the_review_falls_due_at_els_exit_prefilled_from_the_rollout(world):
    # given a release whose first rollout rolled back under a freeze override and whose second succeeded
    review = reviewed_release(world)
    # then the review is due for the owner of its service, by the policy's date, and the owner is told
    assert review.state == ReviewState.DUE
    assert review.owner == world.people.so
    assert review.service == world.service
    assert review.due_on == timezone.localdate() + timedelta(days=world.policy.pir_due_days)
    assert Notification.objects.filter(kind=REVIEW_DUE, recipient=world.people.so).exists()
    # and it is pre-filled: objectives from the release, each production deployment's timeline
    assert review.objectives == world.release.description
    first, second = review.timeline
    told = [line["text"] for line in first["lines"]]
    assert any("Wave 2 (10 %, 4 target(s)) failed after 7 min: health check" in text for text in told)
    assert any("Wave 1 (canary, 1 target(s)) passed its health gate after 10 min" in text for text in told)
    assert any("paused: before wave 2 (10 %): freeze Black Friday" in text for text in told)
    assert any("started rolling back: wave 2 (10 %) failed its health gate" in text for text in told)
    assert any("Manual intervention 'Confirm the backup' answered 'proceed' by dm after 4 min" in t for t in told)
    assert any("Override of every freeze granted by ea: The outage fix cannot wait." in text for text in told)
    assert first["state"] == "rolled_back"
    assert first["duration"] == "40 min"
    assert second["state"] == "succeeded"
    # the incidents during ELS with their time to restore, and the checklist as it stood
    assert [(i["severity"], i["title"], i["time_to_restore"]) for i in review.incidents] == [
        ("p2", "Checkout slow", "1 h 20 min")
    ]
    assert {gate["gate"] for gate in review.checklist} >= {"plan_approved", "rollback_ready"}
    assert all(gate["satisfied"] for gate in review.checklist)
    # and a first draft of what went well and badly, from those facts only
    assert "Wave 2 (10 %, 4 target(s)) failed at" in review.went_badly
    assert "The rollout rolled back at" in review.went_badly
    assert "under an override of every freeze by ea" in review.went_badly
    assert "P2 incident" in review.went_badly
    assert "restored after 1 h 20 min" in review.went_badly
    assert "succeeded in 12 min: 1 wave(s) passed their gates" in review.went_well
    assert "Every gate of the go/no-go checklist was green." in review.went_well
    assert "No incident" not in review.went_well


def test_a_release_without_incidents_says_so(world):
    release, _ = rolled_back_then_deployed(world)
    Incident.objects.all().delete()
    services.release_review_start(release=release, actor=world.people.dm)
    assert "No incident during early life support." in release.review.went_well


# --- writing, submitting, deciding --------------------------------------------------------------


def test_the_first_edit_starts_the_draft_and_action_items_are_replaced_as_given(world):
    p = world.people
    review = reviewed_release(world)
    due = timezone.localdate() + timedelta(days=10)
    items = [{"text": "Raise the canary bake time", "owner": p.dm, "due_on": due}]
    review = written(review, p.so, action_items=items)
    assert review.state == ReviewState.DRAFT
    assert [(i.text, i.owner, i.due_on) for i in review.action_items.all()] == [
        ("Raise the canary bake time", p.dm, due)
    ]
    written(review, p.so, action_items=[])
    assert not review.action_items.exists()
    with pytest.raises(InvalidInput, match="action item 1: name its owner"):
        written(review, p.so, action_items=[{"text": "x", "owner": None, "due_on": due}])


def test_only_the_owner_of_the_service_writes_it(world):
    p = world.people
    review = reviewed_release(world)
    for outsider in (p.so_other, p.rm, p.dm):
        with pytest.raises(NotAllowed):
            written(review, outsider)


def test_submit_reports_every_missing_part(world):
    p = world.people
    review = reviewed_release(world)
    services.review_update(
        review=review,
        actor=p.so,
        data={"objectives": "", "went_well": "", "went_badly": "", "objectives_met": "partly"},
    )
    with pytest.raises(UnmetConditions) as refused:
        services.review_submit(review=review, actor=p.so)
    assert refused.value.conditions == [
        "state the objectives of the release",
        "say how far the objectives were met, and why not fully",
        "say what went well and what went badly",
    ]


def test_the_submitter_may_not_accept_it_and_another_service_owner_may(world):
    p = world.people
    review = reviewed_release(world)
    services.review_submit(review=written(review, p.so), actor=p.so)
    # when the submitter tries to accept their own review, then segregation of duties refuses
    with pytest.raises(NotAllowed, match="they submitted it \\(segregation of duties\\)"):
        services.review_accept(review=review, actor=p.so)
    # a Deployment Manager may not decide at all
    with pytest.raises(NotAllowed):
        services.review_accept(review=review, actor=p.dm)
    # another Service Owner may
    services.review_accept(review=review, actor=p.so_other, reason="Thorough.")
    review.refresh_from_db()
    assert review.state == ReviewState.ACCEPTED
    assert review.decided_by == p.so_other


def test_a_returned_review_is_reworked_and_submitted_again(world):
    p = world.people
    review = reviewed_release(world)
    services.review_submit(review=written(review, p.so), actor=p.so)
    with pytest.raises(InvalidInput, match="what to rework"):
        services.review_return(review=review, actor=p.rm, reason="")
    services.review_return(review=review, actor=p.rm, reason="Say why the gate failed.")
    review.refresh_from_db()
    assert review.state == ReviewState.RETURNED
    assert review.decision_reason == "Say why the gate failed."
    assert Notification.objects.filter(kind=REVIEW_RETURNED, recipient=p.so).exists()
    # when the owner edits it, it is a draft again; submitted again, the Release Manager accepts it
    written(review, p.so, went_badly="The 503 came from a cold cache.")
    assert PostImplementationReview.objects.get(pk=review.pk).state == ReviewState.DRAFT
    services.review_submit(review=review, actor=p.so)
    services.review_accept(review=review, actor=p.rm)
    assert PostImplementationReview.objects.get(pk=review.pk).state == ReviewState.ACCEPTED


def test_accepting_turns_lessons_into_knowledge_reviews_the_changes_and_closes_the_release(world):
    p = world.people
    review = reviewed_release(world)
    services.release_baseline_take(release=world.release, actor=p.rm, kind=BaselineKind.POST_RELEASE)
    lessons = [
        "Bake the canary for longer before 10 %.\nThe cache needs ten minutes to warm.",
        "Freeze overrides need a DM on call.",
    ]
    services.review_submit(review=written(review, p.so, lessons=lessons), actor=p.so)
    services.review_accept(review=review, actor=p.rm, reason="Good.")
    # each lesson is a knowledge article of the service, linked to the CIs the release changed
    articles = KnowledgeArticle.objects.filter(review=review).order_by("pk")
    assert [(a.title, a.kind, a.service) for a in articles] == [
        ("Bake the canary for longer before 10 %.", KnowledgeKind.LESSON_LEARNED, world.service),
        ("Freeze overrides need a DM on call.", KnowledgeKind.LESSON_LEARNED, world.service),
    ]
    assert list(articles[0].configuration_items.all()) == [world.ci]
    # the change record is reviewed, the release closed, and the owner told
    assert world.release.changes.get().state == ChangeState.REVIEWED
    assert world.reload().state == ReleaseState.CLOSED
    assert Notification.objects.filter(kind=REVIEW_ACCEPTED, recipient=p.so).exists()


def test_a_release_closes_only_when_every_condition_holds(world):
    p = world.people
    review = reviewed_release(world)
    release = world.reload()
    # given no accepted review and no post-release baseline, then closing names both
    with pytest.raises(UnmetConditions) as refused:
        services.release_close(release=release, actor=p.rm)
    assert refused.value.conditions == [
        "accept its post-implementation review (it is due)",
        "take the post-release baseline (the CMDB must show what is live now)",
    ]
    # given the review accepted (the release stays in review without its baseline), then the baseline alone
    services.review_submit(review=written(review, p.so), actor=p.so)
    services.review_accept(review=review, actor=p.rm)
    assert world.reload().state == ReleaseState.IN_REVIEW
    with pytest.raises(UnmetConditions) as refused:
        services.release_close(release=release, actor=p.rm)
    assert refused.value.conditions == ["take the post-release baseline (the CMDB must show what is live now)"]
    # given the baseline too, then it closes
    services.release_baseline_take(release=release, actor=p.rm, kind=BaselineKind.POST_RELEASE)
    services.release_close(release=release, actor=p.rm)
    assert world.reload().state == ReleaseState.CLOSED


def test_a_release_whose_review_never_fell_due_cannot_close(world):
    p = world.people
    release, _ = rolled_back_then_deployed(world)
    Release.objects.filter(pk=release.pk).update(state=ReleaseState.IN_REVIEW)
    services.release_baseline_take(release=release, actor=p.rm, kind=BaselineKind.POST_RELEASE)
    with pytest.raises(UnmetConditions, match="has not fallen due"):
        services.release_close(release=release, actor=p.rm)


# --- reminders ------------------------------------------------------------------------------------


def test_an_overdue_review_is_reminded_once_a_day(world):
    p = world.people
    review = reviewed_release(world)
    today = review.due_on + timedelta(days=1)

    def reminders():
        return Notification.objects.filter(kind=REVIEW_OVERDUE)

    # not yet overdue on its due date
    assert services.reviews_remind_overdue(today=review.due_on) == 0
    # the day after: the owner and the release manager are reminded, once however often the beat runs
    assert services.reviews_remind_overdue(today=today) == 1
    assert services.reviews_remind_overdue(today=today) == 0
    assert sorted(n.recipient.username for n in reminders()) == ["rm", "so"]
    assert "1 day(s) overdue" in reminders().first().subject
    # the next day, again once
    assert services.reviews_remind_overdue(today=today + timedelta(days=1)) == 1
    assert reminders().count() == 4
    # a submitted review is no longer the owner's to write: no reminder
    services.review_submit(review=written(review, p.so), actor=p.so)
    assert services.reviews_remind_overdue(today=today + timedelta(days=2)) == 0


def test_the_beat_looks_for_overdue_reviews_every_hour_through_the_task(world):
    assert app.conf.beat_schedule["reviews-remind-overdue"] == {
        "task": "releases.tasks.reviews_remind_overdue_task",
        "schedule": 3600.0,
    }
    review = reviewed_release(world)
    PostImplementationReview.objects.filter(pk=review.pk).update(due_on=timezone.localdate() - timedelta(days=2))
    assert reviews_remind_overdue_task.apply().get() == 1
    assert reviews_remind_overdue_task.apply().get() == 0


# --- the state machine ----------------------------------------------------------------------------

SERVICES = {
    "update": lambda review, w: written(review, w.people.so, went_well="- Fast."),
    "submit": lambda review, w: services.review_submit(review=review, actor=w.people.so),
    "accept": lambda review, w: services.review_accept(review=review, actor=w.people.rm),
    "return": lambda review, w: services.review_return(review=review, actor=w.people.rm, reason="More."),
}
LEGAL = {
    "update": {ReviewState.DUE, ReviewState.DRAFT, ReviewState.RETURNED},
    "submit": {ReviewState.DUE, ReviewState.DRAFT, ReviewState.RETURNED},
    "accept": {ReviewState.SUBMITTED},
    "return": {ReviewState.SUBMITTED},
}
AFTER = {
    "update": ReviewState.DRAFT,
    "submit": ReviewState.SUBMITTED,
    "accept": ReviewState.ACCEPTED,
    "return": ReviewState.RETURNED,
}


@pytest.mark.parametrize("state", ReviewState.values)
@pytest.mark.parametrize("action", SERVICES)
def test_every_state_and_transition_is_allowed_or_refused(world, action, state):
    # given a complete review in ``state`` (submitted by its owner)
    review = PostImplementationReview.objects.create(
        release=world.release,
        service=world.service,
        owner=world.people.so,
        due_on=timezone.localdate(),
        state=state,
        objectives="Faster checkout.",
        objectives_met=ObjectivesMet.YES,
        went_well="- Fast.",
        submitted_by=world.people.so if state != ReviewState.DUE else None,
    )
    # when the action is taken by someone allowed to, then it moves the review or is refused as illegal
    if state in LEGAL[action]:
        SERVICES[action](review, world)
        assert PostImplementationReview.objects.get(pk=review.pk).state == AFTER[action]
    else:
        with pytest.raises(IllegalTransition):
            SERVICES[action](review, world)
