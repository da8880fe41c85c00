"""Continuous promotion: one pipeline run taking a package through the environments in their promotion order,
one stage (a deployment) per environment (``deployments.promotions``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django_fsm import FSMField, transition

from deployments.choices import PromotionStageState, PromotionState
from deployments.models.process import DeploymentProcess
from deployments.models.rollout import Deployment, FsmRefreshMixin


class Promotion(FsmRefreshMixin, models.Model):
    """Running → succeeded when its last stage succeeded, or stopped at the first stage that could not start or
    did not succeed, with the reason."""

    package = models.ForeignKey(
        "releases.ReleasePackage", on_delete=models.PROTECT, related_name="promotions", verbose_name="package"
    )
    process = models.ForeignKey(
        DeploymentProcess, on_delete=models.PROTECT, related_name="promotions", verbose_name="process"
    )
    service = models.ForeignKey("cmdb.Service", on_delete=models.PROTECT, related_name="promotions")
    template = models.ForeignKey(
        "releases.ChangeTemplate",
        on_delete=models.PROTECT,
        related_name="promotions",
        verbose_name="change template",
        help_text="The pre-approved template of the standard change the production stage runs under.",
    )
    change = models.ForeignKey(
        "releases.ChangeRecord",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="promotions",
        verbose_name="standard change",
    )
    state = FSMField(
        "state", max_length=20, choices=PromotionState.choices, default=PromotionState.RUNNING, protected=True
    )
    reason = models.TextField("reason", blank=True, help_text="Why it stopped.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="promotions",
        verbose_name="requested by",
    )
    created = models.DateTimeField("created", auto_now_add=True)
    finished_at = models.DateTimeField("finished", null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"promotion #{self.pk} {self.service} {self.package.version}"

    def get_absolute_url(self) -> str:
        return reverse("deployments:promotion_detail", args=[self.pk])

    @transition(field=state, source=PromotionState.RUNNING, target=PromotionState.SUCCEEDED)
    def succeed(self) -> None:
        """Its last stage succeeded."""
        self.finished_at = timezone.now()

    @transition(field=state, source=PromotionState.RUNNING, target=PromotionState.STOPPED)
    def stop(self) -> None:
        """A stage could not start (its gate) or did not succeed; the stages after it never start."""
        self.finished_at = timezone.now()


class PromotionStage(FsmRefreshMixin, models.Model):
    """One environment of a promotion, and the deployment that took the package there."""

    promotion = models.ForeignKey(Promotion, on_delete=models.CASCADE, related_name="stages")
    position = models.PositiveSmallIntegerField("position")
    environment = models.ForeignKey("cmdb.Environment", on_delete=models.PROTECT, related_name="promotion_stages")
    deployment = models.OneToOneField(
        Deployment, on_delete=models.PROTECT, null=True, blank=True, related_name="promotion_stage"
    )
    state = FSMField(
        "state", max_length=20, choices=PromotionStageState.choices, default=PromotionStageState.PENDING, protected=True
    )
    reason = models.TextField("reason", blank=True, help_text="Why it stopped.")
    started_at = models.DateTimeField("started", null=True, blank=True)
    finished_at = models.DateTimeField("finished", null=True, blank=True)

    class Meta:
        ordering = ["promotion", "position"]
        constraints = [
            models.UniqueConstraint(fields=["promotion", "position"], name="deployments_promotion_stage_position"),
        ]

    def __str__(self) -> str:
        return f"{self.environment} stage of promotion #{self.promotion_id}"

    @transition(field=state, source=PromotionStageState.PENDING, target=PromotionStageState.RUNNING)
    def start(self) -> None:
        """Its gate passed and its deployment started."""
        self.started_at = timezone.now()

    @transition(field=state, source=PromotionStageState.RUNNING, target=PromotionStageState.SUCCEEDED)
    def succeed(self) -> None:
        """Its deployment succeeded."""
        self.finished_at = timezone.now()

    @transition(
        field=state,
        source=[PromotionStageState.PENDING, PromotionStageState.RUNNING],
        target=PromotionStageState.STOPPED,
    )
    def stop(self) -> None:
        """Its gate failed, or its deployment did not succeed."""
        self.finished_at = timezone.now()
