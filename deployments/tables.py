"""The deployments app's lists in the browser: deployments (state badges and progress bars that the page keeps
moving) and incidents."""

import django_tables2 as tables
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.timesince import timesince

from deployments.choices import CORRELATION_SHORT_LABELS, DEPLOYMENT_ACTIVE_STATES
from deployments.models import Deployment, Incident
from rdm_site.tables import BadgeColumn, DateTimeColumn, RdmTable


def progress_context(deployment: Deployment) -> dict:
    """What ``deployments/inc/progress.html`` draws; a rollout under way is followed on its event stream."""
    return {"deployment": deployment, "streamed": deployment.state in DEPLOYMENT_ACTIVE_STATES}


class StateColumn(BadgeColumn):
    """The state badge, marked so that ``deployment-progress.js`` can replace it when the state moves."""

    def render(self, value, record):
        return format_html('<span data-deployment-state="{}">{}</span>', record.pk, super().render(value, record))


class ProgressColumn(tables.Column):
    """Steps done out of all steps (rollback steps aside), as a bar with its figures; live rows say where their
    events stream from, so ``deployment-progress.js`` can move the bar."""

    def __init__(self, **kwargs):
        super().__init__(accessor="pk", orderable=False, verbose_name="Progress", **kwargs)

    def render(self, value, record):
        return render_to_string("deployments/inc/progress.html", progress_context(record))


class DeploymentTable(RdmTable):
    id = tables.Column(linkify=True, verbose_name="#")
    service = tables.Column()
    version = tables.Column(linkify=True)
    environment = tables.Column()
    state = StateColumn()
    progress = ProgressColumn()
    model = tables.Column(verbose_name="Model")
    requested_by = tables.Column(verbose_name="Requested by")
    created = DateTimeColumn(verbose_name="Created (UTC)")

    class Meta(RdmTable.Meta):
        model = Deployment
        fields = ("id", "service", "version", "environment", "state", "progress", "model", "requested_by", "created")
        empty_text = "No deployment matches."


def incident_service(incident: Incident):
    """The service an incident concerns: its deployment's, else its CI's (None when it names only a release)."""
    if incident.deployment_id:
        return incident.deployment.service
    return incident.ci.service if incident.ci_id else None


class IncidentTable(RdmTable):
    id = tables.Column(linkify=True, verbose_name="#")
    title = tables.Column(linkify=True)
    severity = BadgeColumn()
    state = BadgeColumn()
    service = tables.Column(accessor="pk", orderable=False, verbose_name="Service")
    deployment = tables.Column(linkify=True)
    correlation = tables.Column(verbose_name="Linked", empty_values=())
    opened_at = DateTimeColumn(verbose_name="Opened (UTC)")
    time_to_restore = tables.Column(accessor="resolved_at", orderable=False, verbose_name="Time to restore")

    class Meta(RdmTable.Meta):
        model = Incident
        fields = (
            "id",
            "title",
            "severity",
            "state",
            "service",
            "deployment",
            "correlation",
            "opened_at",
            "time_to_restore",
        )
        empty_text = "No incident matches."

    def render_service(self, record):
        return incident_service(record) or "—"

    def render_correlation(self, record):
        return CORRELATION_SHORT_LABELS.get(record.correlation, record.correlation)

    def render_time_to_restore(self, value, record):
        return timesince(record.opened_at, value)
