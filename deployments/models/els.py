"""Early Life Support: the period of close watch after a production deployment succeeds."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from deployments.choices import ELS_RUNNING_STATES, ElsState
from deployments.models.rollout import Deployment, FsmRefreshMixin


class EarlyLifeSupport(FsmRefreshMixin, ConcurrentTransitionMixin, models.Model):
    """One ELS period per successful production deployment of a release.

    It takes the release's ELS plan (or the policy's defaults) when it starts: staff on duty, exit criteria,
    a minimum duration and a planned end. It exits only when the criteria hold, and its release then moves to
    review. Scheduled → active ⇄ extended → exited: an extension moves the planned end later and may be
    withdrawn, which brings the original end back.
    """

    deployment = models.OneToOneField(
        Deployment, on_delete=models.PROTECT, related_name="early_life_support", verbose_name="deployment"
    )
    release = models.ForeignKey(
        "releases.Release", on_delete=models.PROTECT, related_name="els_periods", verbose_name="release"
    )
    state = FSMField("state", max_length=20, choices=ElsState.choices, default=ElsState.SCHEDULED, protected=True)
    staff = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="els_periods_on_duty", verbose_name="staff on duty"
    )
    exit_criteria = models.JSONField(
        "exit criteria", default=dict, blank=True, help_text='Counts, e.g. {"max_open_p1_p2": 0, "max_incidents": 3}.'
    )
    min_duration_days = models.PositiveSmallIntegerField("minimum duration (days)", default=0)
    planned_end = models.DateTimeField("planned end", null=True, blank=True)
    original_end = models.DateTimeField(
        "originally planned end", null=True, blank=True, help_text="The planned end before any extension."
    )
    started_at = models.DateTimeField("started", null=True, blank=True)
    exited_at = models.DateTimeField("exited", null=True, blank=True)
    exit_offered_at = models.DateTimeField(
        "exit offered", null=True, blank=True, help_text="When RDM told the staff the exit criteria hold (once)."
    )
    created = models.DateTimeField("created", auto_now_add=True)
    updated = models.DateTimeField("updated", auto_now=True)

    class Meta:
        verbose_name = "early life support period"
        verbose_name_plural = "early life support periods"
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(fields=["state", "planned_end"], name="deployments_els_state_end"),
            # the dashboard's periods under way, soonest end first
            models.Index(
                fields=["planned_end"],
                condition=models.Q(state__in=sorted(ELS_RUNNING_STATES)),
                name="deployments_els_running_end",
            ),
        ]

    def __str__(self) -> str:
        return f"ELS #{self.pk} of {self.release}"

    def get_absolute_url(self) -> str:
        return reverse("deployments:els_detail", args=[self.pk])

    @property
    def is_running(self) -> bool:
        return self.state in ELS_RUNNING_STATES

    @transition(field=state, source=ElsState.SCHEDULED, target=ElsState.ACTIVE)
    def start(self, planned_end) -> None:
        """The staff are on duty from now until the planned end."""
        self.started_at = timezone.now()
        self.planned_end = self.original_end = planned_end

    @transition(field=state, source=[ElsState.ACTIVE, ElsState.EXTENDED], target=ElsState.EXTENDED)
    def extend(self, new_end) -> None:
        """More watch is needed: the planned end moves later."""
        self.planned_end = new_end
        self.exit_offered_at = None

    @transition(field=state, source=ElsState.EXTENDED, target=ElsState.ACTIVE)
    def withdraw_extension(self) -> None:
        """The extra watch is not needed after all: the original end is back."""
        self.planned_end = self.original_end

    @transition(field=state, source=[ElsState.ACTIVE, ElsState.EXTENDED], target=ElsState.EXITED)
    def exit(self) -> None:
        """The criteria hold and a person ends the watch; the review falls due."""
        self.exited_at = timezone.now()
