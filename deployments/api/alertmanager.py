"""Prometheus Alertmanager's webhook (its documented JSON, ``version`` 4) turned into incidents.

A firing alert opens an incident, or updates the live one its ``fingerprint`` opened (source
``alertmanager``); a resolved alert resolves it. The alert's labels say what it concerns: ``deployment`` (an
id), ``release`` (an id or "name version"), ``ci`` (an id or a name, with ``environment`` when the name is
not unique). ``severity``: critical → P1, error/high → P2, warning → P3, info/low → P4; P3 when absent or
unknown. A batch is applied all or nothing: one alert naming nothing RDM knows refuses the batch (422).
"""

from django.db import transaction
from rest_framework import serializers

from deployments import incidents
from deployments.api.serializers import no_nul
from deployments.choices import IncidentSeverity, IncidentState
from deployments.models import Deployment, Incident
from deployments.selectors import ci_named, release_named
from rdm_site.domain import ensure_conditions

SOURCE = "alertmanager"
SEVERITIES = {
    "critical": IncidentSeverity.P1,
    "page": IncidentSeverity.P1,
    "p1": IncidentSeverity.P1,
    "error": IncidentSeverity.P2,
    "high": IncidentSeverity.P2,
    "major": IncidentSeverity.P2,
    "p2": IncidentSeverity.P2,
    "warning": IncidentSeverity.P3,
    "medium": IncidentSeverity.P3,
    "p3": IncidentSeverity.P3,
    "info": IncidentSeverity.P4,
    "low": IncidentSeverity.P4,
    "minor": IncidentSeverity.P4,
    "p4": IncidentSeverity.P4,
}
DEFAULT_SEVERITY = IncidentSeverity.P3

_LABELS = serializers.DictField(child=serializers.CharField(max_length=2000, allow_blank=True), default=dict)


class AlertSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["firing", "resolved"])
    labels = _LABELS
    annotations = serializers.DictField(child=serializers.CharField(max_length=20000, allow_blank=True), default=dict)
    # Alertmanager's own field names
    startsAt = serializers.DateTimeField(required=False)
    endsAt = serializers.DateTimeField(required=False)
    generatorURL = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    fingerprint = serializers.CharField(max_length=200, help_text="The alert's identity: one incident per fingerprint.")

    def validate(self, attrs):
        no_nul(attrs)
        return attrs


class AlertmanagerPayloadSerializer(serializers.Serializer):
    """Alertmanager's webhook body; fields RDM does not use (groupKey, receiver, …) are accepted and ignored."""

    version = serializers.CharField(required=False, max_length=10)
    status = serializers.ChoiceField(choices=["firing", "resolved"], required=False)
    alerts = AlertSerializer(many=True, allow_empty=False, max_length=1000)


class AlertmanagerOutcomeSerializer(serializers.Serializer):
    opened = serializers.ListField(child=serializers.IntegerField(), help_text="Incidents opened.")
    updated = serializers.ListField(child=serializers.IntegerField(), help_text="Incidents an alert fired again for.")
    resolved = serializers.ListField(child=serializers.IntegerField(), help_text="Incidents resolved.")
    ignored = serializers.IntegerField(help_text="Resolved alerts with no live incident.")


def _references(labels: dict[str, str]) -> tuple[dict, list[str]]:
    found, problems = {}, []
    if label := labels.get("deployment"):
        deployment = Deployment.objects.filter(pk=int(label)).first() if label.isdigit() and len(label) < 19 else None
        found["deployment"] = deployment
        if deployment is None:
            problems.append(f"no deployment #{label}")
    if label := labels.get("release"):
        found["release"] = release_named(label)
        if found["release"] is None:
            problems.append(f"no release {label!r}")
    if label := labels.get("ci"):
        found["ci"] = ci_named(label, labels.get("environment", ""))
        if found["ci"] is None:
            problems.append(
                f"no single CI {label!r}" + (f" in {labels['environment']}" if "environment" in labels else "")
            )
    if not found:
        problems.append("it has none of the labels deployment, release or ci")
    return found, problems


def _incident_fields(alert: dict) -> dict:
    labels, annotations = alert["labels"], alert["annotations"]
    title = annotations.get("summary") or labels.get("alertname") or f"alert {alert['fingerprint']}"
    text = [annotations.get("description", ""), alert.get("generatorURL", "")]
    return {
        "title": title[:200],
        "description": "\n\n".join(part for part in text if part),
        "severity": SEVERITIES.get(labels.get("severity", "").strip().lower(), DEFAULT_SEVERITY),
    }


@transaction.atomic
def alerts_apply(*, actor, alerts: list[dict]) -> dict:
    """Open, update or resolve the incident of each alert, all or nothing."""
    firing = [alert for alert in alerts if alert["status"] == "firing"]
    planned, problems = [], []
    for alert in firing:
        references, unknown = _references(alert["labels"])
        problems += [f"alert {alert['fingerprint']}: {problem}" for problem in unknown]
        planned.append((alert, references))
    ensure_conditions("The alerts cannot be filed", problems)
    outcome = {"opened": [], "updated": [], "resolved": [], "ignored": 0}
    for alert, references in planned:
        incident, new = incidents.incident_open(
            actor=actor, source=SOURCE, external_id=alert["fingerprint"], **_incident_fields(alert), **references
        )
        outcome["opened" if new else "updated"].append(incident.pk)
    for alert in alerts:
        if alert["status"] != "resolved":
            continue
        incident = (
            Incident.objects.filter(source=SOURCE, external_id=alert["fingerprint"])
            .exclude(state__in=[IncidentState.CLOSED, IncidentState.RESOLVED])
            .first()
        )
        if incident is None:
            outcome["ignored"] += 1
            continue
        ends = alert.get("endsAt")
        incidents.incident_resolve(
            incident=incident, actor=actor, reason="the alert resolved" + (f" at {ends.isoformat()}" if ends else "")
        )
        outcome["resolved"].append(incident.pk)
    return outcome
