"""The first draft of a post-implementation review, from what the record says happened. Nothing here writes.

``review_draft(release)`` gathers the objectives (the release's description), the timeline of each
production deployment (waves with their gate results and durations, pauses, freeze overrides, manual
interventions, rollbacks), the incidents during early life support with their time to restore, and the
go/no-go checklist; then drafts what went well and what went badly from those facts alone, so the service
owner edits sentences that are true instead of typing from memory.

The rollout's rows belong to the deployments app, which depends on this one; they are read through the app
registry so that releases does not import it (dependencies run one way: cmdb ← releases ← deployments).
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.apps import apps
from django.db.models import Q
from django.utils import timezone

from cmdb.choices import EnvironmentTier
from releases.checklist import checklist_evaluate
from releases.models import FreezeOverride, Release

# Values of the deployments app's choice sets that the draft reads (DeploymentState, WaveState, StepState).
SUCCEEDED, FAILED, ROLLING_BACK, ROLLED_BACK, ABORTED, PAUSED = (
    "succeeded",
    "failed",
    "rolling_back",
    "rolled_back",
    "aborted",
    "paused",
)
PASSED = "passed"
MANUAL_INTERVENTION = "manual_intervention"
DEPLOYMENT_EVENT = "deployment"
# Deployment events the timeline tells (the others are the engine's bookkeeping: queued, running).
TOLD_EVENTS = {
    PAUSED: "paused",
    SUCCEEDED: "succeeded",
    FAILED: "failed",
    ROLLING_BACK: "started rolling back",
    ROLLED_BACK: "rolled back",
    ABORTED: "was aborted",
}


@dataclass
class ReviewDraft:
    """What the review starts from: facts (JSON-ready lists) and the drafts written from them."""

    objectives: str
    timeline: list[dict] = field(default_factory=list)
    incidents: list[dict] = field(default_factory=list)
    checklist: list[dict] = field(default_factory=list)
    went_well: list[str] = field(default_factory=list)
    went_badly: list[str] = field(default_factory=list)


def duration_text(span: timedelta | None) -> str:
    """A span as people say it: "35 s", "42 min", "3 h 5 min", "2 d 4 h"."""
    if span is None:
        return ""
    seconds = max(int(span.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def moment_text(at: datetime | None) -> str:
    return timezone.localtime(at).strftime("%Y-%m-%d %H:%M") if at else ""


def _span(start: datetime | None, end: datetime | None) -> timedelta | None:
    return end - start if start and end else None


def _line(at: datetime | None, text: str) -> dict:
    return {"at": at.isoformat() if at else None, "text": text}


def _production_deployments(release: Release) -> list:
    deployment = apps.get_model("deployments", "Deployment")
    return list(
        deployment.objects.filter(package__release=release, environment__tier=EnvironmentTier.PRODUCTION)
        .select_related("environment", "package", "change")
        .prefetch_related("waves", "replaced_by", "events")
        .order_by("created", "id")
    )


def _deployment_story(deployment, draft: ReviewDraft) -> dict:
    """The timeline of one production deployment; adds what it shows to the draft's well and badly."""
    name = f"Deployment #{deployment.pk} of {deployment.version or deployment.package} to {deployment.environment}"
    lines = [_line(deployment.started_at, f"{name} started")] if deployment.started_at else []
    waves = list(deployment.waves.all())
    for wave in waves:
        label = f"Wave {wave.index + 1} ({wave.name}, {wave.target_count} target(s))"
        if wave.started_at:
            lines.append(_line(wave.started_at, f"{label} started"))
        took = duration_text(_span(wave.started_at, wave.finished_at))
        if wave.state == PASSED:
            gate = "passed its health gate" if wave.health_gate else "passed"
            lines.append(_line(wave.finished_at, f"{label} {gate} after {took}".rstrip()))
        elif wave.state == FAILED:
            why = wave.outcome or "its health gate did not hold"
            lines.append(_line(wave.finished_at, f"{label} failed after {took}: {why}"))
            draft.went_badly.append(f"{label} failed at {moment_text(wave.finished_at)}: {why}.")
    for event in deployment.events.all():
        if event.type != DEPLOYMENT_EVENT or event.state not in TOLD_EVENTS:
            continue
        said = f"{name} {TOLD_EVENTS[event.state]}" + (f": {event.message}" if event.message else "")
        lines.append(_line(event.at, said))
        if event.state == PAUSED:
            draft.went_badly.append(f"{name} paused at {moment_text(event.at)}: {event.message or 'no reason given'}.")
        elif event.state == ROLLING_BACK:
            why = f": {event.message}" if event.message else ""
            draft.went_badly.append(f"The rollout rolled back at {moment_text(event.at)}{why}")
    _interventions(deployment, name, lines, draft)
    _overrides(deployment, lines, draft)
    for replacement in deployment.replaced_by.all():
        lines.append(
            _line(
                replacement.created, f"Rolled back by deployment #{replacement.pk} ({replacement.get_state_display()})"
            )
        )
        draft.went_badly.append(f"{name} was rolled back after it succeeded, by deployment #{replacement.pk}.")
    took = _span(deployment.started_at, deployment.finished_at)
    if deployment.state == SUCCEEDED:
        passed = sum(1 for wave in waves if wave.state == PASSED)
        draft.went_well.append(
            f"{name} succeeded in {duration_text(took)}: {passed} wave(s) passed their gates."
            if waves
            else f"{name} succeeded in {duration_text(took)}."
        )
    elif deployment.state in (FAILED, ABORTED):
        why = f": {deployment.outcome}" if deployment.outcome else ""
        draft.went_badly.append(f"{name} ended {deployment.get_state_display().lower()}{why}")
    lines.sort(key=lambda line: line["at"] or "")
    return {
        "deployment": deployment.pk,
        "title": name,
        "state": deployment.state,
        "started_at": deployment.started_at.isoformat() if deployment.started_at else None,
        "finished_at": deployment.finished_at.isoformat() if deployment.finished_at else None,
        "duration": duration_text(took),
        "lines": lines,
    }


def _interventions(deployment, name: str, lines: list[dict], draft: ReviewDraft) -> None:
    steps = deployment.steps.filter(executor=MANUAL_INTERVENTION).select_related("answered_by").order_by("id")
    for step in steps:
        if step.answered_at:
            waited = duration_text(_span(step.started_at, step.answered_at))
            who = step.answered_by.get_username() if step.answered_by else "someone"
            text = f"Manual intervention {step.name!r} answered {step.manual_answer!r} by {who} after {waited}"
            lines.append(_line(step.answered_at, text))
        elif step.state == FAILED:
            lines.append(_line(step.finished_at, f"Manual intervention {step.name!r} passed its deadline"))
            draft.went_badly.append(f"{name}: nobody answered the manual intervention {step.name!r} in time.")


def _overrides(deployment, lines: list[dict], draft: ReviewDraft) -> None:
    if deployment.change_id is None:
        return
    for override in FreezeOverride.objects.filter(change_id=deployment.change_id).select_related(
        "granted_by", "freeze"
    ):
        what = f"freeze {override.freeze}" if override.freeze_id else "every freeze"
        who = override.granted_by.get_username()
        lines.append(_line(override.granted_at, f"Override of {what} granted by {who}: {override.reason}"))
        draft.went_badly.append(f"It deployed during a freeze, under an override of {what} by {who}: {override.reason}")


def _incidents(release: Release, deployments: list, draft: ReviewDraft) -> None:
    """Incidents of the release or its production deployments opened during early life support."""
    incident = apps.get_model("deployments", "Incident")
    start = release.els_started_at or release.deployed_at
    end = release.review_started_at or timezone.now()
    found = incident.objects.filter(Q(release=release) | Q(deployment__in=[d.pk for d in deployments])).order_by(
        "opened_at", "id"
    )
    if start is not None:
        found = found.filter(opened_at__gte=start, opened_at__lte=end)
    for row in found.distinct():
        restored = _span(row.opened_at, row.resolved_at)
        draft.incidents.append(
            {
                "id": row.pk,
                "title": row.title,
                "severity": row.severity,
                "state": row.state,
                "opened_at": row.opened_at.isoformat(),
                "resolved_at": row.resolved_at.isoformat() if row.resolved_at else None,
                "time_to_restore": duration_text(restored),
            }
        )
        outcome = f"restored after {duration_text(restored)}" if restored else "not resolved when ELS exited"
        severity = row.get_severity_display().split(" ")[0]
        draft.went_badly.append(f"{severity} incident #{row.pk} {row.title!r} during ELS: {outcome}.")
    if not draft.incidents:
        draft.went_well.append("No incident during early life support.")


def _checklist(release: Release, draft: ReviewDraft) -> None:
    checklist = checklist_evaluate(release, EnvironmentTier.PRODUCTION)
    for gate in checklist.gates:
        draft.checklist.append(
            {
                "gate": gate.code,
                "title": gate.title,
                "required": gate.required,
                "satisfied": gate.satisfied,
                "status": gate.status,
                "evidence": [
                    " · ".join(part for part in (e.who, moment_text(e.when), e.note, e.link) if part)
                    for e in gate.evidence
                ],
            }
        )
    if checklist.green:
        draft.went_well.append("Every gate of the go/no-go checklist was green.")
    else:
        draft.went_badly += [f"Checklist gate not met: {message}." for message in checklist.unmet_messages]


def review_draft(release: Release) -> ReviewDraft:
    """The pre-filled review of ``release``, from its record."""
    objectives = release.description.strip() or release.release_notes.strip()
    draft = ReviewDraft(objectives=objectives)
    deployments = _production_deployments(release)
    draft.timeline = [_deployment_story(deployment, draft) for deployment in deployments]
    if not deployments:
        draft.went_badly.append("No production deployment of the release is recorded.")
    _incidents(release, deployments, draft)
    _checklist(release, draft)
    return draft


def bullets(lines: list[str]) -> str:
    """Draft sentences as the text fields hold them: one "- " line each, ending with one full stop (a reason
    quoted at the end may bring its own).
    """
    return "\n".join(f"- {line.rstrip().rstrip('.')}." for line in lines)
