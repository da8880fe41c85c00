"""Every write about incidents: opened by monitoring or a person, updated, acknowledged, resolved, closed.

An alert that fires twice must not open two incidents: ``incident_open`` with a ``source`` and an
``external_id`` updates the live incident that alert opened (reopening it when it was resolved). An incident
that names no deployment is tied to the one that caused it when it opens (``deployments.correlation``); a
person may correct that link (``incident_correlation_correct``, with a reason). A P1 or P2 during Early Life
Support alerts its staff (``deployments.els``). Who may: the roles holding ``deployments.add_incident`` (open)
and ``deployments.change_incident`` (everything else), asked through the one rule table that
``incident_available_actions`` reports.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from deployments.choices import INCIDENT_OPEN_STATES, CorrelationMethod, IncidentState
from deployments.correlation import incident_correlation
from deployments.els import els_incident_alert
from deployments.models import Deployment, Incident
from rdm_site.actions import ActionRule, action_ensure, actions_available
from rdm_site.changes import apply_changes, audit_value
from rdm_site.domain import apply_transition, bounded_text, ensure_allowed, require_text, save, validated
from rdm_site.exceptions import InvalidInput
from rdm_site.permissions import permission_problem
from rdm_site.transitions import transition_record

OPEN = "deployments.add_incident"
CHANGE = "deployments.change_incident"

# What an update may change; the references may be corrected, but one of them must remain.
INCIDENT_FIELDS = ("title", "description", "severity", "deployment", "release", "ci")
REFERENCES = ("deployment", "release", "ci")


def _who_changes(incident: Incident, actor: User | None, attempt: str) -> list[str | None]:
    return [permission_problem(actor, CHANGE, attempt)]


INCIDENT_ACTIONS = {
    "update": ActionRule(_who_changes, "update {record}", states=(*INCIDENT_OPEN_STATES, IncidentState.RESOLVED)),
    "acknowledge": ActionRule(_who_changes, "acknowledge {record}", transition="acknowledge"),
    "resolve": ActionRule(_who_changes, "resolve {record}", transition="resolve"),
    "reopen": ActionRule(_who_changes, "reopen {record}", transition="reopen"),
    "close": ActionRule(_who_changes, "close {record}", transition="close"),
    "correct_correlation": ActionRule(_who_changes, "correct the deployment of {record}"),
}


def incident_available_actions(incident: Incident, actor: User | None) -> list[str]:
    """What ``actor`` may do to ``incident`` now (the buttons to show)."""
    return actions_available(INCIDENT_ACTIONS, incident, actor)


def _reference_problems(incident: Incident) -> list[str]:
    if not any(getattr(incident, f"{name}_id") for name in REFERENCES):
        return ["name at least one of the deployment, release or CI it concerns"]
    return []


def _checked(incident: Incident) -> None:
    problems = _reference_problems(incident)
    if problems:
        raise InvalidInput(f"The incident is not valid: {problems[0]}.", problems)
    validated(incident, exclude=["state"])


@transaction.atomic
def incident_open(
    *,
    actor: User | None,
    title: str,
    severity: str,
    description: str = "",
    deployment=None,
    release=None,
    ci=None,
    source: str = "",
    external_id: str = "",
) -> tuple[Incident, bool]:
    """Open an incident, or, when ``source`` + ``external_id`` name a live one, update it (reopening it when it
    was resolved): an alert that fires twice is one incident. Returns (incident, whether it is new).
    """
    ensure_allowed(permission_problem(actor, OPEN, "open an incident"))
    if external_id and not source:
        raise InvalidInput("An external id needs its source (what raised the alert).", ["source: needed"])
    fields = {"title": title, "description": description, "severity": severity}
    references = {"deployment": deployment, "release": release, "ci": ci}
    if external_id:
        existing = _live_alert(source, external_id)
        if existing is not None:
            return _alert_again(existing, actor, fields, references), False
    incident = Incident(opened_by=actor, source=source, external_id=external_id, **fields, **references)
    incident.deployment, incident.correlation = incident_correlation(incident)
    _checked(incident)
    try:
        with transaction.atomic():
            incident.save()
    except IntegrityError:
        # the same alert opened it meanwhile, from another request: this one updates it
        return _alert_again(_live_alert(source, external_id), actor, fields, references), False
    transition_record(
        actor=actor,
        target=incident,
        action="incident.open",
        to_state=incident.state,
        reason=incident.get_severity_display() + (f" from {source} {external_id}" if source else "") + _link(incident),
    )
    els_incident_alert(incident)
    return incident, True


def _link(incident: Incident) -> str:
    if not incident.deployment_id:
        return ""
    return f"; deployment {incident.deployment} ({incident.get_correlation_display().lower()})"


def _live_alert(source: str, external_id: str) -> Incident | None:
    return (
        Incident.objects.select_for_update()
        .filter(source=source, external_id=external_id)
        .exclude(state=IncidentState.CLOSED)
        .first()
    )


def _alert_again(incident: Incident, actor: User | None, fields: dict, references: dict) -> Incident:
    """The alert fired again: its title, text and severity are the latest; references given are added."""
    data = {**fields, **{name: value for name, value in references.items() if value is not None}}
    _edit(incident, actor, data)
    if incident.state == IncidentState.RESOLVED:
        _move(incident, "reopen", actor, "the alert fired again")
    return incident


def _edit(incident: Incident, actor: User | None, data: dict[str, Any]) -> None:
    action_ensure(INCIDENT_ACTIONS, "update", incident, actor)
    changes = apply_changes(incident, data, INCIDENT_FIELDS)
    if "deployment" in changes:  # named by a person (or an alert's label) from now on
        method = CorrelationMethod.EXPLICIT if incident.deployment_id else CorrelationMethod.NONE
        changes["correlation"] = [incident.correlation, method]
        incident.correlation = method
    if changes:
        _checked(incident)
        save(incident)
        transition_record(actor=actor, target=incident, action="incident.update", changes=changes)


def _move(incident: Incident, transition: str, actor: User | None, reason: str) -> Incident:
    action_ensure(INCIDENT_ACTIONS, transition, incident, actor)
    before, after = apply_transition(incident, transition)
    save(incident)
    transition_record(
        actor=actor, target=incident, action=f"incident.{transition}", from_state=before, to_state=after, reason=reason
    )
    return incident


def _locked(incident: Incident) -> Incident:
    return Incident.objects.select_for_update().get(pk=incident.pk)


@transaction.atomic
def incident_update(*, incident: Incident, actor: User | None, data: dict[str, Any]) -> Incident:
    """Correct what is known: title, description, severity, and the deployment, release or CI it concerns."""
    incident = _locked(incident)
    _edit(incident, actor, data)
    return incident


@transaction.atomic
def incident_acknowledge(*, incident: Incident, actor: User | None, reason: str = "") -> Incident:
    """Someone is on it."""
    return _move(_locked(incident), "acknowledge", actor, bounded_text(reason, "the comment"))


@transaction.atomic
def incident_resolve(*, incident: Incident, actor: User | None, reason: str = "") -> Incident:
    """The service is restored (by a person, or by the alert that opened it resolving)."""
    return _move(_locked(incident), "resolve", actor, bounded_text(reason, "the resolution"))


@transaction.atomic
def incident_reopen(*, incident: Incident, actor: User | None, reason: str = "") -> Incident:
    """It came back before it was closed."""
    return _move(_locked(incident), "reopen", actor, bounded_text(reason, "the reason"))


@transaction.atomic
def incident_close(*, incident: Incident, actor: User | None, reason: str = "") -> Incident:
    """Nothing more to do about a resolved incident."""
    return _move(_locked(incident), "close", actor, bounded_text(reason, "the comment"))


@transaction.atomic
def incident_correlation_correct(
    *, incident: Incident, actor: User | None, deployment: Deployment | None, reason: str
) -> Incident:
    """A person puts right which deployment caused the incident (None: none did); the old and new link and the
    reason are audited, and RDM does not change it again."""
    reason = require_text(reason, "the reason for the correction")
    incident = _locked(incident)
    action_ensure(INCIDENT_ACTIONS, "correct_correlation", incident, actor)
    changes = {
        "deployment": [audit_value(incident.deployment), audit_value(deployment)],
        "correlation": [incident.correlation, CorrelationMethod.CORRECTED],
    }
    incident.deployment, incident.correlation = deployment, CorrelationMethod.CORRECTED
    _checked(incident)
    save(incident)
    transition_record(
        actor=actor, target=incident, action="incident.correct_correlation", reason=reason, changes=changes
    )
    return incident
