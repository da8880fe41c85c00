"""Plans: which targets go in which wave, and the steps each wave runs, computed once and stored.

The wave builders are pure (targets in, waves out); ``plan_build`` writes the Wave and Step rows of a
deployment from its process, targets and variables, validating every step's parameters after
substitution and reporting every problem at once. Secret variables stay ``#{references}`` in the
stored parameters; they are resolved only while a step runs (``deployments.engine``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Q

from deployments import parallel
from deployments.choices import DeploymentModel, StepKind
from deployments.executors.base import Executor, ExecutorParameterError, UnknownExecutor
from deployments.executors.registry import get_executor
from deployments.models import Deployment, Step, StepTemplate, Target, Variable, Wave
from deployments.variables import UnknownVariablesError, substitute, substitute_public
from rdm_site.exceptions import InvalidInput

GATE_MAX_ATTEMPTS = 3  # a gate retries only transient failures (an unreachable health endpoint)
CUTOVER_MAX_ATTEMPTS = 3  # a cutover retries transient failures with the same idempotency key
CUTOVER_EXECUTOR = "http_call"


@dataclass
class WavePlan:
    name: str
    targets: list[Target]
    ring: str = ""
    percentage: float | None = None
    cutover: dict[str, Any] | None = None  # a parallel deployment's cutover wave runs this call, once, instead


# --- wave builders ---------------------------------------------------------------------------------


def big_bang_waves(targets: Sequence[Target]) -> list[WavePlan]:
    """Every target at once."""
    return [WavePlan("all targets", list(targets), percentage=100.0)]


def phased_waves(targets: Sequence[Target], phase_plan: dict[str, Any]) -> list[WavePlan]:
    """Waves by ring (``{"rings": [...]}``) or by cumulative percentage (``{"canary": 1, "percentages": [...]}``)."""
    problems = phase_plan_problems(DeploymentModel.PHASED, phase_plan)
    if problems:
        raise InvalidInput("The phase plan is not valid: " + "; ".join(problems), problems)
    if "rings" in phase_plan:
        return _ring_waves(targets, phase_plan["rings"])
    return _percentage_waves(targets, phase_plan.get("canary", 0), phase_plan.get("percentages", [100]))


def _ring_waves(targets: Sequence[Target], rings: list[str]) -> list[WavePlan]:
    waves = [WavePlan(f"ring {ring}", [t for t in targets if t.ring == ring], ring=ring) for ring in rings]
    remaining = [t for t in targets if t.ring not in rings]
    if remaining:  # nothing is left out silently: targets of unlisted rings go last
        waves.append(WavePlan("remaining targets", remaining))
    return [wave for wave in waves if wave.targets]


def _percentage_waves(targets: Sequence[Target], canary: int, percentages: list[float]) -> list[WavePlan]:
    total, waves, done = len(targets), [], 0
    if canary and total:
        done = min(canary, total)
        waves.append(WavePlan(f"canary ({done} target{'s' if done > 1 else ''})", list(targets[:done])))
    for percentage in [*percentages, *([] if percentages and percentages[-1] == 100 else [100])]:
        upto = min(total, max(math.ceil(total * percentage / 100), done))
        if upto > done:
            waves.append(WavePlan(f"{percentage:g} %", list(targets[done:upto]), percentage=float(percentage)))
            done = upto
    return waves


def parallel_waves(targets: Sequence[Target], phase_plan: dict[str, Any], version: str) -> list[WavePlan]:
    """Blue/green: the parallel set is deployed and verified, then traffic is cut over to it and verified again
    (only the cutover when the plan says the parallel set runs ``version`` already). The live set is in no wave."""
    problems = phase_plan_problems(DeploymentModel.PARALLEL, phase_plan)
    members = [] if problems else parallel.set_members(targets, phase_plan, "parallel")
    problems = problems or parallel.serving_problems(members, phase_plan)
    if not problems and phase_plan.get("cutover_only"):
        problems = parallel.cutover_only_problems(members, version)
    if problems:
        raise InvalidInput("The phase plan is not valid: " + "; ".join(problems), problems)
    label = phase_plan["parallel"]
    ring = label if phase_plan.get("set_by", "ring") == "ring" else ""
    deploy = [] if phase_plan.get("cutover_only") else [WavePlan(f"parallel set {label}", members, ring=ring)]
    return [*deploy, WavePlan(f"cutover to {label}", members, ring=ring, cutover=phase_plan["cutover"])]


# A wave's bake time is stored in a 32-bit column; a week is already far longer than any bake.
MAX_BAKE_SECONDS = 7 * 24 * 3600
MODEL_PLAN_KEYS = {
    DeploymentModel.PHASED: {"rings", "percentages", "canary"},
    DeploymentModel.PARALLEL: parallel.PLAN_KEYS,
}


def phase_plan_problems(model: str, phase_plan: Any) -> list[str]:
    """Everything wrong with a phase plan, at once."""
    if not isinstance(phase_plan, dict):
        return ["the phase plan must be a JSON object"]
    problems = []
    known = {"bake_seconds"} | MODEL_PLAN_KEYS.get(model, set())
    problems += [
        f"{key!r} is not used by a {model.replace('_', ' ')} deployment" for key in phase_plan if key not in known
    ]
    bake = phase_plan.get("bake_seconds", 0)
    if not isinstance(bake, int) or isinstance(bake, bool) or bake < 0:
        problems.append("bake_seconds must be a whole number of seconds, 0 or more")
    elif bake > MAX_BAKE_SECONDS:
        problems.append(f"bake_seconds is at most {MAX_BAKE_SECONDS} (a week)")
    if model == DeploymentModel.PARALLEL:
        return problems + parallel.parallel_plan_problems(phase_plan)
    if model != DeploymentModel.PHASED:
        return problems
    if "rings" in phase_plan and ("percentages" in phase_plan or "canary" in phase_plan):
        problems.append("give either rings or percentages (with an optional canary), not both")
    rings = phase_plan.get("rings")
    if rings is not None and (
        not isinstance(rings, list) or not rings or not all(isinstance(r, str) and r for r in rings)
    ):
        problems.append("rings must be a non-empty list of ring labels")
    elif rings is not None and len(set(rings)) != len(rings):
        problems.append("rings must not repeat a label")
    percentages = phase_plan.get("percentages")
    if percentages is not None:
        numbers_ok = isinstance(percentages, list) and all(
            isinstance(p, int | float) and not isinstance(p, bool) and 0 < p <= 100 for p in percentages
        )
        if not numbers_ok or not percentages:
            problems.append("percentages must be a non-empty list of numbers above 0 and at most 100")
        elif any(b <= a for a, b in itertools.pairwise(percentages)):
            problems.append("percentages are cumulative and must rise")
    canary = phase_plan.get("canary", 0)
    if not isinstance(canary, int) or isinstance(canary, bool) or canary < 0:
        problems.append("canary must be a number of targets, 0 or more")
    if rings is None and percentages is None and not canary:
        problems.append("a phased deployment needs rings, or percentages (and/or a canary)")
    return problems


def phase_plan_text(phase_plan: dict[str, Any]) -> str:
    """The plan as a line to read: ``canary: 1; percentages: 50, 100`` or ``cutover: url https://..., method PUT``."""
    parts = []
    for key, value in phase_plan.items():
        if isinstance(value, list):
            value = ", ".join(map(str, value))
        elif isinstance(value, dict):
            value = ", ".join(f"{name} {setting}" for name, setting in value.items())
        parts.append(f"{key}: {value}")
    return "; ".join(parts)


# --- variables ---------------------------------------------------------------------------------------


@dataclass
class VariableSet:
    """The variables of a service in an environment: public values, and secret values (decrypted, in memory)."""

    public: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def secret_values(self) -> list[str]:
        return [value for value in self.secrets.values() if value]


def variables_resolve(service_id: int, environment_id: int) -> VariableSet:
    """An environment's own value wins over the value for every environment."""
    resolved = VariableSet()
    rows = Variable.objects.filter(service_id=service_id).filter(
        Q(environment_id=environment_id) | Q(environment__isnull=True)
    )
    for variable in sorted(rows, key=lambda v: v.environment_id is not None):
        resolved.public.pop(variable.name, None)
        resolved.secrets.pop(variable.name, None)
        if variable.is_secret:
            resolved.secrets[variable.name] = variable.plain_value()
        else:
            resolved.public[variable.name] = variable.value
    return resolved


def builtin_variables(deployment: Deployment, target: Target | None) -> dict[str, str]:
    """Names every step may use: ``#{Deployment.Version}``, ``#{Target.Name}``, ``#{Target.<CI attribute>}``..."""
    values = {
        "Deployment.Id": str(deployment.pk),
        "Deployment.Version": deployment.version,
        "Environment.Name": deployment.environment.name,
        "Service.Name": deployment.service.name,
    }
    if target is not None:
        values.update({"Target.Name": target.ci.name, "Target.Ring": target.ring, "Target.Group": target.group})
        for key, value in (target.ci.attributes or {}).items():
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                values.setdefault(f"Target.{key}", str(value))
    return values


def parameters_prepare(
    executor: Executor, parameters: dict[str, Any], variables: VariableSet, builtins: dict[str, str]
) -> tuple[dict[str, Any], list[str]]:
    """The parameters to store (secret references kept) and the problems found validating them in full."""
    try:
        stored = substitute_public(parameters, {**variables.public, **builtins}, variables.secrets)
        executor.validate(substitute(stored, variables.secrets))
    except UnknownVariablesError as error:
        return parameters, [f"unknown variables: {', '.join(error.names)}"]
    except ExecutorParameterError as error:
        return stored, error.problems
    return stored, []


# --- the plan ---------------------------------------------------------------------------------------


def targets_for(deployment: Deployment) -> list[Target]:
    """The enabled targets of the service in the environment whose CI is live (the guards check again at start)."""
    from cmdb.choices import CiState

    return list(
        Target.objects.filter(
            enabled=True,
            ci__state=CiState.LIVE,
            ci__environment_id=deployment.environment_id,
            ci__service_id=deployment.service_id,
        )
        .select_related("ci", "ci__environment")
        .order_by("ci__name")
    )


def waves_for(deployment: Deployment, targets: Sequence[Target]) -> list[WavePlan]:
    if deployment.model == DeploymentModel.PHASED:
        return phased_waves(targets, deployment.phase_plan)
    if deployment.model == DeploymentModel.PARALLEL:
        return parallel_waves(targets, deployment.phase_plan, deployment.version)
    problems = phase_plan_problems(deployment.model, deployment.phase_plan)
    if problems:
        raise InvalidInput("The phase plan is not valid: " + "; ".join(problems), problems)
    return big_bang_waves(targets)


def allocate_step_ids(count: int) -> list[int]:
    """Step ids taken from the table's sequence up front, so each idempotency key can name its step at insert."""
    if not count:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [Step._meta.db_table, count]
        )
        return [row[0] for row in cursor.fetchall()]


def idempotency_key(deployment_id: int, step_id: int) -> str:
    """Stable across attempts and workers: a retry or a re-run after a lost worker sends the same key."""
    return f"{deployment_id}:{step_id}"


def plan_build(deployment: Deployment) -> list[Wave]:
    """Write the deployment's waves and steps. Raises InvalidInput naming every problem with the plan."""
    targets = targets_for(deployment)
    templates = list(deployment.process.step_templates.order_by("position", "id"))
    problems = [] if targets else [f"{deployment.service} has no enabled target in {deployment.environment}"]
    if not templates:
        problems.append(f"the process {deployment.process.name!r} has no step")
    wave_plans = waves_for(deployment, targets) if targets else []
    variables = variables_resolve(deployment.service_id, deployment.environment_id)
    health_checks = [] if deployment.fast_rollback else (deployment.process.health_checks or [])
    executors: dict[str, Executor] = {}
    used = {t.executor for t in templates} | {check["executor"] for check in health_checks}
    for name in used | ({CUTOVER_EXECUTOR} if any(plan.cutover for plan in wave_plans) else set()):
        try:
            executors[name] = get_executor(name)
        except UnknownExecutor:
            problems.append(f"no executor named {name!r} is registered")
    if problems:
        raise InvalidInput("The deployment cannot be planned: " + "; ".join(problems), problems)

    bake = 0 if deployment.fast_rollback else deployment.phase_plan.get("bake_seconds", deployment.process.bake_seconds)
    waves, steps, found = [], [], {}
    for index, wave_plan in enumerate(wave_plans):
        wave = Wave.objects.create(
            deployment=deployment,
            index=index,
            name=wave_plan.name,
            ring=wave_plan.ring,
            percentage=wave_plan.percentage,
            target_count=len(wave_plan.targets),
            bake_seconds=bake,
            health_gate=health_checks,
        )
        waves.append(wave)
        if wave_plan.cutover is not None:
            parameters, cutover_problems = parameters_prepare(
                executors[CUTOVER_EXECUTOR], wave_plan.cutover, variables, builtin_variables(deployment, None)
            )
            for problem in cutover_problems:
                found.setdefault(f"cutover: {problem}", set())
            steps.append(
                Step(
                    deployment=deployment,
                    wave=wave,
                    kind=StepKind.DEPLOY,
                    name=f"cut over to {deployment.phase_plan['parallel']}",
                    executor=CUTOVER_EXECUTOR,
                    parameters=parameters,
                    max_attempts=CUTOVER_MAX_ATTEMPTS,
                )
            )
        for position, template in enumerate([] if wave_plan.cutover is not None else templates):
            for target in _template_targets(template, wave_plan.targets):
                parameters, template_problems = parameters_prepare(
                    executors[template.executor], template.parameters, variables, builtin_variables(deployment, target)
                )
                for problem in template_problems:
                    found.setdefault(f"step {template.name!r}: {problem}", set()).add(target)
                steps.append(
                    Step(
                        deployment=deployment,
                        wave=wave,
                        target=target,
                        template=template,
                        kind=StepKind.DEPLOY,
                        position=position,
                        name=template.name,
                        executor=template.executor,
                        parameters=parameters,
                        max_attempts=template.retries + 1,
                        timeout_seconds=template.timeout_seconds,
                    )
                )
        gate_position = len(templates)
        for number, check in enumerate(health_checks, 1):
            executor = executors[check["executor"]]
            for target in wave_plan.targets if check.get("per_target") else [None]:
                parameters, check_problems = parameters_prepare(
                    executor, check.get("parameters", {}), variables, builtin_variables(deployment, target)
                )
                for problem in check_problems:
                    found.setdefault(f"health check {number} ({executor.name}): {problem}", set()).add(target)
                steps.append(
                    Step(
                        deployment=deployment,
                        wave=wave,
                        target=target,
                        kind=StepKind.GATE,
                        position=gate_position,
                        name=f"health gate: {executor.display_name}",
                        executor=executor.name,
                        parameters=parameters,
                        max_attempts=GATE_MAX_ATTEMPTS,
                    )
                )
    if found:
        problems = [_with_targets(problem, where) for problem, where in found.items()]
        raise InvalidInput("The deployment cannot be planned: " + "; ".join(problems), problems)
    steps_insert(deployment, steps)
    return waves


def steps_insert(deployment: Deployment, steps: list[Step]) -> list[Step]:
    for step, step_id in zip(steps, allocate_step_ids(len(steps)), strict=True):
        step.pk = step_id
        step.idempotency_key = idempotency_key(deployment.pk, step_id)
    return Step.objects.bulk_create(steps, batch_size=500)


def _template_targets(template: StepTemplate, targets: Iterable[Target]) -> list[Target | None]:
    labels = template.labels()
    matching = [target for target in targets if labels is None or target.labels & labels]
    if template.run_once:
        return [None] if matching else []
    return matching


def _with_targets(problem: str, targets: set[Target | None]) -> str:
    names = sorted(target.ci.name for target in targets if target is not None)
    if not names:
        return problem
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"{problem} (on {shown})"
