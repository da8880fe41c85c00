"""Deployment processes, their variables and targets, and the rollouts the engine runs from them.

The database is the truth about a rollout (DESIGN.md "Execution"): Celery messages only say "advance
deployment X" or "run steps Y"; every write about a running deployment locks its Deployment row first
(``deployments.engine``), so the deployment lock orders every transaction and no two of them deadlock.
Writes go through ``deployments.services`` and ``deployments.engine``, reads through ``deployments.selectors``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from deployments.choices import (
    ALL_TARGETS,
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
from deployments.executors.base import UnknownExecutor
from deployments.executors.registry import get_executor
from rdm_site.crypto import decrypt_secret


def validate_executor_name(value: str) -> None:
    try:
        get_executor(value)
    except UnknownExecutor:
        raise ValidationError(f"No executor named {value!r} is registered.", code="unknown_executor") from None


def validate_json_object(value) -> None:
    if not isinstance(value, dict):
        raise ValidationError("Must be a JSON object (name → value).", code="not_an_object")


def validate_health_checks(value) -> None:
    """A list of ``{"executor": name, "parameters": {...}, "per_target": bool}``."""
    if not isinstance(value, list):
        raise ValidationError("Health checks must be a JSON list.", code="not_a_list")
    for index, check in enumerate(value, 1):
        if not isinstance(check, dict) or not isinstance(check.get("executor"), str):
            raise ValidationError(f"Health check {index} needs an executor name.", code="invalid_check")
        validate_executor_name(check["executor"])
        if not isinstance(check.get("parameters", {}), dict):
            raise ValidationError(f"Health check {index}: parameters must be a JSON object.", code="invalid_check")


class FsmRefreshMixin:
    """``refresh_from_db`` on a model whose state field is protected."""

    def refresh_from_db(self, *args, **kwargs):
        field = self._meta.get_field("state")
        field.protected = False
        try:
            super().refresh_from_db(*args, **kwargs)
        finally:
            field.protected = True


# --- configuration: how a service is deployed ------------------------------------------------------


class DeploymentProcess(models.Model):
    """How a service is deployed: ordered step templates, the default health gate and rollback criteria.

    A deployment copies all of it into its plan when it is planned, so editing a process never changes a
    rollout that is already planned.
    """

    service = models.ForeignKey(
        "cmdb.Service", on_delete=models.PROTECT, related_name="deployment_processes", verbose_name="service"
    )
    name = models.CharField("name", max_length=100)
    description = models.TextField("description", blank=True)
    health_checks = models.JSONField(
        "health checks",
        default=list,
        blank=True,
        validators=[validate_health_checks],
        help_text='A wave\'s gate: [{"executor": "http_health", "parameters": {}, "per_target": true}]',
    )
    bake_seconds = models.PositiveIntegerField(
        "bake time (s)", default=0, help_text="How long a wave runs before its health gate is checked."
    )
    rollback_threshold = models.FloatField(
        "rollback threshold",
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of a wave's targets that may fail before the rollout rolls back (0 = none).",
    )
    created = models.DateTimeField("created", auto_now_add=True)
    updated = models.DateTimeField("updated", auto_now=True)

    class Meta:
        verbose_name = "deployment process"
        verbose_name_plural = "deployment processes"
        ordering = ["service__name", "name"]
        constraints = [models.UniqueConstraint(fields=["service", "name"], name="deployments_process_unique_name")]

    def __str__(self) -> str:
        return f"{self.service} / {self.name}"


class StepTemplate(models.Model):
    """One step of a process: an executor with parameters (``#{Variables}`` allowed), run on matching targets.

    ``target_filter`` is ``all`` or ring/group labels separated by commas; ``run_once`` makes one step per
    wave instead of one per target (a gate, a manual intervention).
    """

    process = models.ForeignKey(
        DeploymentProcess, on_delete=models.CASCADE, related_name="step_templates", verbose_name="process"
    )
    position = models.PositiveSmallIntegerField("position", default=0)
    name = models.CharField("name", max_length=100)
    executor = models.CharField("executor", max_length=100, validators=[validate_executor_name])
    parameters = models.JSONField("parameters", default=dict, blank=True, validators=[validate_json_object])
    target_filter = models.CharField(
        "target filter", max_length=200, default=ALL_TARGETS, help_text="all, or ring/group labels (comma-separated)."
    )
    run_once = models.BooleanField("run once per wave", default=False)
    rollback_parameters = models.JSONField(
        "rollback parameters",
        default=dict,
        blank=True,
        validators=[validate_json_object],
        help_text="Parameters of the executor's rollback; empty means the step's own parameters.",
    )
    retries = models.PositiveSmallIntegerField(
        "retries", default=2, validators=[MaxValueValidator(20)], help_text="Extra attempts after a transient failure."
    )
    timeout_seconds = models.PositiveIntegerField(
        "timeout (s)", null=True, blank=True, help_text="Fail the step when it has not finished this long after start."
    )

    class Meta:
        verbose_name = "step template"
        ordering = ["process", "position", "id"]

    def __str__(self) -> str:
        return f"{self.position}. {self.name} ({self.executor})"

    def labels(self) -> set[str] | None:
        """The labels a target must carry, or None for every target."""
        labels = {label.strip() for label in self.target_filter.split(",") if label.strip()}
        return None if not labels or ALL_TARGETS in labels else labels


class Variable(models.Model):
    """A value for ``#{Name}`` in step parameters, per service and environment (none: every environment).

    A secret is stored encrypted (``rdm_site.crypto``) and is never shown: it is resolved only while a step
    runs and masked in every log line and output.
    """

    service = models.ForeignKey("cmdb.Service", on_delete=models.CASCADE, related_name="variables")
    environment = models.ForeignKey(
        "cmdb.Environment",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="variables",
        help_text="Empty: the value for every environment, unless an environment has its own.",
    )
    name = models.CharField("name", max_length=100)
    value = models.TextField("value", blank=True)
    is_secret = models.BooleanField("secret", default=False)
    updated = models.DateTimeField("updated", auto_now=True)

    class Meta:
        ordering = ["service__name", "name", "environment__promotion_order"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "environment", "name"], name="deployments_variable_unique_per_environment"
            ),
            models.UniqueConstraint(
                fields=["service", "name"],
                condition=models.Q(environment__isnull=True),
                name="deployments_variable_unique_default",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.environment or 'all environments'})"

    def plain_value(self) -> str:
        return decrypt_secret(self.value) if self.is_secret else self.value


class Target(models.Model):
    """A configuration item of an environment that takes part in rollouts, labelled with its ring and group.

    Only a live CI is deployed to: the CMDB never runs on imaginary servers.
    """

    ci = models.OneToOneField(
        "cmdb.ConfigurationItem", on_delete=models.PROTECT, related_name="deployment_target", verbose_name="CI"
    )
    ring = models.CharField("ring", max_length=50, blank=True, help_text="Phased rollouts go ring by ring.")
    group = models.CharField("group", max_length=50, blank=True)
    enabled = models.BooleanField("enabled", default=True)
    created = models.DateTimeField("created", auto_now_add=True)

    class Meta:
        ordering = ["ci__environment__promotion_order", "ci__name"]

    def __str__(self) -> str:
        return self.ci.name

    @property
    def labels(self) -> set[str]:
        return {label for label in (self.ring, self.group) if label}


# --- a rollout ---------------------------------------------------------------------------------------


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
    started_at = models.DateTimeField("started", null=True, blank=True)
    finished_at = models.DateTimeField("finished", null=True, blank=True)
    pause_kind = models.CharField("paused because", max_length=20, choices=PauseKind.choices, blank=True)
    pause_reason = models.TextField("pause reason", blank=True)
    outcome = models.TextField("outcome", blank=True, help_text="Why it ended as it did.")
    due_at = models.DateTimeField(
        "next check", null=True, blank=True, db_index=True, help_text="When the reconciler advances it next."
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
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rollback_threshold__gte=0) & models.Q(rollback_threshold__lte=1),
                name="deployments_deployment_threshold_ratio",
            ),
        ]

    def __str__(self) -> str:
        version = f" {self.version}" if self.version else ""
        return f"#{self.pk} {self.service}{version} → {self.environment}"

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
        ]

    def __str__(self) -> str:
        target = f" on {self.target}" if self.target_id else ""
        return f"{self.name}{target}"

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


__all__ = [
    "Deployment",
    "DeploymentEvent",
    "DeploymentLock",
    "DeploymentProcess",
    "Step",
    "StepLog",
    "StepTemplate",
    "Target",
    "Variable",
    "Wave",
]
