"""Reads about deployments: the plan before it runs, the live events, logs and what is active."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, QuerySet

from deployments.choices import DEPLOYMENT_ACTIVE_STATES, StepKind
from deployments.models import (
    Deployment,
    DeploymentEvent,
    DeploymentProcess,
    Incident,
    Step,
    StepLog,
    StepTemplate,
    Target,
    Variable,
    Wave,
)
from deployments.variables import MASK


@dataclass
class PlannedStep:
    name: str
    executor: str
    kind: str
    position: int
    targets: list[str]
    state_counts: dict[str, int]


@dataclass
class PlannedWave:
    id: int
    index: int
    name: str
    state: str
    targets: list[str]
    bake_seconds: int
    health_gate: list[dict[str, Any]]
    steps: list[PlannedStep] = field(default_factory=list)


def deployment_plan(deployment: Deployment) -> list[PlannedWave]:
    """The stored plan, wave by wave: targets, and each step with the targets it runs on and how far it got."""
    waves = {wave.pk: wave for wave in Wave.objects.filter(deployment=deployment).order_by("index")}
    plan = {
        wave.pk: PlannedWave(
            id=wave.pk,
            index=wave.index,
            name=wave.name,
            state=wave.state,
            targets=[],
            bake_seconds=wave.bake_seconds,
            health_gate=[
                {"executor": check.get("executor"), "per_target": bool(check.get("per_target"))}
                for check in wave.health_gate
            ],
        )
        for wave in waves.values()
    }
    grouped: dict[tuple, dict[str, Any]] = {}
    steps = (
        Step.objects.filter(deployment=deployment)
        .values_list("wave_id", "kind", "position", "name", "executor", "state", "target__ci__name")
        .order_by("wave__index", "kind", "position", "target__ci__name")
    )
    for wave_id, kind, position, name, executor, state, target in steps:
        entry = grouped.setdefault((wave_id, kind, position, name, executor), {"targets": [], "states": Counter()})
        if target:
            entry["targets"].append(target)
        entry["states"][state] += 1
        if kind == StepKind.DEPLOY and target and target not in plan[wave_id].targets:
            plan[wave_id].targets.append(target)
    order = {StepKind.DEPLOY: 0, StepKind.GATE: 1, StepKind.ROLLBACK: 2}
    for (wave_id, kind, position, name, executor), entry in sorted(
        grouped.items(), key=lambda item: (item[0][0], order[item[0][1]], item[0][2])
    ):
        plan[wave_id].steps.append(PlannedStep(name, executor, kind, position, entry["targets"], dict(entry["states"])))
    return list(plan.values())


def deployment_events_since(deployment_id: int, after_seq: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
    """The events a live view missed (``seq`` above ``after_seq``), in order, as published."""
    events = DeploymentEvent.objects.filter(deployment_id=deployment_id, seq__gt=after_seq).order_by("seq")[:limit]
    return [event.as_message() for event in events]


def deployment_step_counts(deployment: Deployment) -> dict[str, int]:
    rows = Step.objects.filter(deployment=deployment).values("state").annotate(n=Count("id"))
    return {row["state"]: row["n"] for row in rows}


def deployments_active() -> QuerySet[Deployment]:
    return Deployment.objects.filter(state__in=DEPLOYMENT_ACTIVE_STATES).select_related("service", "environment")


def step_logs(step: Step) -> QuerySet[StepLog]:
    return StepLog.objects.filter(step=step).order_by("at", "id")


def waiting_interventions(deployment: Deployment) -> QuerySet[Step]:
    """Manual interventions that wait for an answer."""
    return Step.objects.filter(
        deployment=deployment, executor="manual_intervention", state="running", manual_answer=""
    ).exclude(kind=StepKind.ROLLBACK)


def targets_of(service, environment) -> QuerySet[Target]:
    return Target.objects.filter(ci__service=service, ci__environment=environment).select_related("ci")


def variable_display(variable: Variable) -> str:
    """What any page may show of a variable's value."""
    return MASK if variable.is_secret else variable.value


# --- lists, with what their rows show loaded up front (no query per row) --------------------------------


def process_list() -> QuerySet[DeploymentProcess]:
    return DeploymentProcess.objects.select_related("service").prefetch_related("step_templates")


def step_template_list() -> QuerySet[StepTemplate]:
    return StepTemplate.objects.select_related("process")


def variable_list() -> QuerySet[Variable]:
    return Variable.objects.select_related("service", "environment")


def target_list() -> QuerySet[Target]:
    return Target.objects.select_related("ci__environment", "ci__service")


def deployment_rows() -> QuerySet[Deployment]:
    """A list's rows: the deployment's own columns and who asked for it (related records are shown by id)."""
    return Deployment.objects.select_related("requested_by")


def deployment_list() -> QuerySet[Deployment]:
    """With what the rule table asks of each row (its environment's tier, its change's type)."""
    return Deployment.objects.select_related("service", "environment", "process", "package", "change", "requested_by")


def step_list() -> QuerySet[Step]:
    return Step.objects.select_related(
        "target__ci", "answered_by", "deployment__environment", "deployment__change"
    ).order_by("id")


def step_log_list() -> QuerySet[StepLog]:
    return StepLog.objects.all()


def incident_list() -> QuerySet[Incident]:
    return Incident.objects.select_related(
        "opened_by", "deployment__service", "deployment__environment", "release", "ci"
    )


# --- naming records as monitoring does (an alert's labels) ------------------------------------------------


def release_named(label: str):
    """The release an id or "name version" names, else the latest release of that name; None when none does."""
    from releases.models import Release

    if label.isdigit():
        return Release.objects.filter(pk=int(label)).first() if int(label) < 2**63 else None
    name, _, version = label.rpartition(" ")
    exact = Release.objects.filter(name=name, version=version).first() if name else None
    return exact or Release.objects.filter(name=label).order_by("-created").first()


def ci_named(label: str, environment: str = ""):
    """The CI an id names, or the one CI of that name (in ``environment``, by name, when given); None when
    none or several do."""
    from cmdb.models import ConfigurationItem

    if label.isdigit():
        return ConfigurationItem.objects.filter(pk=int(label)).first() if int(label) < 2**63 else None
    found = ConfigurationItem.objects.filter(name=label)
    if environment:
        found = found.filter(environment__name=environment)
    found = list(found[:2])
    return found[0] if len(found) == 1 else None
