"""Incidents: something went wrong in a live service, tied to the deployment, release or CI it concerns."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from deployments.choices import CorrelationMethod, IncidentSeverity, IncidentState
from deployments.models.rollout import Deployment, FsmRefreshMixin


class Incident(FsmRefreshMixin, ConcurrentTransitionMixin, models.Model):
    """An interruption or degradation of a service, opened by monitoring or a person.

    It names at least one of the deployment, release or CI it concerns, so ELS exit criteria, the PIR and
    the change failure rate can count it; when it names no deployment, RDM looks for the production
    deployment that caused it (``deployments.correlation``) and records how it found it. An alert carries
    its own id (``source`` + ``external_id``): the same alert firing again updates the incident it opened
    instead of opening another, until that one is closed. Open → acknowledged → resolved → closed; a
    resolved incident may be reopened.
    """

    title = models.CharField("title", max_length=200)
    description = models.TextField("description", blank=True)
    severity = models.CharField("severity", max_length=2, choices=IncidentSeverity.choices)
    state = FSMField("state", max_length=20, choices=IncidentState.choices, default=IncidentState.OPEN, protected=True)
    deployment = models.ForeignKey(
        Deployment, on_delete=models.PROTECT, null=True, blank=True, related_name="incidents", verbose_name="deployment"
    )
    release = models.ForeignKey(
        "releases.Release",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="incidents",
        verbose_name="release",
    )
    ci = models.ForeignKey(
        "cmdb.ConfigurationItem",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="incidents",
        verbose_name="CI",
    )
    correlation = models.CharField(
        "linked to its deployment",
        max_length=20,
        choices=CorrelationMethod.choices,
        blank=True,
        default=CorrelationMethod.NONE,
        help_text="How the deployment was found: named, by CI, by impact, or corrected by a person.",
    )
    source = models.CharField(
        "source", max_length=50, blank=True, help_text='What raised it, e.g. "alertmanager"; empty for a person.'
    )
    external_id = models.CharField(
        "external id", max_length=200, blank=True, help_text="The alert's own id at its source (a fingerprint)."
    )
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="incidents_opened",
        verbose_name="opened by",
    )
    opened_at = models.DateTimeField("opened", default=timezone.now)
    acknowledged_at = models.DateTimeField("acknowledged", null=True, blank=True)
    resolved_at = models.DateTimeField("resolved", null=True, blank=True)
    closed_at = models.DateTimeField("closed", null=True, blank=True)
    updated = models.DateTimeField("updated", auto_now=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(deployment__isnull=False)
                | models.Q(release__isnull=False)
                | models.Q(ci__isnull=False),
                name="deployments_incident_has_reference",
            ),
            # one live incident per alert; once closed, the same alert firing again is a new incident
            models.UniqueConstraint(
                fields=["source", "external_id"],
                condition=~models.Q(external_id="") & ~models.Q(state=IncidentState.CLOSED),
                name="deployments_incident_unique_external_id",
            ),
        ]
        indexes = [models.Index(fields=["state", "severity"], name="deployments_incident_state_sev")]

    def __str__(self) -> str:
        return f"{self.get_severity_display().split(' ')[0]} #{self.pk} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("deployments:incident_detail", args=[self.pk])

    @transition(field=state, source=IncidentState.OPEN, target=IncidentState.ACKNOWLEDGED)
    def acknowledge(self) -> None:
        """Someone is on it: the time to acknowledge stops counting."""
        self.acknowledged_at = timezone.now()

    @transition(field=state, source=[IncidentState.OPEN, IncidentState.ACKNOWLEDGED], target=IncidentState.RESOLVED)
    def resolve(self) -> None:
        """The service is restored: time to restore is measured from opened to here."""
        self.resolved_at = timezone.now()

    @transition(field=state, source=IncidentState.RESOLVED, target=IncidentState.OPEN)
    def reopen(self) -> None:
        """It came back before it was closed (the alert fired again): the same incident, open again."""
        self.resolved_at = None

    @transition(field=state, source=IncidentState.RESOLVED, target=IncidentState.CLOSED)
    def close(self) -> None:
        """Nothing more to do about it; a closed incident stays as it is."""
        self.closed_at = timezone.now()
