"""The post-implementation review: it falls due when early life support exits, pre-filled from the record; the
service owner edits and submits it; a Release Manager or another Service Owner accepts or returns it.

Accepting it turns each lesson into a knowledge article (linked to the service and the CIs the release
changed), marks the release's carried-out changes reviewed, and closes the release when the post-release
baseline is there. Overdue reviews are reminded once a day (``reviews_remind_overdue``, from the beat).
Who may take each action, and from which states, is ``releases.actions.REVIEW_ACTIONS``.
"""

from datetime import date, timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from cmdb.models import ConfigurationItem
from rdm_site.actions import action_ensure
from rdm_site.changes import apply_changes, audit_value
from rdm_site.domain import (
    TEXT_MAX_LENGTH,
    bounded_text,
    ensure_conditions,
    locked,
    require_text,
    save,
    validated,
)
from rdm_site.notifications import notification_send
from rdm_site.transitions import transition_record
from releases.actions import REVIEW_ACTIONS
from releases.choices import (
    CHANGE_OUTCOME_STATES,
    REVIEW_OPEN_STATES,
    KnowledgeKind,
    ObjectivesMet,
    ReleaseState,
    ReleaseTransition,
    ReviewState,
    ReviewTransition,
)
from releases.exceptions import InvalidInput
from releases.models import PostImplementationReview, Release, ReviewActionItem
from releases.review_draft import bullets, review_draft
from releases.services._state import state_move
from releases.services.change import change_review
from releases.services.evidence import knowledge_article_create
from releases.services.release import release_close_problems

REVIEW_DUE = "review.due"
REVIEW_OVERDUE = "review.overdue"
REVIEW_SUBMITTED = "review.submitted"
REVIEW_ACCEPTED = "review.accepted"
REVIEW_RETURNED = "review.returned"

REVIEW_EDITABLE_FIELDS = (
    "objectives",
    "objectives_met",
    "objectives_note",
    "went_well",
    "went_badly",
    "lessons",
    "action_items",
)
LESSON_TITLE_LENGTH = 120
MAX_ACTION_ITEMS = 100


def _notify(review: PostImplementationReview, recipients, kind: str, subject: str, body: str, actor) -> None:
    notification_send(
        recipients=recipients,
        kind=kind,
        subject=subject,
        body=body,
        target=review,
        link=review.get_absolute_url(),
        actor=actor,
    )


# --- falling due ----------------------------------------------------------------------------------


def review_open(*, release: Release, actor: User | None) -> PostImplementationReview:
    """Open the review of a release whose early life support exited (``release_review_start`` calls this in its
    transaction): pre-filled, assigned to the owner of the release's first service, due by the policy.
    A release reviewed already keeps its review.
    """
    existing = PostImplementationReview.objects.filter(release=release).first()
    if existing is not None:
        return existing
    service = release.services.select_related("owner").order_by("pk").first()
    if service is None:
        raise InvalidInput(f"Release {release} names no service whose owner could review it.")
    draft = review_draft(release)
    review = PostImplementationReview(
        release=release,
        service=service,
        owner=service.owner,
        due_on=timezone.localdate() + timedelta(days=release.policy.pir_due_days),
        timeline=draft.timeline,
        incidents=draft.incidents,
        checklist=draft.checklist,
        objectives=draft.objectives,
        went_well=bullets(draft.went_well),
        went_badly=bullets(draft.went_badly),
    )
    validated(review)
    review.save()
    transition_record(actor=actor, action="review.create", target=review, to_state=review.state)
    _notify(
        review,
        [service.owner],
        REVIEW_DUE,
        f"The review of release {release} is due by {review.due_on:%Y-%m-%d}",
        "Early life support has exited. The review is pre-filled from the rollout, the incidents and the "
        "checklist: complete the objectives, lessons and action items, then submit it.",
        actor,
    )
    return review


# --- writing --------------------------------------------------------------------------------------


def _action_items(value) -> list[dict]:
    """The action items given as a list of {"text", "owner", "due_on"} (owner a User, due_on a date)."""
    if not isinstance(value, list | tuple) or len(value) > MAX_ACTION_ITEMS:
        raise InvalidInput(f"Give the action items as a list of at most {MAX_ACTION_ITEMS}.")
    items, problems = [], []
    for number, item in enumerate(value, start=1):
        text = bounded_text(item.get("text"), f"action item {number}")
        owner, due_on = item.get("owner"), item.get("due_on")
        if not text:
            problems.append(f"action item {number}: say what to do")
        if not isinstance(owner, User) or not owner.is_active:
            problems.append(f"action item {number}: name its owner (an active user)")
        if not isinstance(due_on, date):
            problems.append(f"action item {number}: give its due date")
        items.append({"text": text, "owner": owner, "due_on": due_on})
    if problems:
        raise InvalidInput(f"The action items are not valid: {'; '.join(problems)}.", problems)
    return items


def _lessons(value) -> list[str]:
    """Each lesson a text of its own (it becomes a knowledge article's body); empty ones are dropped."""
    if not isinstance(value, list | tuple) or not all(isinstance(lesson, str) for lesson in value):
        raise InvalidInput("Give the lessons as a list of texts.")
    lessons = [bounded_text(lesson, f"lesson {n}", TEXT_MAX_LENGTH) for n, lesson in enumerate(value, start=1)]
    return [lesson for lesson in lessons if lesson]


def _item_texts(items) -> list[str]:
    return [f"{item['text']} ({audit_value(item['owner'])}, by {item['due_on']:%Y-%m-%d})" for item in items]


def _replace_action_items(review: PostImplementationReview, value) -> dict:
    """Make the review's action items exactly ``value``; the change as ``{"action_items": [old, new]}``, or {}."""
    items = _action_items(value)
    current = [
        {"text": item.text, "owner": item.owner, "due_on": item.due_on}
        for item in review.action_items.select_related("owner")
    ]
    if _item_texts(current) == _item_texts(items):
        return {}
    review.action_items.all().delete()
    ReviewActionItem.objects.bulk_create(ReviewActionItem(review=review, **item) for item in items)
    return {"action_items": [_item_texts(current), _item_texts(items)]}


@transaction.atomic
def review_update(*, review: PostImplementationReview, actor: User | None, data: dict) -> PostImplementationReview:
    """Edit the review. The first edit of a due review starts its draft (even one that changes nothing: the
    owner opened it to write); editing a returned one reworks it. ``action_items`` (a list of {text, owner,
    due_on}) replaces the review's action items.
    """
    review = locked(review)
    action_ensure(REVIEW_ACTIONS, "update", review, actor)
    data = dict(data)
    if "lessons" in data:
        data["lessons"] = _lessons(data["lessons"])
    changes = _replace_action_items(review, data.pop("action_items")) if "action_items" in data else {}
    changes.update(apply_changes(review, data, REVIEW_EDITABLE_FIELDS))
    if not changes and review.state == ReviewState.DRAFT:
        return review
    validated(review)
    if review.state != ReviewState.DRAFT:
        return state_move(review, ReviewTransition.START_DRAFT, actor=actor, entity="review", changes=changes)
    save(review)
    transition_record(actor=actor, action="review.update", target=review, changes=changes)
    return review


def _submit_problems(review: PostImplementationReview) -> list[str]:
    problems = []
    if not review.objectives.strip():
        problems.append("state the objectives of the release")
    if not review.objectives_met:
        problems.append("say whether the objectives were met (yes, partly or no)")
    elif review.objectives_met != ObjectivesMet.YES and not review.objectives_note.strip():
        problems.append("say how far the objectives were met, and why not fully")
    if not (review.went_well.strip() or review.went_badly.strip()):
        problems.append("say what went well and what went badly")
    return problems


@transaction.atomic
def review_submit(*, review: PostImplementationReview, actor: User | None) -> PostImplementationReview:
    """The owner stands by the review; the release's manager is asked to accept or return it."""
    review = locked(review)
    action_ensure(REVIEW_ACTIONS, ReviewTransition.SUBMIT, review, actor)
    ensure_conditions(f"The review of {review.release} cannot be submitted", _submit_problems(review))
    if review.state != ReviewState.DRAFT:
        state_move(review, ReviewTransition.START_DRAFT, actor=actor, entity="review")
    review.submitted_by = actor
    state_move(review, ReviewTransition.SUBMIT, actor=actor, entity="review")
    _notify(
        review,
        [user for user in [review.release.release_manager] if actor is None or user.pk != actor.pk],
        REVIEW_SUBMITTED,
        f"The review of release {review.release} awaits your decision",
        "Accept it, or return it with a comment.",
        actor,
    )
    return review


# --- deciding -------------------------------------------------------------------------------------


def _lessons_to_knowledge(review: PostImplementationReview, actor: User | None) -> None:
    cis = list(ConfigurationItem.objects.filter(release_units__release=review.release).distinct())
    for lesson in review.lessons:
        first_line = lesson.strip().splitlines()[0]
        title = first_line if len(first_line) <= LESSON_TITLE_LENGTH else first_line[: LESSON_TITLE_LENGTH - 1] + "…"
        knowledge_article_create(
            actor=actor,
            title=title,
            body=lesson,
            kind=KnowledgeKind.LESSON_LEARNED,
            service=review.service,
            release=review.release,
            review=review,
            configuration_items=cis,
        )


@transaction.atomic
def review_accept(
    *, review: PostImplementationReview, actor: User | None, reason: str = ""
) -> PostImplementationReview:
    """Accept the review: its lessons become knowledge articles, the release's changes become reviewed, and the
    release closes when its post-release baseline is there (otherwise ``release_close`` says what is missing).
    """
    reason = bounded_text(reason, "the comment")
    review = locked(review)
    action_ensure(REVIEW_ACTIONS, ReviewTransition.ACCEPT, review, actor)
    review.decided_by, review.decision_reason = actor, reason
    state_move(review, ReviewTransition.ACCEPT, actor=actor, entity="review", reason=reason)
    _lessons_to_knowledge(review, actor)
    release = locked(review.release)
    # The change follows its review as it follows its rollout: RDM moves it, naming who accepted the review.
    accepted_by = actor.get_username() if actor is not None else "RDM"
    notes = f"Post-implementation review of release {release} accepted by {accepted_by}" + (
        f": {reason}" if reason else "."
    )
    for change in release.changes.filter(state__in=CHANGE_OUTCOME_STATES).order_by("pk"):
        change_review(change=change, actor=None, notes=notes)
    if release.state == ReleaseState.IN_REVIEW and not release_close_problems(release):
        state_move(release, ReleaseTransition.CLOSE, actor=actor, entity="release", reason="its review was accepted")
    recipients = [user for user in (review.owner, review.submitted_by) if user is not None]
    _notify(review, recipients, REVIEW_ACCEPTED, f"The review of release {release} was accepted", reason, actor)
    return review


@transaction.atomic
def review_return(*, review: PostImplementationReview, actor: User | None, reason: str) -> PostImplementationReview:
    """Send the review back to its owner with what to rework (the comment is mandatory)."""
    reason = require_text(reason, "what to rework")
    review = locked(review)
    action_ensure(REVIEW_ACTIONS, ReviewTransition.RETURN, review, actor)
    review.decided_by, review.decision_reason = actor, reason
    state_move(review, ReviewTransition.RETURN, actor=actor, entity="review", reason=reason)
    recipients = [user for user in (review.owner, review.submitted_by) if user is not None]
    _notify(review, recipients, REVIEW_RETURNED, f"The review of release {review.release} was returned", reason, actor)
    return review


# --- reminders ------------------------------------------------------------------------------------


def _overdue(today: date):
    return PostImplementationReview.objects.filter(state__in=REVIEW_OPEN_STATES, due_on__lt=today).filter(
        Q(last_reminded_on__isnull=True) | Q(last_reminded_on__lt=today)
    )


def reviews_remind_overdue(*, today: date | None = None) -> int:
    """Remind the owner (and the release's manager) of each overdue review, at most once a day: the day of the
    last reminder is recorded with it, so running this again the same day sends nothing. Returns how many.
    """
    today = today or timezone.localdate()
    sent = 0
    for pk in _overdue(today).values_list("pk", flat=True):
        with transaction.atomic():
            review = _overdue(today).select_for_update(skip_locked=True).select_related("release").filter(pk=pk).first()
            if review is None:  # reminded meanwhile, or being reminded by another worker
                continue
            review.last_reminded_on = today
            review.save(update_fields=["last_reminded_on", "updated"])
            late = (today - review.due_on).days
            _notify(
                review,
                [review.owner, review.release.release_manager],
                REVIEW_OVERDUE,
                f"The review of release {review.release} is {late} day(s) overdue",
                f"It was due on {review.due_on:%Y-%m-%d} and is {review.get_state_display().lower()}.",
                None,
            )
            sent += 1
    return sent


__all__ = [
    "review_accept",
    "review_open",
    "review_return",
    "review_submit",
    "review_update",
    "reviews_remind_overdue",
]
