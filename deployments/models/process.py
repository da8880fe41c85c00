"""How a service is deployed: its process and step templates, its variables, and the targets it runs on.

Writes go through ``deployments.services`` (each audited with the old and new values), reads through
``deployments.selectors``.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from deployments.choices import ALL_TARGETS
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
