"""Reads about deployments: the plan before it runs, the live events, logs and what is active."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from django.db.models import Count, F, Max, Min, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from deployments import governance, guards
from deployments.choices import DEPLOYMENT_ACTIVE_STATES, STEP_TERMINAL_STATES, DeploymentState, StepKind, StepState
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
from rdm_site.domain import BIGINT_MAX


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


def incident_browser_rows() -> QuerySet[Incident]:
    """The incident pages' rows: what each names, with the service and environment of its CI."""
    return incident_list().select_related("ci__service", "ci__environment")


# --- naming records as monitoring does (an alert's labels) ------------------------------------------------


def release_named(label: str):
    """The release an id or "name version" names, else the latest release of that name; None when none does."""
    from releases.models import Release

    if label.isdigit():
        return Release.objects.filter(pk=int(label)).first() if int(label) <= BIGINT_MAX else None
    name, _, version = label.rpartition(" ")
    exact = Release.objects.filter(name=name, version=version).first() if name else None
    return exact or Release.objects.filter(name=label).order_by("-created").first()


def ci_named(label: str, environment: str = ""):
    """The CI an id names, or the one CI of that name (in ``environment``, by name, when given); None when
    none or several do."""
    from cmdb.models import ConfigurationItem

    if label.isdigit():
        return ConfigurationItem.objects.filter(pk=int(label)).first() if int(label) <= BIGINT_MAX else None
    found = ConfigurationItem.objects.filter(name=label)
    if environment:
        found = found.filter(environment__name=environment)
    found = list(found[:2])
    return found[0] if len(found) == 1 else None


# --- the browser's pages: list rows with their progress, the live grid, the guards before a start -----------


def _step_count(**conditions) -> Subquery:
    """Steps of the outer deployment (not counting rollback steps) matching ``conditions``, one per row shown."""
    steps = Step.objects.filter(deployment=OuterRef("pk"), **conditions).exclude(kind=StepKind.ROLLBACK)
    return Subquery(steps.order_by().values("deployment").annotate(n=Count("id")).values("n"))


def with_progress(deployments: QuerySet[Deployment]) -> QuerySet[Deployment]:
    """``steps_total`` and ``steps_done`` on each row, counted for the rows shown only (correlated subqueries)."""
    return deployments.annotate(
        steps_total=Coalesce(_step_count(), 0), steps_done=Coalesce(_step_count(state__in=STEP_TERMINAL_STATES), 0)
    )


def deployment_browser_rows() -> QuerySet[Deployment]:
    """A list page's rows: what each row names, and its progress."""
    return with_progress(Deployment.objects.select_related("service", "environment", "package", "requested_by"))


@dataclass(frozen=True)
class GridStep:
    """What the grid shows of a step: read as plain values (a grid of 1,000 targets would otherwise build 3,000
    models)."""

    pk: int
    deployment_id: int
    wave_id: int
    target_id: int | None
    kind: str
    position: int
    name: str
    state: str
    message: str

    @property
    def state_label(self) -> str:
        return StepState(self.state).label


@dataclass
class TargetCell:
    """One target of a wave and its steps (deploy, per-target gate and rollback steps), in order."""

    name: str
    steps: list[GridStep]


@dataclass
class GridWave:
    wave: Wave
    cells: list[TargetCell]
    wave_steps: list[GridStep]  # run once for the wave: steps marked "run once", health checks not run per target

    @property
    def rolled_back(self) -> bool:
        """Every step of the wave that was undone is undone."""
        undoing = [step for cell in self.cells for step in cell.steps if step.kind == StepKind.ROLLBACK]
        return bool(undoing) and all(step.state == StepState.SUCCEEDED for step in undoing)


_GRID_STEP_FIELDS = [each.name for each in fields(GridStep)]


def rollout_grid(deployment: Deployment) -> list[GridWave]:
    """The grid of a rollout: each wave with its targets and their steps, in two queries."""
    waves = {wave.pk: GridWave(wave, [], []) for wave in Wave.objects.filter(deployment=deployment).order_by("index")}
    cells: dict[tuple[int, int], TargetCell] = {}
    order = {StepKind.DEPLOY: 0, StepKind.GATE: 1, StepKind.ROLLBACK: 2}
    rows = Step.objects.filter(deployment=deployment).values_list(*_GRID_STEP_FIELDS, "target__ci__name")
    steps = sorted(
        ((GridStep(*row[:-1]), row[-1]) for row in rows),
        key=lambda pair: (order[pair[0].kind], pair[0].position, pair[0].pk),
    )
    for step, target_name in steps:
        row = waves[step.wave_id]
        if step.target_id is None:
            row.wave_steps.append(step)
            continue
        key = (step.wave_id, step.target_id)
        if key not in cells:
            cells[key] = TargetCell(target_name, [])
            row.cells.append(cells[key])
        cells[key].steps.append(step)
    for row in waves.values():
        row.cells.sort(key=lambda cell: cell.name)
    return list(waves.values())


@dataclass
class GuardAnswer:
    """A condition checked before a rollout starts (or is scheduled), with why it is not met now."""

    name: str
    problems: list[str]

    @property
    def met(self) -> bool:
        return not self.problems


def deployment_guard_answers(deployment: Deployment, at: datetime, *, starting: bool) -> list[GuardAnswer]:
    """The answers of the guards the start (``starting``) or the schedule checks, at ``at``, one per concern;
    together they are exactly ``guards.start_conditions`` (or ``schedule_conditions``)."""
    window = governance.window_conditions(deployment, at)
    checklist = governance.production_checklist(deployment) if starting else None
    eligibility = [p for p in governance.deployment_conditions(deployment, at, checklist) if p not in window]
    answers = [
        GuardAnswer("Release eligibility and change record", eligibility),
        GuardAnswer("Release window and freezes", window),
        GuardAnswer("Targets live and enabled", guards.targets_conditions(deployment)),
    ]
    if starting:
        lock = guards.lock_conditions(deployment)
        answers.append(GuardAnswer("One active deployment per service and environment", lock))
    return answers


def deployment_events_newest(deployment: Deployment, limit: int = 200) -> list[DeploymentEvent]:
    """The events up to the one ``deployment`` was read at (a live view asks the stream for the later ones)."""
    events = DeploymentEvent.objects.filter(deployment=deployment, seq__lte=deployment.last_event_seq)
    return list(events.order_by("-seq")[:limit])


def step_logs_after(step: Step, after_id: int, limit: int = 500) -> list[StepLog]:
    """A step's log lines after the one a follower saw last (masked when they were written)."""
    return list(StepLog.objects.filter(step=step, pk__gt=after_id).order_by("id")[:limit])


def deployments_of_service(service) -> QuerySet[Deployment]:
    return deployment_browser_rows().filter(service=service)


# --- rolling a release back: what ran before --------------------------------------------------------


def current_deployment(service, environment) -> Deployment | None:
    """What runs there now: the newest deployment of a package of ``service`` that succeeded in ``environment``."""
    return (
        Deployment.objects.filter(
            service=service, environment=environment, state=DeploymentState.SUCCEEDED, package__isnull=False
        )
        .select_related("package__release", "change", "process", "service", "environment")
        .order_by("-finished_at", "-id")
        .first()
    )


def earlier_successes(deployment: Deployment) -> QuerySet[Deployment]:
    """The deployments of other packages that succeeded in ``deployment``'s environment before it ended, newest
    first: what a rollback of it may redeploy (``deployments.redeploy``; a package may appear more than once, its
    newest success counts)."""
    if deployment.finished_at is None:
        return Deployment.objects.none()
    return (
        Deployment.objects.filter(
            service=deployment.service_id,
            environment=deployment.environment_id,
            state=DeploymentState.SUCCEEDED,
            package__isnull=False,
            finished_at__lt=deployment.finished_at,
        )
        .exclude(package=deployment.package_id)
        .select_related("package__release")
        .order_by("-finished_at", "-id")
    )


def redeployable_places(service_ids: Iterable[int] | None = None) -> set[tuple[int, int]]:
    """(service id, environment id) where a rollback has something to go back to: more than one package succeeded
    there (what runs now is the newest success, so every other package succeeded before it), of every service or
    of those given. One query."""
    succeeded = Deployment.objects.filter(state=DeploymentState.SUCCEEDED, package__isnull=False)
    if service_ids is not None:
        succeeded = succeeded.filter(service__in=service_ids)
    places = (
        succeeded.values("service_id", "environment_id")
        .annotate(first=Min("package_id"), last=Max("package_id"))  # (cheaper than counting distinct packages)
        .filter(~Q(first=F("last")))
        .values_list("service_id", "environment_id")
    )
    return set(places)


def redeployable_packages(deployment: Deployment) -> list:
    """The packages a rollback of ``deployment`` may restore, newest success first, each once."""
    return list({earlier.package_id: earlier.package for earlier in earlier_successes(deployment)}.values())


def last_good_package(deployment: Deployment):
    """The package that ran before ``deployment`` in its environment, or None."""
    earlier = earlier_successes(deployment).first()
    return earlier.package if earlier else None
