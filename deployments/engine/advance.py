"""Advancing a deployment: waves, gates, failure handling and rollback."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Count, Exists, Max, Min, OuterRef, Q

from deployments import effects, governance, guards, parallel
from deployments.choices import (
    DEPLOYMENT_TERMINAL_STATES,
    STEP_OPEN_STATES,
    DeploymentModel,
    DeploymentState,
    PauseKind,
    StepKind,
    StepState,
    WaveState,
)
from deployments.engine.base import (
    INTERVENTION,
    OPEN,
    Tick,
    dispatch,
    lock_deployment,
    save_or_refuse,
    skip_open,
    wake_for_waiting,
)
from deployments.executors.base import Executor
from deployments.executors.registry import get_executor
from deployments.models import DeploymentLock, Step, Wave
from deployments.planning import builtin_variables, parameters_prepare, steps_insert, variables_resolve

logger = logging.getLogger(__name__)


@transaction.atomic
def deployment_advance(*, deployment_id: int) -> str | None:
    """Take the deployment as far as it can go now: start waves, dispatch steps, judge gates, finish.

    Idempotent: called twice, the second call finds nothing more to do. Returns the state it left.
    """
    deployment = lock_deployment(deployment_id)
    if deployment is None:
        return None
    tick = Tick(deployment)
    advance(tick)
    tick.finish()
    return deployment.state


def advance(tick: Tick) -> None:
    deployment = tick.deployment
    if deployment.state == DeploymentState.QUEUED:
        tick.transition("run", reason="the engine started the first wave")
    if deployment.state == DeploymentState.PAUSED and deployment.pause_kind == PauseKind.INTERVENTION:
        waiting = deployment.steps.filter(state__in=OPEN, executor=INTERVENTION).exclude(kind=StepKind.ROLLBACK)
        if waiting.exists():
            dispatch(tick, waiting)
            wake_for_waiting(tick, waiting)
            return
        deployment.pause_kind, deployment.pause_reason = PauseKind.NONE, ""
        tick.transition("resume", reason="the manual intervention was decided")
    if deployment.state == DeploymentState.RUNNING:
        _advance_running(tick)
    if deployment.state == DeploymentState.ROLLING_BACK:
        _advance_rollback(tick)
    if deployment.state in DEPLOYMENT_TERMINAL_STATES:
        skip_open(tick, deployment.steps.all(), f"the deployment is {deployment.get_state_display().lower()}")


@dataclass
class Verdict:
    open: bool = False
    failed: str = ""


def _advance_running(tick: Tick) -> None:
    deployment = tick.deployment
    for wave in deployment.waves.exclude(state=WaveState.PASSED).order_by("index"):
        if wave.state == WaveState.FAILED:
            _rollout_failed(tick, wave.outcome or f"{wave} failed")
            return
        if wave.state == WaveState.PENDING:
            problems = guards.wave_conditions(deployment, tick.now)
            if problems:
                deployment.pause_kind = PauseKind.FREEZE
                deployment.pause_reason = f"before {wave}: " + "; ".join(problems)
                tick.transition("pause", reason=deployment.pause_reason)
                return
            wave_transition(tick, wave, "start")
        if wave.state == WaveState.RUNNING:
            verdict = _progress(tick, wave, StepKind.DEPLOY)
            if verdict.failed:
                _wave_failed(tick, wave, verdict.failed)
                return
            if verdict.open:
                return
            wave.verify_due_at = tick.now + timedelta(seconds=wave.bake_seconds)
            wave_transition(tick, wave, "verify", f"baking for {wave.bake_seconds} s" if wave.bake_seconds else "")
        if wave.state == WaveState.VERIFYING:
            if wave.verify_due_at and tick.now < wave.verify_due_at:
                tick.wake(wave.verify_due_at)
                return
            verdict = _progress(tick, wave, StepKind.GATE)
            if verdict.failed:
                _wave_failed(tick, wave, verdict.failed)
                return
            if verdict.open:
                return
            wave_transition(tick, wave, "pass_")
    waves = deployment.waves.count()
    deployment.outcome = f"{waves} wave{'s' if waves != 1 else ''} passed"
    tick.transition("succeed", reason=deployment.outcome)
    tick.records_flush()  # the end first on the chain, then what follows from it
    effects.deployment_ended(deployment)


def wave_transition(tick: Tick, wave: Wave, name: str, message: str = "") -> None:
    getattr(wave, name)()
    save_or_refuse(wave)
    tick.events.wave_changed(wave, message)


def _progress(tick: Tick, wave: Wave, kind: str) -> Verdict:
    """Judge the wave's steps of one kind, skip what cannot run, and dispatch the next position's steps.

    One aggregate query in the common case (steps still running, nothing failed): this runs after every
    recorded batch.
    """
    deployment = tick.deployment
    steps = Step.objects.filter(wave=wave, kind=kind)
    free = Q(lease_owner="") | Q(lease_expires_at__lt=tick.now)
    due = Q(state=StepState.PENDING) | Q(due_at__isnull=True) | Q(due_at__lte=tick.now)
    rows = list(
        steps.values("position", "state")
        .order_by()
        .annotate(n=Count("id"), free=Count("id", filter=free), due=Count("id", filter=free & due))
    )
    if any(row["state"] == StepState.FAILED for row in rows):
        failed = list(steps.filter(state=StepState.FAILED).select_related("target__ci").order_by("id")[:50])
        first = failed[0]
        where = f" on {first.target.ci.name}" if first.target_id else ""
        detail = f"{first.name}{where}: {first.message}"
        if kind == StepKind.GATE:
            return Verdict(failed=f"the health gate of {wave} failed ({detail})")
        once = next((step for step in failed if step.target_id is None), None)
        if once is not None:
            return Verdict(failed=f"{once.name} failed in {wave}: {once.message}")
        failed_targets = set(steps.filter(state=StepState.FAILED).values_list("target_id", flat=True))
        ratio = len(failed_targets) / max(wave.target_count, 1)
        if ratio > deployment.rollback_threshold:
            return Verdict(
                failed=f"{len(failed_targets)} of {wave.target_count} targets failed in {wave} "
                f"({ratio:.0%}, more than the {deployment.rollback_threshold:.0%} allowed; first: {detail})"
            )
        if skip_open(
            tick,
            steps.filter(state=StepState.PENDING, target_id__in=failed_targets),
            "an earlier step failed on this target",
        ):
            return _progress(tick, wave, kind)
    open_rows = [row for row in rows if row["state"] in STEP_OPEN_STATES]
    if not open_rows:
        return Verdict()
    position = min(row["position"] for row in open_rows)
    here = [row for row in open_rows if row["position"] == position]
    current = steps.filter(state__in=OPEN, position=position)
    if any(row["due"] for row in here):
        dispatch(tick, current)
    if any(row["state"] == StepState.RUNNING and row["free"] > row["due"] for row in here):
        wake_for_waiting(tick, current)
    return Verdict(open=True)


def _wave_failed(tick: Tick, wave: Wave, reason: str) -> None:
    wave.outcome = reason
    wave_transition(tick, wave, "fail", reason)
    _rollout_failed(tick, reason)


def _rollout_failed(tick: Tick, reason: str) -> None:
    """Stop the rollout; roll back what was done, or pause for a decision when a unit cannot be reversed."""
    deployment = tick.deployment
    skip_open(tick, deployment.steps.exclude(kind=StepKind.ROLLBACK), "the rollout failed")
    irreversible = governance.irreversible_units(deployment)
    if irreversible:
        deployment.outcome = reason
        deployment.pause_kind = PauseKind.DECISION
        deployment.pause_reason = (
            f"{reason}. Not rolled back automatically: {', '.join(irreversible)} cannot be reversed. "
            "Roll back anyway, or mark the deployment failed."
        )
        tick.transition("pause", reason=deployment.pause_reason)
        return
    rollback_begin(tick, reason)


def stop(tick: Tick, reason: str, *, steps) -> None:
    """End a rollout's forward motion (an abort, a rollback, a decision to fail): the given open steps that no
    worker runs are skipped, and the waves under way fail, both with ``reason``."""
    skip_open(tick, steps, reason)
    for wave in tick.deployment.waves.filter(state__in=[WaveState.RUNNING, WaveState.VERIFYING]):
        wave.outcome = reason
        wave_transition(tick, wave, "fail", reason)


def rollback_begin(tick: Tick, reason: str, *, actor=None) -> None:
    """Move to rolling back and plan the rollback steps; the caller has checked the conditions."""
    deployment = tick.deployment
    deployment.outcome = reason
    deployment.pause_kind, deployment.pause_reason = PauseKind.NONE, ""
    stop(tick, reason, steps=deployment.steps.exclude(kind=StepKind.ROLLBACK))
    if not DeploymentLock.objects.filter(deployment=deployment).exists():
        DeploymentLock.objects.create(
            service_id=deployment.service_id, environment_id=deployment.environment_id, deployment=deployment
        )
    tick.transition("roll_back", actor=actor, reason=reason)
    _plan_rollback(tick)
    _advance_rollback(tick)


def _plan_rollback(tick: Tick) -> None:
    """A rollback step for every deploy step that started and is not already undone (or being undone).

    They run wave by wave, the last wave first, and within a wave the last position first. A parallel
    deployment's rollback is its cut-back alone (``deployments.parallel``).
    """
    deployment = tick.deployment
    covered = Step.objects.filter(
        rolls_back=OuterRef("pk"), state__in=[StepState.PENDING, StepState.RUNNING, StepState.SUCCEEDED]
    )
    started = (
        deployment.steps.filter(kind=StepKind.DEPLOY, started_at__isnull=False)
        .exclude(Exists(covered))
        .select_related("template", "target__ci")
    )
    if deployment.model == DeploymentModel.PARALLEL:
        started = parallel.rollback_scope(started)
    variables = None
    top = deployment.steps.filter(kind=StepKind.DEPLOY).aggregate(Max("position"))["position__max"] or 0
    new_steps: list[Step] = []
    for step in started:
        executor = get_executor(step.executor)
        if type(executor).rollback is Executor.rollback:
            continue  # nothing to undo (a wait, a manual intervention, a check)
        parameters = step.parameters
        if step.template is not None and step.template.rollback_parameters:
            variables = variables or variables_resolve(deployment.service_id, deployment.environment_id)
            parameters, problems = parameters_prepare(
                executor,
                step.template.rollback_parameters,
                variables,
                builtin_variables(deployment, step.target),
            )
            if problems:
                parameters = {"__problems__": problems}
        new_steps.append(
            Step(
                deployment=deployment,
                wave_id=step.wave_id,
                target=step.target,
                template=step.template,
                kind=StepKind.ROLLBACK,
                position=top - step.position,
                name=f"roll back: {step.name}",
                executor=step.executor,
                parameters=parameters,
                max_attempts=step.max_attempts,
                timeout_seconds=step.timeout_seconds,
                rolls_back=step,
            )
        )
    steps_insert(deployment, new_steps)


def _advance_rollback(tick: Tick) -> None:
    deployment = tick.deployment
    skip_open(tick, deployment.steps.exclude(kind=StepKind.ROLLBACK), "the deployment is rolling back")
    rollback = deployment.steps.filter(kind=StepKind.ROLLBACK)
    open_steps = rollback.filter(state__in=OPEN)
    wave_index = open_steps.aggregate(Max("wave__index"))["wave__index__max"]
    if wave_index is None:
        # A deploy step may have been undone twice (a failed rollback retried): its latest rollback counts.
        later = rollback.filter(rolls_back=OuterRef("rolls_back"), id__gt=OuterRef("id"))
        failed = list(rollback.filter(state=StepState.FAILED).exclude(Exists(later)).select_related("target__ci"))
        if failed:
            names = ", ".join(sorted({str(step) for step in failed})[:5])
            deployment.outcome = f"{deployment.outcome}; the rollback failed ({names}): hands needed".lstrip("; ")
            tick.transition("fail", reason=deployment.outcome)
        else:
            tick.transition("finish_rollback", reason=deployment.outcome)
        tick.records_flush()  # the end first on the chain, then what follows from it
        effects.deployment_ended(deployment)
        return
    in_wave = open_steps.filter(wave__index=wave_index)
    position = in_wave.aggregate(Min("position"))["position__min"]
    # A rollback waits while the step it undoes is still running on a worker.
    current = in_wave.filter(position=position)
    dispatch(tick, current.exclude(rolls_back__state__in=OPEN))
    wake_for_waiting(tick, current)
