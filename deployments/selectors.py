"""Reads about deployments: the plan before it runs, the live events, logs and what is active."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, QuerySet

from deployments.choices import DEPLOYMENT_ACTIVE_STATES, StepKind
from deployments.models import Deployment, DeploymentEvent, Step, StepLog, Target, Variable, Wave
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
