"""The release and what hangs off it: units, rollback plan, gate evidence, baselines, knowledge articles."""

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from releases.choices import (
    RELEASE_APPROVED_STATES,
    RELEASE_LIVE_STATES,
    RELEASE_PRE_DEPLOYMENT_STATES,
    BaselineKind,
    GateCode,
    KnowledgeKind,
    ReleaseState,
    ReleaseTransition,
    ReleaseType,
    UnitKind,
)
from releases.models.policy import validate_exit_criteria

# The text search configuration of the knowledge base (stemming and stop words of English).
SEARCH_CONFIG = "english"


class Release(ConcurrentTransitionMixin, models.Model):
    """A governed set of changes to one or more services, deployed together and followed into early life.

    The state only moves through the transitions below, each called by one service in
    ``releases.services`` that checks who may, and every condition, first. A save that raced another
    transition fails (``ConcurrentTransitionMixin``) instead of undoing it.
    """

    name = models.CharField("name", max_length=200)
    version = models.CharField("version", max_length=100)
    release_type = models.CharField("release type", max_length=20, choices=ReleaseType.choices)
    policy = models.ForeignKey(
        "releases.ReleasePolicy", on_delete=models.PROTECT, related_name="releases", verbose_name="policy"
    )
    services = models.ManyToManyField("cmdb.Service", related_name="releases", verbose_name="services")
    planned_start = models.DateTimeField("planned start", null=True, blank=True)
    planned_end = models.DateTimeField("planned end", null=True, blank=True)
    release_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="managed_releases",
        verbose_name="release manager",
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="requested_releases",
        verbose_name="requested by",
        help_text="Who created the release; like its manager, they may not approve it.",
    )
    description = models.TextField("description", blank=True)
    release_notes = models.TextField("release notes", blank=True, help_text="Generated from units and commits.")
    state = FSMField("state", max_length=30, choices=ReleaseState.choices, default=ReleaseState.DRAFT, protected=True)

    # Early life support plan; when a part is absent the policy's default counts.
    els_staff = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="els_duties",
        verbose_name="ELS staff",
        help_text="Empty: the owners of the release's services.",
    )
    els_exit_criteria = models.JSONField(
        "ELS exit criteria", default=dict, blank=True, validators=[validate_exit_criteria], help_text="Empty: policy."
    )
    els_min_duration_days = models.PositiveSmallIntegerField(
        "ELS minimum duration (days)", null=True, blank=True, help_text="Empty: policy."
    )

    created = models.DateTimeField("created", auto_now_add=True)
    updated = models.DateTimeField("updated", auto_now=True)
    submitted_at = models.DateTimeField("submitted at", null=True, blank=True)
    approved_at = models.DateTimeField("approved at", null=True, blank=True)
    ready_at = models.DateTimeField("ready at", null=True, blank=True)
    deployment_started_at = models.DateTimeField("deployment started at", null=True, blank=True)
    deployed_at = models.DateTimeField("deployed at", null=True, blank=True)
    els_started_at = models.DateTimeField("ELS started at", null=True, blank=True)
    review_started_at = models.DateTimeField("review started at", null=True, blank=True)
    ended_at = models.DateTimeField("ended at", null=True, blank=True, help_text="Closed, cancelled, failed.")
    end_reason = models.TextField("end reason", blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        # the lists' default order: the newest page is read from the index, not sorted from every row
        indexes = [
            models.Index(fields=["-created", "-id"], name="releases_release_newest"),
            # filtered by state (docs/performance.md)
            models.Index(fields=["state", "-created", "-id"], name="releases_release_state_newest"),
            # the dashboard's pipeline board: the most recently updated few of each state
            models.Index(fields=["state", "-updated", "-id"], name="releases_release_state_updated"),
            # the dashboard's releases deployed this month
            models.Index(
                fields=["deployed_at"], condition=models.Q(deployed_at__isnull=False), name="releases_release_deployed"
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="releases_release_unique_name_version"),
            models.CheckConstraint(
                condition=models.Q(planned_end__isnull=True)
                | models.Q(planned_start__isnull=True)
                | models.Q(planned_end__gt=models.F("planned_start")),
                name="releases_release_end_after_start",
            ),
        ]
        permissions = [
            ("submit_release", "Can submit a release for approval and declare it ready"),
            ("cancel_release", "Can cancel a release"),
            ("approve_release", "Can approve or reject release plans (of owned services only, without 'any')"),
            ("approve_any_release", "Can approve or reject release plans of any service"),
            ("deploy_release", "Can move a release through its production deployment"),
            ("manage_els", "Can start and exit early life support (of owned services only, without 'any')"),
            ("manage_any_els", "Can start and exit early life support of any release"),
            ("close_release", "Can close a reviewed release (of owned services only, without 'any')"),
            ("close_any_release", "Can close any reviewed release"),
            ("notify_stakeholders", "Can send the communication notice of a release"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"

    def get_absolute_url(self) -> str:
        return reverse("releases:release_detail", args=[self.pk])

    def clean_fields(self, exclude=None):
        # Cleaning re-assigns every field, which the protected state field refuses.
        super().clean_fields(exclude={*(exclude or ()), "state"})

    def clean(self) -> None:
        super().clean()
        if self.planned_start and self.planned_end and self.planned_end <= self.planned_start:
            raise ValidationError({"planned_end": "The planned end comes after the planned start."})

    @property
    def is_pre_deployment(self) -> bool:
        return self.state in RELEASE_PRE_DEPLOYMENT_STATES

    # --- lifecycle: each method only moves the state (and stamps the moment) ------------------

    @transition(field=state, source=ReleaseState.DRAFT, target=ReleaseState.PLANNED)
    def plan(self) -> None:
        """The scope and dates are set: the release is on the calendar and others may plan around it."""

    @transition(field=state, source=ReleaseState.PLANNED, target=ReleaseState.SUBMITTED)
    def submit(self) -> None:
        """The plan goes to its approvers; the lead time is counted from here."""
        self.submitted_at = timezone.now()

    @transition(field=state, source=ReleaseState.SUBMITTED, target=ReleaseState.APPROVED)
    def approve(self) -> None:
        """The quorum of the policy has approved the plan (or a standard change's template pre-approved it)."""
        self.approved_at = timezone.now()

    @transition(field=state, source=ReleaseState.SUBMITTED, target=ReleaseState.REJECTED)
    def reject(self) -> None:
        """One approver said no; the plan goes back to be re-planned."""
        self.approved_at = None

    @transition(field=state, source=list(RELEASE_APPROVED_STATES), target=ReleaseState.SUBMITTED)
    def reopen_approval(self) -> None:
        """The plan or package changed after approval, so the approvals were withdrawn: approve again."""
        self.approved_at = self.ready_at = None

    @transition(field=state, source=ReleaseState.APPROVED, target=ReleaseState.READY)
    def mark_ready(self) -> None:
        """Go: every gate production requires is green, so the deployment may be scheduled."""
        self.ready_at = timezone.now()

    @transition(field=state, source=list(RELEASE_PRE_DEPLOYMENT_STATES), target=ReleaseState.CANCELLED)
    def cancel(self) -> None:
        """The release will not happen. Only before its deployment starts: after that it fails or rolls back."""
        self.ended_at = timezone.now()

    @transition(field=state, source=ReleaseState.READY, target=ReleaseState.DEPLOYING)
    def start_deploying(self) -> None:
        """The production deployment started."""
        self.deployment_started_at = timezone.now()

    @transition(field=state, source=ReleaseState.DEPLOYING, target=ReleaseState.DEPLOYED)
    def mark_deployed(self) -> None:
        """The production deployment succeeded."""
        self.deployed_at = timezone.now()

    @transition(field=state, source=ReleaseState.DEPLOYED, target=ReleaseState.EARLY_LIFE_SUPPORT)
    def start_els(self) -> None:
        """Early life support begins: the staff watch the release closely until the exit criteria hold."""
        self.els_started_at = timezone.now()

    @transition(field=state, source=ReleaseState.EARLY_LIFE_SUPPORT, target=ReleaseState.IN_REVIEW)
    def start_review(self) -> None:
        """ELS exited; the post-implementation review falls due."""
        self.review_started_at = timezone.now()

    @transition(field=state, source=ReleaseState.IN_REVIEW, target=ReleaseState.CLOSED)
    def close(self) -> None:
        """The review is accepted and the CMDB updated: nothing more to do for this release."""
        self.ended_at = timezone.now()

    @transition(field=state, source=list(RELEASE_LIVE_STATES), target=ReleaseState.FAILED)
    def mark_failed(self) -> None:
        """The production deployment (or the release in early life) failed."""
        self.ended_at = timezone.now()

    @transition(field=state, source=list(RELEASE_LIVE_STATES), target=ReleaseState.ROLLED_BACK)
    def mark_rolled_back(self) -> None:
        """The release was taken out of production again."""
        self.ended_at = timezone.now()

    @transition(
        field=state,
        source=[ReleaseState.REJECTED, ReleaseState.FAILED, ReleaseState.ROLLED_BACK],
        target=ReleaseState.PLANNED,
    )
    def replan(self) -> None:
        """Back to the drawing board for a fix: the release must be submitted and approved again."""
        self.submitted_at = self.approved_at = self.ready_at = None
        self.deployment_started_at = self.deployed_at = self.els_started_at = self.ended_at = None

    @classmethod
    def transition_sources(cls, name: ReleaseTransition | str) -> list[str]:
        """The states from which the named transition may start, as the state machine declares them."""
        return sorted(t.source for t in cls._meta.get_field("state").get_all_transitions(cls) if t.name == name)


class ReleaseUnit(models.Model):
    """A component deployed with the release, tied to the CIs it changes (for SACM and impact).

    A database migration that cannot be reversed pauses a failing rollout for a decision instead of
    rolling back by itself.
    """

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="units", verbose_name="release")
    name = models.CharField("name", max_length=200)
    kind = models.CharField("kind", max_length=30, choices=UnitKind.choices)
    version = models.CharField("version", max_length=100, blank=True)
    reversible = models.BooleanField("reversible", default=True, help_text="For migrations: can it be rolled back?")
    configuration_items = models.ManyToManyField(
        "cmdb.ConfigurationItem", blank=True, related_name="release_units", verbose_name="CIs it changes"
    )
    notes = models.TextField("notes", blank=True)

    class Meta:
        verbose_name = "release unit"
        ordering = ["release", "name"]
        constraints = [models.UniqueConstraint(fields=["release", "name"], name="releases_unit_unique_name")]

    def __str__(self) -> str:
        return f"{self.name} {self.version}".strip()


class RollbackPlan(models.Model):
    """How to undo the release, and the evidence that the steps were rehearsed (one per release)."""

    release = models.OneToOneField(
        Release, on_delete=models.CASCADE, related_name="rollback_plan", verbose_name="release"
    )
    steps = models.TextField("steps", blank=True)
    written_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="rollback_plans_written",
        verbose_name="written by",
    )
    rehearsal_note = models.TextField("rehearsal note", blank=True)
    rehearsal_link = models.URLField("rehearsal link", max_length=500, blank=True)
    rehearsed_at = models.DateTimeField("rehearsed at", null=True, blank=True)
    rehearsed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="rollback_rehearsals",
        verbose_name="rehearsed by",
    )
    updated = models.DateTimeField("updated", auto_now=True)

    class Meta:
        verbose_name = "rollback plan"

    def __str__(self) -> str:
        return f"Rollback plan of {self.release}"

    @property
    def documented(self) -> bool:
        return bool(self.steps.strip())

    @property
    def tested(self) -> bool:
        return self.rehearsed_at is not None


class GateEvidence(models.Model):
    """An attestation for a gate that is attested rather than computed ("backups taken and verified").

    Posted by a person or by a tool (a pipeline names itself), and verified by a second person.
    """

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="gate_evidence", verbose_name="release")
    gate = models.CharField("gate", max_length=30, choices=GateCode.choices)
    note = models.TextField("note", blank=True)
    link = models.URLField("link", max_length=500, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="gate_evidence_recorded",
        verbose_name="recorded by",
    )
    recorded_by_tool = models.CharField("recorded by tool", max_length=100, blank=True)
    recorded_at = models.DateTimeField("recorded at", default=timezone.now)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="gate_evidence_verified",
        verbose_name="verified by",
    )
    verified_at = models.DateTimeField("verified at", null=True, blank=True)

    class Meta:
        verbose_name = "gate evidence"
        verbose_name_plural = "gate evidence"
        ordering = ["-recorded_at", "-id"]
        permissions = [("verify_gateevidence", "Can verify gate evidence posted by someone else")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(recorded_by__isnull=False) | ~models.Q(recorded_by_tool=""),
                name="releases_gate_evidence_has_author",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_gate_display()} for {self.release}"

    @property
    def recorder_label(self) -> str:
        person = self.recorded_by.get_username() if self.recorded_by_id else ""
        tool = f"tool {self.recorded_by_tool}" if self.recorded_by_tool else ""
        return " via ".join(part for part in (person, tool) if part)


class ReleaseBaseline(models.Model):
    """Links a CMDB baseline to the release it was taken for, before or after the deployment."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="baselines", verbose_name="release")
    baseline = models.ForeignKey(
        "cmdb.Baseline", on_delete=models.PROTECT, related_name="release_links", verbose_name="baseline"
    )
    kind = models.CharField("kind", max_length=20, choices=BaselineKind.choices)
    linked_at = models.DateTimeField("linked at", default=timezone.now)

    class Meta:
        verbose_name = "release baseline"
        ordering = ["release", "linked_at"]
        constraints = [models.UniqueConstraint(fields=["release", "baseline"], name="releases_release_baseline_unique")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} baseline of {self.release}"


class KnowledgeArticle(models.Model):
    """What the organisation learned and needs again: runbooks, rollback steps, lessons from reviews.

    Attached to a service, and where it applies to the package that deploys it and to the CIs it concerns.
    ``search_vector`` is computed by PostgreSQL from the title (weight A) and the body (weight B) as a
    generated column, so every write, however made, keeps the full-text index right.
    """

    title = models.CharField("title", max_length=200)
    body = models.TextField("body")
    kind = models.CharField("kind", max_length=20, choices=KnowledgeKind.choices)
    service = models.ForeignKey(
        "cmdb.Service", on_delete=models.PROTECT, related_name="knowledge_articles", verbose_name="service"
    )
    release = models.ForeignKey(
        Release,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="knowledge_articles",
        verbose_name="release",
    )
    package = models.ForeignKey(
        "releases.ReleasePackage",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="knowledge_articles",
        verbose_name="package",
        help_text="The package a runbook or rollback steps are for.",
    )
    configuration_items = models.ManyToManyField(
        "cmdb.ConfigurationItem", blank=True, related_name="knowledge_articles", verbose_name="CIs it concerns"
    )
    review = models.ForeignKey(
        "releases.PostImplementationReview",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="knowledge_articles",
        verbose_name="review",
        help_text="The review whose lesson it is.",
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="knowledge_articles", verbose_name="author"
    )
    created = models.DateTimeField("created", auto_now_add=True)
    updated = models.DateTimeField("updated", auto_now=True)
    search_vector = models.GeneratedField(
        expression=SearchVector("title", weight="A", config=SEARCH_CONFIG)
        + SearchVector("body", weight="B", config=SEARCH_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        verbose_name = "knowledge article"
        ordering = ["-updated", "-id"]
        indexes = [GinIndex(fields=["search_vector"], name="releases_knowledge_search")]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("releases:knowledge_detail", args=[self.pk])
