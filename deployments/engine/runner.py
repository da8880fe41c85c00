"""Running steps: claim a batch, call the executors, record the outcomes, renew the leases."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection, transaction
from django.utils import timezone

from deployments.choices import (
    DeploymentState,
    LogLevel,
    PauseKind,
    StepKind,
    StepState,
)
from deployments.engine.advance import advance
from deployments.engine.base import (
    FLUSH_SECONDS,
    INTERVENTION,
    QUEUED,
    SLICE_SECONDS,
    Tick,
    claimable,
    count_lost_workers,
    kinds_runnable,
    lease_seconds,
    lock_deployment,
    may_start,
    steps_write,
)
from deployments.engine.leases import LeaseKeeper
from deployments.executors.base import ExecutorError, OutcomeStatus, StepContext, StepOutcome
from deployments.executors.registry import get_executor
from deployments.models import Deployment, Step, StepLog
from deployments.planning import VariableSet, variables_resolve
from deployments.variables import UnknownVariablesError, mask, substitute

logger = logging.getLogger(__name__)


@dataclass
class Result:
    step_id: int
    outcome: StepOutcome
    logs: list[tuple[datetime, str, str]]
    at: datetime


def steps_run(*, deployment_id: int, step_ids: list[int], owner: str) -> int:
    """Claim the given steps, run them one by one and record their outcomes; returns how many ran.

    Short by construction: a step that must wait returns at once with a due time.
    """
    deployment, claimed = _claim(deployment_id, step_ids, owner)
    if not claimed:
        return 0
    variables = variables_resolve(deployment.service_id, deployment.environment_id)
    secrets = variables.secret_values
    keeper = LeaseKeeper.of_this_process()
    keeper.hold(owner, [step.pk for step in claimed])
    results: list[Result] = []
    started = last_flush = time.monotonic()
    ran = 0
    remaining = list(claimed)
    try:
        while remaining:
            if time.monotonic() - started > SLICE_SECONDS:
                break
            step = remaining[0]
            state, pause_kind = _current_state(deployment_id)
            if not may_start(step, state, pause_kind):
                break
            remaining.pop(0)
            results.append(_execute(step, deployment, variables, secrets))
            keeper.release(step.pk)
            ran += 1
            if time.monotonic() - last_flush >= FLUSH_SECONDS and remaining:
                _record(deployment_id, owner, results, secrets)
                results, last_flush = [], time.monotonic()
    except SoftTimeLimitExceeded:
        logger.warning("steps of deployment %s ran out of time; handing the rest back", deployment_id)
    finally:
        keeper.release(*(step.pk for step in claimed))
        _record(deployment_id, owner, results, secrets, unstarted=[step.pk for step in remaining])
    return ran


def _current_state(deployment_id: int) -> tuple[str, str]:
    """The deployment's state, read just before a step starts (a raw query: this runs once per step)."""
    table = connection.ops.quote_name(Deployment._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT state, pause_kind FROM {table} WHERE id = %s", [deployment_id])
        row = cursor.fetchone()
    return row if row else ("", "")


@transaction.atomic
def _claim(deployment_id: int, step_ids: list[int], owner: str) -> tuple[Deployment | None, list[Step]]:
    deployment = lock_deployment(deployment_id)
    if deployment is None:
        return None, []
    kinds = kinds_runnable(deployment)
    if kinds is None:
        return deployment, []
    tick = Tick(deployment)
    candidates = (
        Step.objects.filter(pk__in=step_ids, deployment=deployment)
        .filter(claimable(tick.now) & kinds)
        .select_related("target__ci")
        .order_by("position", "id")
    )
    steps = list(candidates)
    lost = [step.pk for step in steps if step.state == StepState.RUNNING and step.lease_owner not in ("", QUEUED)]
    failed = count_lost_workers(tick, lost) if lost else set()
    claimed = []
    expires = tick.now + timedelta(seconds=lease_seconds())
    for step in steps:
        if step.pk in failed:
            continue
        if step.pk in lost:
            step.attempt += 1
        if step.state == StepState.PENDING:
            step.start()
            tick.events.step_changed(step)
        step.lease_owner, step.lease_expires_at = owner, expires
        claimed.append(step)
    steps_write(claimed, ["state", "started_at", "attempt", "lease_owner", "lease_expires_at"])
    if failed:
        advance(tick)
    tick.finish()
    return deployment, claimed


def _execute(step: Step, deployment: Deployment, variables: VariableSet, secrets: list[str]) -> Result:
    """Call the executor once; whatever it does, the outcome is an outcome (never an exception)."""
    logs: list[tuple[datetime, str, str]] = []

    def log(message: str, level: str = LogLevel.INFO) -> None:
        logs.append((timezone.now(), level, mask(str(message), secrets)))

    now = timezone.now()
    try:
        if "__problems__" in step.parameters:
            raise ExecutorError("; ".join(step.parameters["__problems__"]))
        executor = get_executor(step.executor)
        parameters = executor.validate(substitute(step.parameters, variables.secrets))
        target = step.target
        context = StepContext(
            step_id=step.pk,
            deployment_id=deployment.pk,
            target=target.ci.name if target else "",
            target_attributes={**(target.ci.attributes or {}), "ring": target.ring, "group": target.group}
            if target
            else {},
            parameters=parameters,
            idempotency_key=step.idempotency_key,
            attempt=step.attempt,
            started_at=step.started_at or now,
            now=now,
            log=log,
            answer=step.manual_answer or None,
        )
        outcome = executor.rollback(context) if step.kind == StepKind.ROLLBACK else executor.run(context)
        if not isinstance(outcome, StepOutcome):
            raise ExecutorError(f"the executor returned {type(outcome).__name__}, not a StepOutcome")
    except SoftTimeLimitExceeded:
        raise
    except UnknownVariablesError as error:
        outcome = StepOutcome.failed(f"unknown variables: {', '.join(error.names)}")
    except ExecutorError as error:
        outcome = StepOutcome.failed(str(error))
    except Exception as error:  # a broken executor fails its step, never the engine
        logger.warning("executor %s raised on step %s", step.executor, step.pk, exc_info=True)
        outcome = StepOutcome.failed(f"the executor raised {type(error).__name__}: {error}")
    return Result(step.pk, outcome, logs, timezone.now())


def _masked(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return mask(value, secrets)
    if isinstance(value, dict):
        return {mask(str(key), secrets): _masked(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item, secrets) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


STEP_FIELDS = [
    "state",
    "attempt",
    "due_at",
    "lease_owner",
    "lease_expires_at",
    "finished_at",
    "message",
    "output",
    "deadline",
]


@transaction.atomic
def _record(
    deployment_id: int, owner: str, results: list[Result], secrets: list[str], unstarted: list[int] = ()
) -> None:
    """Write the outcomes of a batch's steps (and hand back the ones it did not start), then advance."""
    if not results and not unstarted:
        return
    deployment = lock_deployment(deployment_id)
    tick = Tick(deployment)
    steps = {step.pk: step for step in Step.objects.filter(pk__in=[r.step_id for r in results] + list(unstarted))}
    changed, logs = [], []
    for result in results:
        step = steps[result.step_id]
        logs += [StepLog(step=step, at=at, level=level, message=message) for at, level, message in result.logs]
        if step.state != StepState.RUNNING or step.lease_owner != owner:
            logs.append(
                StepLog(
                    step=step,
                    level=LogLevel.WARNING,
                    message=f"outcome not recorded ({mask(result.outcome.message, secrets)}): "
                    f"the step is {step.state} and no longer held by this worker",
                )
            )
            continue
        logs.append(_apply(tick, step, result, secrets))
        changed.append(step)
    for step_id in unstarted:
        step = steps[step_id]
        if step.state == StepState.RUNNING and step.lease_owner == owner:
            step.lease_owner, step.lease_expires_at, step.due_at = "", None, tick.now
            changed.append(step)
    steps_write(changed, STEP_FIELDS)
    StepLog.objects.bulk_create(logs)
    advance(tick)
    tick.finish()


def _apply(tick: Tick, step: Step, result: Result, secrets: list[str]) -> StepLog:
    """Move the step by its executor's outcome: done, failed, retried later, or called again when due."""
    outcome = result.outcome
    message = mask(outcome.message, secrets)
    step.message = message
    if outcome.output:
        step.output = _masked(outcome.output, secrets)
    step.lease_owner, step.lease_expires_at = "", None
    level = LogLevel.INFO
    timed_out = (
        step.timeout_seconds is not None
        and step.started_at is not None
        and result.at - step.started_at > timedelta(seconds=step.timeout_seconds)
    )
    if outcome.status == OutcomeStatus.SUCCEEDED:
        step.succeed()
        step.finished_at = result.at  # when it finished, not when the batch was recorded
        step.due_at = None
    elif outcome.status == OutcomeStatus.WAITING and not timed_out:
        step.due_at = outcome.wait_until
        if step.executor == INTERVENTION:
            step.deadline = outcome.wait_until
            _pause_for_intervention(tick, step, message)
        tick.wake(outcome.wait_until)
        return StepLog(step=step, at=result.at, level=level, message=f"waiting: {message}")
    elif outcome.transient and step.attempt < step.max_attempts and not timed_out:
        step.attempt += 1
        step.due_at = result.at + timedelta(seconds=outcome.retry_after)
        tick.wake(step.due_at)
        return StepLog(
            step=step,
            at=result.at,
            level=LogLevel.WARNING,
            message=f"{message}; attempt {step.attempt} of {step.max_attempts} in {outcome.retry_after:g} s",
        )
    else:
        if timed_out:
            step.message = message = f"timed out after {step.timeout_seconds} s ({message})"
        step.fail()
        step.finished_at = result.at
        step.due_at = None
        level = LogLevel.ERROR
    tick.events.step_changed(step, message)
    return StepLog(step=step, at=result.at, level=level, message=message)


def _pause_for_intervention(tick: Tick, step: Step, instructions: str) -> None:
    deployment = tick.deployment
    if deployment.state == DeploymentState.RUNNING:
        deployment.pause_kind = PauseKind.INTERVENTION
        deployment.pause_reason = f"{step.name}: {instructions}"
        tick.transition("pause", reason=deployment.pause_reason)
