"""Change records (RFCs), the templates that pre-approve standard changes, and freeze overrides."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models
from django.urls import reverse
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from releases.choices import (
    CHANGE_OPEN_STATES,
    ChangeState,
    ChangeTransition,
    ChangeType,
    Risk,
)

CHANGE_NUMBER_SEQUENCE = "releases_change_number_seq"


class ChangeTemplate(models.Model):
    """A standard change, approved once by the CAB: changes created from it are approved on submit.

    The pre-approval (approved_by/at) is what lets a pipeline deploy continuously without a CAB
    meeting per deployment. An inactive or unapproved template creates no standard change.
    """

    name = models.CharField("name", max_length=200, unique=True)
    description = models.TextField("description")
    services = models.ManyToManyField("cmdb.Service", related_name="change_templates", verbose_name="services")
    risk = models.CharField("risk", max_length=10, choices=Risk.choices, default=Risk.LOW)
    active = models.BooleanField("active", default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="change_templates_created",
        verbose_name="created by",
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="change_templates_approved",
        verbose_name="pre-approved by",
    )
    approved_at = models.DateTimeField("pre-approved at", null=True, blank=True)

    class Meta:
        verbose_name = "change template"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("releases:changetemplate_detail", args=[self.pk])

    @property
    def pre_approved(self) -> bool:
        return self.active and self.approved_at is not None


class ChangeRecord(ConcurrentTransitionMixin, models.Model):
    """A request for change (RFC): what will change, on which services and CIs, when, and at what risk.

    A production deployment needs an approved change whose schedule covers it. Standard changes come
    from a pre-approved template and move straight to approved on submit (``change_submit`` calls
    ``submit`` then ``preapprove``); normal changes are assessed and approved by the CAB; emergency
    changes by the emergency CAB, and they must be reviewed afterwards (``requires_review``).
    """

    number = models.CharField("number", max_length=20, unique=True, editable=False)
    change_type = models.CharField("type", max_length=20, choices=ChangeType.choices)
    template = models.ForeignKey(
        ChangeTemplate,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="changes",
        verbose_name="template",
    )
    title = models.CharField("title", max_length=200)
    description = models.TextField("description", blank=True)
    risk = models.CharField("risk", max_length=10, choices=Risk.choices, default=Risk.MEDIUM)
    impact = models.TextField("impact", blank=True)
    services = models.ManyToManyField("cmdb.Service", blank=True, related_name="changes", verbose_name="services")
    configuration_items = models.ManyToManyField(
        "cmdb.ConfigurationItem", blank=True, related_name="changes", verbose_name="configuration items"
    )
    planned_start = models.DateTimeField("planned start")
    planned_end = models.DateTimeField("planned end", help_text="Exclusive.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="changes_requested",
        verbose_name="requested by",
    )
    release = models.ForeignKey(
        "releases.Release",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="changes",
        verbose_name="release",
    )
    state = FSMField("state", max_length=20, choices=ChangeState.choices, default=ChangeState.DRAFT, protected=True)
    requires_review = models.BooleanField(
        "requires review", default=False, help_text="Emergency changes must be reviewed before they close."
    )
    assessment = models.TextField("assessment", blank=True)
    review_notes = models.TextField("review notes", blank=True)
    created = models.DateTimeField("created", auto_now_add=True)
    submitted_at = models.DateTimeField("submitted at", null=True, blank=True)
    assessed_at = models.DateTimeField("assessed at", null=True, blank=True)
    decided_at = models.DateTimeField("decided at", null=True, blank=True)
    started_at = models.DateTimeField("started at", null=True, blank=True)
    ended_at = models.DateTimeField("ended at", null=True, blank=True)
    reviewed_at = models.DateTimeField("reviewed at", null=True, blank=True)
    closed_at = models.DateTimeField("closed at", null=True, blank=True)

    class Meta:
        verbose_name = "change record"
        ordering = ["-created", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(planned_end__gt=models.F("planned_start")), name="releases_change_end_after_start"
            ),
            models.CheckConstraint(
                condition=~models.Q(change_type=ChangeType.STANDARD) | models.Q(template__isnull=False),
                name="releases_change_standard_has_template",
            ),
        ]
        indexes = [
            models.Index(fields=["planned_start", "planned_end"], name="releases_change_schedule"),
            # the list filtered by state in its order (latest planned first): read from the index, not sorted
            # (docs/performance.md)
            models.Index(fields=["state", "-planned_start", "-id"], name="releases_change_state_planned"),
            # conflict detection looks for open changes overlapping a schedule: the few open ones, not the year
            models.Index(
                fields=["planned_start", "planned_end"],
                condition=models.Q(state__in=CHANGE_OPEN_STATES),
                name="releases_change_open_schedule",
            ),
        ]
        permissions = [
            ("create_standard_change", "Can create standard changes from a pre-approved template"),
            ("assess_change", "Can assess submitted changes"),
            ("approve_change", "Can approve or reject normal changes and pre-approve change templates"),
            ("approve_emergency_change", "Can approve or reject emergency changes"),
            ("implement_change", "Can schedule, start and complete any change"),
            ("implement_standard_change", "Can schedule, start and complete standard changes"),
            ("review_change", "Can review and close implemented changes"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.title}".strip()

    def get_absolute_url(self) -> str:
        return reverse("releases:change_detail", args=[self.pk])

    def clean_fields(self, exclude=None):
        super().clean_fields(exclude={*(exclude or ()), "state", "number"})

    def clean(self) -> None:
        super().clean()
        if self.planned_start and self.planned_end and self.planned_end <= self.planned_start:
            raise ValidationError({"planned_end": "The planned end comes after the planned start."})
        if self.change_type == ChangeType.STANDARD and not self.template_id:
            raise ValidationError({"template": "A standard change is created from a pre-approved template."})

    @staticmethod
    def next_number() -> str:
        """CHG-0001, CHG-0002…: from a database sequence, so concurrent creations never share a number."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(%s)", [CHANGE_NUMBER_SEQUENCE])
            return f"CHG-{cursor.fetchone()[0]:04d}"

    @property
    def is_open(self) -> bool:
        return self.state in CHANGE_OPEN_STATES

    def covers(self, at) -> bool:
        """Whether the schedule includes the moment (start inclusive, end exclusive)."""
        return self.planned_start <= at < self.planned_end

    @property
    def may_deploy_outside_windows(self) -> bool:
        """Only an emergency change of an emergency release may be let through when no window is open."""
        from releases.choices import ReleaseType

        return (
            self.change_type == ChangeType.EMERGENCY
            and self.release is not None
            and self.release.release_type == ReleaseType.EMERGENCY
        )

    # --- lifecycle: each method only moves the state (and stamps the moment) ------------------

    @transition(field=state, source=ChangeState.DRAFT, target=ChangeState.SUBMITTED)
    def submit(self) -> None:
        """The requester asks for the change to be assessed (or, for a standard change, approved by template)."""
        self.submitted_at = timezone.now()

    @transition(
        field=state,
        source=ChangeState.SUBMITTED,
        target=ChangeState.APPROVED,
        conditions=[lambda change: change.change_type == ChangeType.STANDARD],
    )
    def preapprove(self) -> None:
        """A standard change is approved by its template's pre-approval: no CAB decision is needed."""
        self.decided_at = timezone.now()

    @transition(field=state, source=ChangeState.SUBMITTED, target=ChangeState.ASSESSED)
    def assess(self) -> None:
        """Risk and impact were assessed; the change awaits its decision."""
        self.assessed_at = timezone.now()

    @transition(field=state, source=ChangeState.ASSESSED, target=ChangeState.APPROVED)
    def approve(self) -> None:
        """The (emergency) CAB approved the change: it may be carried out within its schedule."""
        self.decided_at = timezone.now()

    @transition(field=state, source=ChangeState.ASSESSED, target=ChangeState.REJECTED)
    def reject(self) -> None:
        """The (emergency) CAB refused the change; a new request is needed."""
        self.decided_at = timezone.now()

    @transition(field=state, source=[ChangeState.APPROVED, ChangeState.SCHEDULED], target=ChangeState.SUBMITTED)
    def reopen_approval(self) -> None:
        """What the approvers approved was edited and their approval withdrawn: asked anew, to be assessed and
        decided again (the lead time counts from now).
        """
        self.submitted_at = timezone.now()
        self.assessed_at = self.decided_at = None

    @transition(field=state, source=ChangeState.APPROVED, target=ChangeState.SCHEDULED)
    def schedule(self) -> None:
        """A deployment under this change was scheduled."""

    @transition(field=state, source=ChangeState.SCHEDULED, target=ChangeState.IMPLEMENTING)
    def start(self) -> None:
        """The deployment under this change started."""
        self.started_at = timezone.now()

    @transition(field=state, source=ChangeState.IMPLEMENTING, target=ChangeState.IMPLEMENTED)
    def mark_implemented(self) -> None:
        """The deployment succeeded."""
        self.ended_at = timezone.now()

    @transition(field=state, source=ChangeState.IMPLEMENTING, target=ChangeState.FAILED)
    def mark_failed(self) -> None:
        """The deployment failed."""
        self.ended_at = timezone.now()

    @transition(field=state, source=[ChangeState.IMPLEMENTING, ChangeState.IMPLEMENTED], target=ChangeState.BACKED_OUT)
    def mark_backed_out(self) -> None:
        """The deployment was rolled back (while it ran, or by redeploying the earlier package after it succeeded)."""
        self.ended_at = timezone.now()

    @transition(
        field=state,
        source=[ChangeState.IMPLEMENTED, ChangeState.FAILED, ChangeState.BACKED_OUT],
        target=ChangeState.REVIEWED,
    )
    def review(self) -> None:
        """The post-implementation review was accepted."""
        self.reviewed_at = timezone.now()

    @transition(field=state, source=ChangeState.REVIEWED, target=ChangeState.CLOSED)
    @transition(
        field=state,
        source=ChangeState.IMPLEMENTED,
        target=ChangeState.CLOSED,
        conditions=[lambda change: not change.requires_review],
    )
    def close(self) -> None:
        """Nothing more to do. A successful change that needs no review may close without one;
        an emergency change, or one that failed or was backed out, is reviewed first.
        """
        self.closed_at = timezone.now()

    @classmethod
    def transition_sources(cls, name: ChangeTransition | str) -> list[str]:
        return sorted(t.source for t in cls._meta.get_field("state").get_all_transitions(cls) if t.name == name)


class FreezeOverride(models.Model):
    """An emergency approver's permission to deploy under one change despite a freeze, with the reason.

    Scoped to the change and to its schedule as it was when granted (a later reschedule does not carry
    the override along); ``freeze`` empty means every freeze over that schedule. ``outside_windows`` also
    lets an emergency change of an emergency release deploy when no release window is open.
    """

    change = models.ForeignKey(
        ChangeRecord, on_delete=models.PROTECT, related_name="freeze_overrides", verbose_name="change"
    )
    freeze = models.ForeignKey(
        "releases.FreezePeriod",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="overrides",
        verbose_name="freeze",
    )
    reason = models.TextField("reason")
    outside_windows = models.BooleanField(
        "also outside release windows",
        default=False,
        help_text="Emergency changes of emergency releases only: deploy even when no release window is open.",
    )
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="freeze_overrides", verbose_name="granted by"
    )
    granted_at = models.DateTimeField("granted at", default=timezone.now)
    valid_from = models.DateTimeField("valid from")
    valid_until = models.DateTimeField("valid until", help_text="Exclusive.")

    class Meta:
        verbose_name = "freeze override"
        ordering = ["-granted_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(reason=""), name="releases_freeze_override_has_reason"),
            models.CheckConstraint(
                condition=models.Q(valid_until__gt=models.F("valid_from")), name="releases_freeze_override_span"
            ),
        ]

    def __str__(self) -> str:
        what = f"freeze {self.freeze}" if self.freeze_id else "every freeze"
        if self.outside_windows:
            what += " and the release windows"
        return f"Override of {what} for {self.change.number}"

    def applies(self, *, at, change=None, freeze=None) -> bool:
        """Whether this override lifts ``freeze`` at ``at`` for a deployment under ``change``."""
        if not self.valid_from <= at < self.valid_until:
            return False
        if change is not None and change.pk != self.change_id:
            return False
        return self.freeze_id is None or freeze is None or freeze.pk == self.freeze_id

    def lifts_windows(self, *, at, change=None) -> bool:
        """Whether this override lets a deployment under ``change`` go at ``at`` with no release window open."""
        return self.outside_windows and self.applies(at=at, change=change)
