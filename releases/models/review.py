"""The post-implementation review (PIR) of a release, and the action items it leaves behind."""

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from releases.choices import REVIEW_OPEN_STATES, ObjectivesMet, ReviewState
from releases.models.policy import validate_string_list


def validate_lessons(value) -> None:
    """Lessons are a list of texts: each becomes a knowledge article when the review is accepted."""
    if value:
        validate_string_list(value)


class PostImplementationReview(ConcurrentTransitionMixin, models.Model):
    """What the release achieved and what it taught, written by the owner of its service after ELS.

    It falls due when early life support exits, pre-filled from the record (the rollout's timeline, the
    incidents during ELS, the checklist at go-live) so the owner edits rather than types. Due → draft (the
    first edit) → submitted → accepted | returned; a returned review goes back to draft when it is edited
    or submitted again. Accepting it turns the lessons into knowledge articles, marks the release's changes
    reviewed, and lets the release close.
    """

    release = models.OneToOneField(
        "releases.Release", on_delete=models.PROTECT, related_name="review", verbose_name="release"
    )
    service = models.ForeignKey(
        "cmdb.Service",
        on_delete=models.PROTECT,
        related_name="reviews",
        verbose_name="service",
        help_text="The release's service whose owner files the review.",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="reviews_assigned",
        verbose_name="assigned to",
        help_text="The service owner when the review fell due.",
    )
    state = FSMField("state", max_length=20, choices=ReviewState.choices, default=ReviewState.DUE, protected=True)
    due_on = models.DateField("due on")
    last_reminded_on = models.DateField(
        "last reminded on", null=True, blank=True, help_text="Overdue reminders go out at most once a day."
    )

    # What the record says (filled when the review falls due; read-only afterwards).
    timeline = models.JSONField("rollout timeline", default=list, blank=True, editable=False)
    incidents = models.JSONField("incidents during ELS", default=list, blank=True, editable=False)
    checklist = models.JSONField("checklist at go-live", default=list, blank=True, editable=False)

    # What the owner writes (pre-filled drafts of the first three).
    objectives = models.TextField("objectives", blank=True)
    objectives_met = models.CharField("objectives met", max_length=10, choices=ObjectivesMet.choices, blank=True)
    objectives_note = models.TextField("how the objectives were met", blank=True)
    went_well = models.TextField("what went well", blank=True)
    went_badly = models.TextField("what went badly", blank=True)
    lessons = models.JSONField(
        "lessons", default=list, blank=True, validators=[validate_lessons], help_text="One text per lesson."
    )

    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reviews_submitted",
        verbose_name="submitted by",
    )
    submitted_at = models.DateTimeField("submitted at", null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reviews_decided",
        verbose_name="accepted or returned by",
    )
    decided_at = models.DateTimeField("decided at", null=True, blank=True)
    decision_reason = models.TextField("decision comment", blank=True)
    created = models.DateTimeField("created", auto_now_add=True)
    updated = models.DateTimeField("updated", auto_now=True)

    class Meta:
        verbose_name = "post-implementation review"
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["state", "due_on"], name="releases_review_state_due")]
        permissions = [
            ("write_review", "Can write and submit the post-implementation review of releases of own services"),
            ("write_any_review", "Can write and submit the post-implementation review of any release"),
            ("decide_review", "Can accept or return post-implementation reviews (not one's own)"),
        ]

    def __str__(self) -> str:
        return f"Review of {self.release}"

    def get_absolute_url(self) -> str:
        return reverse("releases:review_detail", args=[self.pk])

    def clean_fields(self, exclude=None):
        # Cleaning re-assigns every field, which the protected state field refuses.
        super().clean_fields(exclude={*(exclude or ()), "state"})

    @property
    def overdue(self) -> bool:
        return self.state in REVIEW_OPEN_STATES and timezone.localdate() > self.due_on

    @transition(field=state, source=[ReviewState.DUE, ReviewState.RETURNED], target=ReviewState.DRAFT)
    def start_draft(self) -> None:
        """The owner edits the pre-filled draft (or reworks a returned one)."""

    @transition(field=state, source=ReviewState.DRAFT, target=ReviewState.SUBMITTED)
    def submit(self) -> None:
        """The owner stands by it: a Release Manager or another Service Owner accepts or returns it."""
        self.submitted_at = timezone.now()

    @transition(field=state, source=ReviewState.SUBMITTED, target=ReviewState.ACCEPTED)
    def accept(self) -> None:
        """The review is complete: its lessons become knowledge, and the release may close."""
        self.decided_at = timezone.now()

    @transition(field=state, source=ReviewState.SUBMITTED, target=ReviewState.RETURNED)
    def return_(self) -> None:
        """Not good enough yet: back to the owner with a comment."""
        self.decided_at = timezone.now()


class ReviewActionItem(models.Model):
    """Something the review decided to do, by whom and by when."""

    review = models.ForeignKey(
        PostImplementationReview, on_delete=models.CASCADE, related_name="action_items", verbose_name="review"
    )
    text = models.TextField("what to do")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_action_items", verbose_name="owner"
    )
    due_on = models.DateField("due on")

    class Meta:
        verbose_name = "review action item"
        ordering = ["review", "due_on", "id"]

    def __str__(self) -> str:
        return self.text[:80]
