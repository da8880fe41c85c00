"""A rollout: the deployment, its waves and steps, their log lines, the (service, environment) lock and the
numbered events a live view replays.

The database is the truth about a rollout (DESIGN.md "Execution"): Celery messages only say "advance
deployment X" or "run steps Y"; every write about a running deployment locks its Deployment row first
(``deployments.engine``), so the deployment lock orders every transaction and no two of them deadlock.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from deployments.choices import (
    DEPLOYMENT_LIVE_STATES,
    DeploymentModel,
    DeploymentState,
    EventType,
    LogLevel,
    PauseKind,
    StepKind,
    StepState,
    WaveState,
)
from deployments.models.process import DeploymentProcess, StepTemplate, Target


class FsmRefreshMixin:
    """``refresh_from_db`` on a model whose state field is protected."""

    def refresh_from_db(self, *args, **kwargs):
        field = self._meta.get_field("state")
        field.protected = False
        try:
            super().refresh_from_db(*args, **kwargs)
        finally:
            field.protected = True


class Deployment(FsmRefreshMixin, ConcurrentTransitionMixin, models.Model):
    """A package (or version) rolled out to one environment of one service under a deployment model.

    Planned → scheduled → queued → running ⇄ paused → succeeded | failed → rolling back → rolled back;
    aborted from any live state. Rolling back one that already succeeded is a new deployment of the last
    good package that ``replaces`` it.
    """

    service = models.ForeignKey("cmdb.Service", on_delete=models.PROTECT, related_name="deployments")
    environment = models.ForeignKey("cmdb.Environment", on_delete=models.PROTECT, related_name="deployments")
    process = models.ForeignKey(DeploymentProcess, on_delete=models.PROTECT, related_name="deployments")
    package = models.ForeignKey(
        "releases.ReleasePackage",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deployments",
        verbose_name="package",
        help_text="The release package deployed (none for a deployment outside a governed release).",
    )
    change = models.ForeignKey(
        "releases.ChangeRecord",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deployments",
        verbose_name="change record",
        help_text="The approved change a production deployment implements.",
    )
    version = models.CharField("version", max_length=100, blank=True, help_text="What is deployed.")
    model = models.CharField("deployment model", max_length=20, choices=DeploymentModel.choices)
    phase_plan = models.JSONField(
        "phase plan",
        default=dict,
        blank=True,
        help_text='Phased: {"canary": 1, "percentages": [10, 50, 100]} or {"rings": ["a", "b"]}',
    )
    rollback_threshold = models.FloatField(
        "rollback threshold", default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    continuous = models.BooleanField(
        "continuous", default=False, help_text="Requested by a pipeline (continuous delivery)."
    )
    state = FSMField(
        "state", max_length=20, choices=DeploymentState.choices, default=DeploymentState.PLANNED, protected=True
    )
    replaces = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="replaced_by", verbose_name="replaces"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="deployments_requested"
    )
    scheduled_for = models.DateTimeField("scheduled for", null=True, blank=True)
    start_wait = models.CharField(
        "waiting",
        max_length=300,
        blank=True,
        help_text="Why a scheduled deployment whose time came has not started (the window opening it waits for).",
    )
    start_not_before = models.DateTimeField(
        "not tried before",
        null=True,
        blank=True,
        help_text="A scheduled deployment waiting for its window is not tried again before it opens.",
    )
    fast_rollback = models.BooleanField(
        "fast rollback",
        default=False,
        help_text="A rollback of a release that succeeded: no bake time and no health-gate analysis.",
    )
    started_at = models.DateTimeField("started", null=True, blank=True)
    finished_at = models.DateTimeField("finished", null=True, blank=True)
    pause_kind = models.CharField("paused because", max_length=20, choices=PauseKind.choices, blank=True)
    pause_reason = models.TextField("pause reason", blank=True)
    outcome = models.TextField("outcome", blank=True, help_text="Why it ended as it did.")
    follow_up_problem = models.TextField(
        "follow-up problem",
        blank=True,
        help_text="Why the change or release could not follow the rollout's outcome: the paperwork to put right.",
    )
    due_at = models.DateTimeField(
        "next check", null=True, blank=True, db_index=True, help_text="When the reconciler advances it next."
    )
    # DORA's per-deployment facts, stored when deployments end (deployments.dora_facts): the metrics read them
    # instead of joining every deployment of a year with its package, release and policy.
    change_started_at = models.DateTimeField(
        "change started",
        null=True,
        blank=True,
        editable=False,
        help_text="Where the lead time of its change starts: its package's first commit, or its registration.",
    )
    followed_by_hotfix = models.BooleanField(
        "followed by a hotfix",
        default=False,
        editable=False,
        help_text="The next deployment of its service to its environment was a hotfix within the hotfix's window.",
    )
    last_event_seq = models.PositiveBigIntegerField("last event", default=0, editable=False)
    created = models.DateTimeField("created", auto_now_add=True)
    updated = models.DateTimeField("updated", auto_now=True)

    class Meta:
        ordering = ["-created"]
        permissions = [
            ("run_deployment", "Can schedule, start, pause, resume, abort and roll back deployments"),
            ("run_continuous_deployment", "Can run continuous deployments under standard changes"),
        ]
        indexes = [
            # the reconciler and the engine's queries by state; metrics per environment and period
            models.Index(fields=["state"], name="deployments_dep_state"),
            models.Index(fields=["environment", "state", "finished_at"], name="deployments_dep_env_state_end"),
            # the lists' default order: the newest page is read from the index, not sorted from every row
            models.Index(fields=["-created"], name="deployments_dep_newest"),
            # the list filtered by state, newest first (docs/performance.md)
            models.Index(fields=["state", "-created", "-id"], name="deployments_dep_state_newest"),
            # DORA's metrics: a period's deployments per environment with all they read, from the index alone
            models.Index(
                fields=["environment", "finished_at"],
                include=[
                    "id",
                    "service",
                    "state",
                    "started_at",
                    "package",
                    "change",
                    "replaces",
                    "change_started_at",
                    "followed_by_hotfix",
                ],
                name="deployments_dep_env_end_dora",
            ),
            # the dashboard: rollouts ended in the last 30 days by outcome, read from the index alone
            models.Index(fields=["finished_at"], include=["state"], name="deployments_dep_finished"),
            # where an earlier package succeeded (a redeploy can go back to it), read from the index alone
            models.Index(
                fields=["service", "environment", "package"],
                condition=models.Q(state=DeploymentState.SUCCEEDED, package__isnull=False),
                name="deployments_dep_succeeded_pkg",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rollback_threshold__gte=0) & models.Q(rollback_threshold__lte=1),
                name="deployments_deployment_threshold_ratio",
            ),
        ]

    def __str__(self) -> str:
        version = f" {self.version}" if self.version else ""
        return f"#{self.pk} {self.service}{version} → {self.environment}"

    def get_absolute_url(self) -> str:
        return reverse("deployments:deployment_detail", args=[self.pk])

    @property
    def is_live(self) -> bool:
        return self.state in DEPLOYMENT_LIVE_STATES

    # --- lifecycle: each method only moves the state -----------------------------------------------

    @transition(field=state, source=DeploymentState.PLANNED, target=DeploymentState.SCHEDULED)
    def schedule(self) -> None:
        """A time is agreed; the change record and the window cover it. It starts by itself then."""

    @transition(field=state, source=[DeploymentState.PLANNED, DeploymentState.SCHEDULED], target=DeploymentState.QUEUED)
    def start(self) -> None:
        """It holds the (service, environment) lock and waits for the engine to pick it up."""

    @transition(field=state, source=DeploymentState.QUEUED, target=DeploymentState.RUNNING)
    def run(self) -> None:
        """The engine has begun the first wave."""
        self.started_at = self.started_at or timezone.now()

    @transition(field=state, source=DeploymentState.RUNNING, target=DeploymentState.PAUSED)
    def pause(self) -> None:
        """No new step starts; steps already running finish. Someone (or the engine) must resume it."""

    @transition(field=state, source=DeploymentState.PAUSED, target=DeploymentState.RUNNING)
    def resume(self) -> None:
        """The reason to pause is gone; the rollout continues where it stopped."""

    @transition(field=state, source=DeploymentState.RUNNING, target=DeploymentState.SUCCEEDED)
    def succeed(self) -> None:
        """Every wave passed its gate."""
        self.finished_at = timezone.now()

    @transition(
        field=state,
        source=[DeploymentState.RUNNING, DeploymentState.PAUSED, DeploymentState.ROLLING_BACK],
        target=DeploymentState.FAILED,
    )
    def fail(self) -> None:
        """It could not finish, and was not (or could not be) rolled back: someone must look."""
        self.finished_at = timezone.now()

    @transition(
        field=state,
        source=[DeploymentState.RUNNING, DeploymentState.PAUSED, DeploymentState.FAILED],
        target=DeploymentState.ROLLING_BACK,
    )
    def roll_back(self) -> None:
        """The waves already done are undone, the last one first."""
        self.finished_at = None

    @transition(field=state, source=DeploymentState.ROLLING_BACK, target=DeploymentState.ROLLED_BACK)
    def finish_rollback(self) -> None:
        """Every rollback step succeeded: the targets run what they ran before."""
        self.finished_at = timezone.now()

    @transition(field=state, source=list(DEPLOYMENT_LIVE_STATES), target=DeploymentState.ABORTED)
    def abort(self) -> None:
        """Stopped for good: no new step starts, what is half-done stays so until someone acts."""
        self.finished_at = timezone.now()


class Wave(FsmRefreshMixin, ConcurrentTransitionMixin, models.Model):
    """A phase of a deployment: some targets, then a bake time and a health gate before the next wave."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="waves")
    index = models.PositiveSmallIntegerField("index")
    name = models.CharField("name", max_length=100)
    ring = models.CharField("ring", max_length=50, blank=True)
    percentage = models.FloatField("cumulative percentage", null=True, blank=True)
    target_count = models.PositiveIntegerField("targets", default=0)
    bake_seconds = models.PositiveIntegerField("bake time (s)", default=0)
    health_gate = models.JSONField("health gate", default=list, blank=True)
    state = FSMField("state", max_length=20, choices=WaveState.choices, default=WaveState.PENDING, protected=True)
    started_at = models.DateTimeField("started", null=True, blank=True)
    verify_due_at = models.DateTimeField("gate due", null=True, blank=True)
    finished_at = models.DateTimeField("finished", null=True, blank=True)
    outcome = models.TextField("outcome", blank=True)

    class Meta:
        ordering = ["deployment", "index"]
        constraints = [models.UniqueConstraint(fields=["deployment", "index"], name="deployments_wave_unique_index")]

    def __str__(self) -> str:
        return f"wave {self.index + 1}: {self.name}"

    @transition(field=state, source=WaveState.PENDING, target=WaveState.RUNNING)
    def start(self) -> None:
        """Its steps may run."""
        self.started_at = timezone.now()

    @transition(field=state, source=WaveState.RUNNING, target=WaveState.VERIFYING)
    def verify(self) -> None:
        """Its steps are done; it bakes, then its health gate decides."""

    @transition(field=state, source=WaveState.VERIFYING, target=WaveState.PASSED)
    def pass_(self) -> None:
        """The gate held: the next wave may start."""
        self.finished_at = timezone.now()

    @transition(field=state, source=[WaveState.RUNNING, WaveState.VERIFYING], target=WaveState.FAILED)
    def fail(self) -> None:
        """Too many targets failed, or the gate did not hold."""
        self.finished_at = timezone.now()


class Step(FsmRefreshMixin, models.Model):
    """One action on one target (or once per wave), run by an executor; rollback steps undo deploy steps.

    ``parameters`` never hold a secret: secret ``#{Variables}`` stay references until the step runs. While a
    worker executes the step it holds a lease (``lease_expires_at``) that a heartbeat renews; a step whose
    lease ran out lost its worker and is run again, with the same idempotency key. ``due_at`` says when a
    step that waits (a wait, a manual intervention, a retry) is to be called again.

    Steps are changed in bulk under row locks (``select_for_update``), so they do not use
    ``ConcurrentTransitionMixin``; their transitions still only move state.
    """

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="steps")
    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="steps")
    target = models.ForeignKey(Target, on_delete=models.PROTECT, null=True, blank=True, related_name="steps")
    template = models.ForeignKey(StepTemplate, on_delete=models.SET_NULL, null=True, blank=True, related_name="steps")
    kind = models.CharField("kind", max_length=20, choices=StepKind.choices, default=StepKind.DEPLOY)
    position = models.PositiveSmallIntegerField("position", default=0, help_text="Steps run position by position.")
    name = models.CharField("name", max_length=100)
    executor = models.CharField("executor", max_length=100)
    parameters = models.JSONField("parameters", default=dict, blank=True)
    state = FSMField("state", max_length=20, choices=StepState.choices, default=StepState.PENDING, protected=True)
    attempt = models.PositiveSmallIntegerField("attempt", default=0)
    max_attempts = models.PositiveSmallIntegerField("attempts allowed", default=1)
    timeout_seconds = models.PositiveIntegerField("timeout (s)", null=True, blank=True)
    due_at = models.DateTimeField("due", null=True, blank=True)
    lease_owner = models.CharField("lease owner", max_length=200, blank=True)
    lease_expires_at = models.DateTimeField("lease expires", null=True, blank=True)
    started_at = models.DateTimeField("started", null=True, blank=True)
    finished_at = models.DateTimeField("finished", null=True, blank=True)
    idempotency_key = models.CharField("idempotency key", max_length=100, unique=True)
    message = models.TextField("message", blank=True)
    output = models.JSONField("output", default=dict, blank=True)
    manual_answer = models.CharField("answer", max_length=20, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="steps_answered"
    )
    answered_at = models.DateTimeField("answered", null=True, blank=True)
    deadline = models.DateTimeField("answer deadline", null=True, blank=True)
    rolls_back = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="rollback_steps",
        verbose_name="rolls back",
    )

    class Meta:
        ordering = ["wave__index", "position", "kind", "id"]
        indexes = [
            models.Index(fields=["deployment", "state"], name="deployments_step_dep_state"),
            models.Index(fields=["state", "due_at"], name="deployments_step_state_due"),
            # the reconciler's "lost its worker": open steps whose lease ran out
            models.Index(fields=["state", "lease_expires_at"], name="deployments_step_state_lease"),
        ]

    def __str__(self) -> str:
        target = f" on {self.target}" if self.target_id else ""
        return f"{self.name}{target}"

    def get_absolute_url(self) -> str:
        """A step is shown on its deployment's page."""
        return reverse("deployments:deployment_detail", args=[self.deployment_id])

    @property
    def is_rollback(self) -> bool:
        return self.kind == StepKind.ROLLBACK

    @transition(field=state, source=StepState.PENDING, target=StepState.RUNNING)
    def start(self) -> None:
        """A worker took it; waits and deadlines count from now, however often it is called again."""
        self.started_at = self.started_at or timezone.now()
        self.attempt = max(self.attempt, 1)

    @transition(field=state, source=StepState.RUNNING, target=StepState.SUCCEEDED)
    def succeed(self) -> None:
        """The executor reported success."""
        self.finished_at = timezone.now()

    @transition(field=state, source=StepState.RUNNING, target=StepState.FAILED)
    def fail(self) -> None:
        """A permanent failure, retries used up, a deadline passed, or the executor raised."""
        self.finished_at = timezone.now()

    @transition(field=state, source=[StepState.PENDING, StepState.RUNNING], target=StepState.SKIPPED)
    def skip(self) -> None:
        """Not run (or not finished): the deployment stopped, or an earlier step on the target failed."""
        self.finished_at = timezone.now()


class StepLog(models.Model):
    """An operational log line of a step (not an audit event); secrets are masked before it is written."""

    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="logs")
    at = models.DateTimeField("at", default=timezone.now)
    level = models.CharField("level", max_length=10, choices=LogLevel.choices, default=LogLevel.INFO)
    message = models.TextField("message")

    class Meta:
        verbose_name = "step log line"
        ordering = ["step", "at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%H:%M:%S} {self.level} {self.message[:60]}"


class DeploymentLock(models.Model):
    """One active deployment per service and environment: taken when a deployment starts, released at its end."""

    service = models.ForeignKey("cmdb.Service", on_delete=models.CASCADE, related_name="+")
    environment = models.ForeignKey("cmdb.Environment", on_delete=models.CASCADE, related_name="+")
    deployment = models.OneToOneField(Deployment, on_delete=models.CASCADE, related_name="lock")
    taken_at = models.DateTimeField("taken", default=timezone.now)

    class Meta:
        verbose_name = "deployment lock"
        constraints = [
            models.UniqueConstraint(fields=["service", "environment"], name="deployments_lock_one_per_environment")
        ]

    def __str__(self) -> str:
        return f"{self.service} in {self.environment}: {self.deployment}"


class DeploymentEvent(models.Model):
    """A state change of a deployment, wave or step, numbered per deployment so a live view can replay gaps."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField("sequence")
    type = models.CharField("type", max_length=20, choices=EventType.choices)
    wave_id_ref = models.BigIntegerField("wave", null=True, blank=True)
    step_id_ref = models.BigIntegerField("step", null=True, blank=True)
    state = models.CharField("state", max_length=20)
    at = models.DateTimeField("at", default=timezone.now)
    message = models.TextField("message", blank=True)

    class Meta:
        verbose_name = "deployment event"
        ordering = ["deployment", "seq"]
        constraints = [models.UniqueConstraint(fields=["deployment", "seq"], name="deployments_event_unique_seq")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.type} {self.state}"

    def as_message(self) -> dict:
        """The JSON published on ``rdm:deployment:{id}`` and replayed by the live view."""
        return {
            "seq": self.seq,
            "type": self.type,
            "deployment": self.deployment_id,
            "wave": self.wave_id_ref,
            "step": self.step_id_ref,
            "state": self.state,
            "at": self.at.isoformat(),
            "message": self.message,
        }
