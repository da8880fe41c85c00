"""The rollout engine: advance a deployment, run its steps, and reconcile what lost its worker or came due.

PostgreSQL is the truth. A Celery message only says "advance deployment X" or "run steps Y of X"; each
task re-reads the rows and acts idempotently, so a duplicated or stale message does no harm.

- Locking: every transaction that writes about a rollout locks the Deployment row first (``_lock``). That
  one lock orders them all (no deadlock) and makes pause and abort exact: a step is claimed only while the
  deployment allows it, and each step re-checks the state just before it starts, so after an abort at most
  the step already under way finishes.
- Leases: a step dispatched to the queue holds a short "queued" lease; a worker that claims it holds a
  lease that a heartbeat thread renews while it runs. A step whose lease ran out lost its message or its
  worker; the reconciler has it dispatched again, and it runs with the same idempotency key.
- Waits (bake times, wait steps, manual interventions, retries with backoff) are ``due_at`` times; the
  reconciler (Celery beat, every ``RDM_RECONCILE_SECONDS``) advances what came due. No task sleeps.
- Batching: one task runs several steps of a deployment one after the other, claiming them together and
  recording their outcomes together (every ``FLUSH_SECONDS``), and advances the deployment in the same
  transaction as the outcomes. Zero-wait steps thus cost a few queries each, not a Celery round trip.

Deployment transitions made by the engine are audited with RDM itself as the actor; steps write StepLog
lines, not audit events. Every state change is numbered and published (``deployments.events``).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, Max, Min, OuterRef, Q
from django.utils import timezone

from deployments import effects, governance, guards
from deployments.choices import (
    DEPLOYMENT_TERMINAL_STATES,
    STEP_OPEN_STATES,
    DeploymentState,
    LogLevel,
    PauseKind,
    StepKind,
    StepState,
    WaveState,
)
from deployments.events import EventBatch
from deployments.executors.base import Executor, ExecutorError, OutcomeStatus, StepContext, StepOutcome
from deployments.executors.manual_intervention import ManualInterventionExecutor
from deployments.executors.registry import get_executor
from deployments.models import Deployment, DeploymentLock, Step, StepLog, Wave
from deployments.planning import VariableSet, parameters_prepare, steps_insert, variables_resolve
from deployments.variables import UnknownVariablesError, mask, substitute
from rdm_site.audit import audit_record

logger = logging.getLogger(__name__)

QUEUED = "queued"  # lease owner of a step whose message waits in the queue
FLUSH_SECONDS = 0.25  # outcomes are recorded at least this often while a batch runs
SLICE_SECONDS = 2.0  # a batch hands back the steps it has not started after this long, to be spread again
LOST_WORKER_ATTEMPTS = 3  # a step may lose its worker this many times (or use its own retries) before it fails
OPEN = list(STEP_OPEN_STATES)
INTERVENTION = ManualInterventionExecutor.name


def lease_seconds() -> float:
    return settings.RDM_STEP_LEASE_SECONDS


# --- the unit of work on one locked deployment ------------------------------------------------------


def _lock(deployment_id: int) -> Deployment | None:
    return (
        Deployment.objects.select_for_update(no_key=True, of=("self",))
        .select_related("service", "environment", "process")
        .filter(pk=deployment_id)
        .first()
    )


@dataclass
class Tick:
    """What one transaction does to a locked deployment: its events, the steps to dispatch, when to wake."""

    deployment: Deployment
    now: datetime = field(default_factory=timezone.now)
    events: EventBatch = field(init=False)
    dispatch: list[int] = field(default_factory=list)
    wake_at: datetime | None = None

    def __post_init__(self):
        self.events = EventBatch(self.deployment)

    def transition(self, name: str, *, actor=None, reason: str = "", action: str = "") -> None:
        """Move the deployment (the caller has checked the conditions), save, audit and announce it."""
        deployment = self.deployment
        from_state = deployment.state
        getattr(deployment, name)()
        deployment.save()
        audit_record(
            actor=actor,
            action=action or f"deployment.{name}",
            target=deployment,
            from_state=from_state,
            to_state=deployment.state,
            reason=reason,
        )
        self.events.deployment_changed(reason)
        if deployment.state in DEPLOYMENT_TERMINAL_STATES:
            DeploymentLock.objects.filter(deployment=deployment).delete()

    def wake(self, at: datetime | None) -> None:
        if at is not None and (self.wake_at is None or at < self.wake_at):
            self.wake_at = at

    def finish(self) -> None:
        """Write the events, the next wake-up, and queue the dispatched steps after commit."""
        deployment = self.deployment
        if deployment.state in (DeploymentState.QUEUED, DeploymentState.RUNNING, DeploymentState.ROLLING_BACK):
            # A safety net: even if every message is lost, the reconciler looks again by then.
            self.wake(self.now + timedelta(seconds=lease_seconds()))
        elif deployment.state != DeploymentState.PAUSED:
            self.wake_at = None
        deployment.due_at = self.wake_at
        self.events.flush(due_at=self.wake_at)
        if self.dispatch:
            from deployments.tasks import steps_run_task

            chunks = dispatch_chunks(self.dispatch)
            deployment_id = deployment.pk
            transaction.on_commit(lambda: [steps_run_task.delay(deployment_id, chunk) for chunk in chunks])


def dispatch_chunks(step_ids: list[int]) -> list[list[int]]:
    """Steps per task: at most ``RDM_STEP_BATCH_SIZE``, and spread over at least ``RDM_STEP_SPREAD`` tasks when
    there are that many steps, so that slow steps (HTTP calls) run on several worker processes at once."""
    count = len(step_ids)
    tasks = max(math.ceil(count / settings.RDM_STEP_BATCH_SIZE), min(count, settings.RDM_STEP_SPREAD))
    size = math.ceil(count / tasks) if tasks else 0
    return [step_ids[i : i + size] for i in range(0, count, size)] if size else []


# --- which steps may be dispatched, claimed, skipped -------------------------------------------------


def steps_write(steps: list[Step], fields: list[str]) -> None:
    """``bulk_update`` in one ``UPDATE ... FROM (VALUES ...)``: Django's CASE WHEN form costs milliseconds of
    Python per row, which the engine cannot afford on every batch. The caller holds the rows (see ``_lock``)."""
    if not steps:
        return
    model_fields = [Step._meta.get_field(name) for name in fields]
    columns = [field.column for field in model_fields]
    casts = ["bigint", *(field.db_type(connection) for field in model_fields)]
    row = "(" + ", ".join(f"%s::{cast}" for cast in casts) + ")"
    params: list[Any] = []
    for step in steps:
        params.append(step.pk)
        params += [field.get_db_prep_save(getattr(step, field.attname), connection) for field in model_fields]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(column)} = v.{quote(column)}" for column in columns)
    names = ", ".join(quote(column) for column in ["id", *columns])
    sql = (
        f"UPDATE {quote(Step._meta.db_table)} AS s SET {assignments} "
        f"FROM (VALUES {', '.join([row] * len(steps))}) AS v({names}) WHERE s.id = v.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _dispatchable(now: datetime) -> Q:
    """Open, not in the queue or with a worker (or their lease ran out), and due."""
    free = Q(lease_owner="") | Q(lease_expires_at__lt=now)
    due = Q(state=StepState.PENDING) | Q(due_at__isnull=True) | Q(due_at__lte=now)
    return Q(state__in=OPEN) & free & due


def _claimable(now: datetime) -> Q:
    free = Q(lease_owner="") | Q(lease_owner=QUEUED) | Q(lease_expires_at__lt=now)
    due = Q(state=StepState.PENDING) | Q(due_at__isnull=True) | Q(due_at__lte=now)
    return Q(state__in=OPEN) & free & due


def _not_with_a_worker(now: datetime) -> Q:
    return Q(state__in=OPEN) & (Q(lease_owner="") | Q(lease_owner=QUEUED) | Q(lease_expires_at__lt=now))


def _kinds_runnable(deployment: Deployment) -> Q | None:
    """Which steps may start while the deployment is in its current state (None: none)."""
    if deployment.state == DeploymentState.RUNNING:
        return Q(kind__in=[StepKind.DEPLOY, StepKind.GATE])
    if deployment.state == DeploymentState.ROLLING_BACK:
        return Q(kind=StepKind.ROLLBACK)
    if deployment.state == DeploymentState.PAUSED and deployment.pause_kind == PauseKind.INTERVENTION:
        return Q(kind__in=[StepKind.DEPLOY, StepKind.GATE], executor=INTERVENTION)
    return None


def _may_start(step: Step, state: str, pause_kind: str) -> bool:
    if state == DeploymentState.RUNNING:
        return step.kind != StepKind.ROLLBACK
    if state == DeploymentState.ROLLING_BACK:
        return step.kind == StepKind.ROLLBACK
    if state == DeploymentState.PAUSED and pause_kind == PauseKind.INTERVENTION:
        return step.kind != StepKind.ROLLBACK and step.executor == INTERVENTION
    return False


def _dispatch(tick: Tick, steps) -> int:
    """Queue the given steps that are free and due; they hold a "queued" lease until a worker claims them."""
    ready = list(steps.filter(_dispatchable(tick.now)).order_by("position", "id").values_list("id", "lease_owner"))
    lost = [step_id for step_id, owner in ready if owner not in ("", QUEUED)]
    failed = _count_lost_workers(tick, lost) if lost else set()
    ids = [step_id for step_id, _ in ready if step_id not in failed]
    if ids:
        Step.objects.filter(pk__in=ids).update(
            lease_owner=QUEUED, lease_expires_at=tick.now + timedelta(seconds=lease_seconds())
        )
        tick.dispatch.extend(ids)
    return len(ids)


def _count_lost_workers(tick: Tick, step_ids: list[int]) -> set[int]:
    """Steps whose worker stopped renewing their lease run again, as another attempt; those that lost too many
    workers fail (a step that kills its worker must not kill them all). Returns the ids of those failed."""
    steps = list(Step.objects.filter(pk__in=step_ids))
    logs, failed = [], set()
    for step in steps:
        step.attempt += 1
        step.lease_owner, step.lease_expires_at = QUEUED, tick.now + timedelta(seconds=lease_seconds())
        if step.attempt > max(step.max_attempts, LOST_WORKER_ATTEMPTS):
            step.fail()
            step.message = f"lost its worker {step.attempt - 1} times"
            step.lease_owner, step.lease_expires_at = "", None
            tick.events.step_changed(step, step.message)
            failed.add(step.pk)
            logs.append(StepLog(step=step, level=LogLevel.ERROR, message=step.message))
        else:
            logs.append(
                StepLog(step=step, level=LogLevel.WARNING, message=f"its worker was lost; attempt {step.attempt}")
            )
    steps_write(steps, ["state", "attempt", "lease_owner", "lease_expires_at", "finished_at", "message"])
    StepLog.objects.bulk_create(logs)
    return failed


def _wake_for_waiting(tick: Tick, steps) -> None:
    """Wake up when the first of the given waiting steps comes due."""
    waiting = steps.filter(state=StepState.RUNNING, lease_owner="", due_at__gt=tick.now).aggregate(Min("due_at"))
    tick.wake(waiting["due_at__min"])


def _skip(tick: Tick, steps, reason: str) -> int:
    """Skip the open steps that no worker is running (a worker records its own step's outcome)."""
    skipped = list(steps.filter(_not_with_a_worker(tick.now)))
    for step in skipped:
        step.skip()
        step.message = reason
        step.lease_owner, step.lease_expires_at = "", None
        tick.events.step_changed(step, reason)
    steps_write(skipped, ["state", "finished_at", "message", "lease_owner", "lease_expires_at"])
    return len(skipped)


# --- advancing a deployment --------------------------------------------------------------------------


@transaction.atomic
def deployment_advance(*, deployment_id: int) -> str | None:
    """Take the deployment as far as it can go now: start waves, dispatch steps, judge gates, finish.

    Idempotent: called twice, the second call finds nothing more to do. Returns the state it left.
    """
    deployment = _lock(deployment_id)
    if deployment is None:
        return None
    tick = Tick(deployment)
    _advance(tick)
    tick.finish()
    return deployment.state


def _advance(tick: Tick) -> None:
    deployment = tick.deployment
    if deployment.state == DeploymentState.QUEUED:
        tick.transition("run", reason="the engine started the first wave")
    if deployment.state == DeploymentState.PAUSED and deployment.pause_kind == PauseKind.INTERVENTION:
        waiting = deployment.steps.filter(state__in=OPEN, executor=INTERVENTION).exclude(kind=StepKind.ROLLBACK)
        if waiting.exists():
            _dispatch(tick, waiting)
            _wake_for_waiting(tick, waiting)
            return
        deployment.pause_kind, deployment.pause_reason = PauseKind.NONE, ""
        tick.transition("resume", reason="the manual intervention was decided")
    if deployment.state == DeploymentState.RUNNING:
        _advance_running(tick)
    if deployment.state == DeploymentState.ROLLING_BACK:
        _advance_rollback(tick)
    if deployment.state in DEPLOYMENT_TERMINAL_STATES:
        _skip(tick, deployment.steps.all(), f"the deployment is {deployment.get_state_display().lower()}")


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
            _wave_transition(tick, wave, "start")
        if wave.state == WaveState.RUNNING:
            verdict = _progress(tick, wave, StepKind.DEPLOY)
            if verdict.failed:
                _wave_failed(tick, wave, verdict.failed)
                return
            if verdict.open:
                return
            wave.verify_due_at = tick.now + timedelta(seconds=wave.bake_seconds)
            _wave_transition(tick, wave, "verify", f"baking for {wave.bake_seconds} s" if wave.bake_seconds else "")
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
            _wave_transition(tick, wave, "pass_")
    waves = deployment.waves.count()
    deployment.outcome = f"{waves} wave{'s' if waves != 1 else ''} passed"
    tick.transition("succeed", reason=deployment.outcome)
    effects.deployment_ended(deployment)


def _wave_transition(tick: Tick, wave: Wave, name: str, message: str = "") -> None:
    getattr(wave, name)()
    wave.save()
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
        if _skip(
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
        _dispatch(tick, current)
    if any(row["state"] == StepState.RUNNING and row["free"] > row["due"] for row in here):
        _wake_for_waiting(tick, current)
    return Verdict(open=True)


def _wave_failed(tick: Tick, wave: Wave, reason: str) -> None:
    wave.outcome = reason
    _wave_transition(tick, wave, "fail", reason)
    _rollout_failed(tick, reason)


def _rollout_failed(tick: Tick, reason: str) -> None:
    """Stop the rollout; roll back what was done, or pause for a decision when a unit cannot be reversed."""
    deployment = tick.deployment
    _skip(tick, deployment.steps.exclude(kind=StepKind.ROLLBACK), "the rollout failed")
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
    deployment_rollback_begin(tick, reason)


def deployment_rollback_begin(tick: Tick, reason: str, *, actor=None) -> None:
    """Move to rolling back and plan the rollback steps; the caller has checked the conditions."""
    deployment = tick.deployment
    deployment.outcome = reason
    deployment.pause_kind, deployment.pause_reason = PauseKind.NONE, ""
    for wave in deployment.waves.filter(state__in=[WaveState.RUNNING, WaveState.VERIFYING]):
        wave.outcome = reason
        _wave_transition(tick, wave, "fail", reason)
    if not DeploymentLock.objects.filter(deployment=deployment).exists():
        DeploymentLock.objects.create(
            service_id=deployment.service_id, environment_id=deployment.environment_id, deployment=deployment
        )
    tick.transition("roll_back", actor=actor, reason=reason)
    _plan_rollback(tick)
    _advance_rollback(tick)


def _plan_rollback(tick: Tick) -> None:
    """A rollback step for every deploy step that started and is not already undone (or being undone).

    They run wave by wave, the last wave first, and within a wave the last position first.
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
    variables = None
    top = deployment.steps.filter(kind=StepKind.DEPLOY).aggregate(Max("position"))["position__max"] or 0
    new_steps: list[Step] = []
    for step in started:
        executor = get_executor(step.executor)
        if type(executor).rollback is Executor.rollback:
            continue  # nothing to undo (a wait, a manual intervention, a check)
        parameters = step.parameters
        if step.template is not None and step.template.rollback_parameters:
            from deployments.planning import builtin_variables

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
    _skip(tick, deployment.steps.exclude(kind=StepKind.ROLLBACK), "the deployment is rolling back")
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
        effects.deployment_ended(deployment)
        return
    in_wave = open_steps.filter(wave__index=wave_index)
    position = in_wave.aggregate(Min("position"))["position__min"]
    # A rollback waits while the step it undoes is still running on a worker.
    current = in_wave.filter(position=position)
    _dispatch(tick, current.exclude(rolls_back__state__in=OPEN))
    _wake_for_waiting(tick, current)


# --- running steps -----------------------------------------------------------------------------------


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
            if not _may_start(step, state, pause_kind):
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
    deployment = _lock(deployment_id)
    if deployment is None:
        return None, []
    kinds = _kinds_runnable(deployment)
    if kinds is None:
        return deployment, []
    tick = Tick(deployment)
    candidates = (
        Step.objects.filter(pk__in=step_ids, deployment=deployment)
        .filter(_claimable(tick.now) & kinds)
        .select_related("target__ci")
        .order_by("position", "id")
    )
    steps = list(candidates)
    lost = [step.pk for step in steps if step.state == StepState.RUNNING and step.lease_owner not in ("", QUEUED)]
    failed = _count_lost_workers(tick, lost) if lost else set()
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
        _advance(tick)
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
    deployment = _lock(deployment_id)
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
    _advance(tick)
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


class LeaseKeeper:
    """One per worker process: a thread that renews the leases of the steps this process is running.

    Started on first use (after the fork, in the process that runs steps); it keeps one database
    connection of its own. If the process dies, nothing renews the leases and the steps are re-driven.
    """

    _instance: LeaseKeeper | None = None
    _instance_pid = 0
    _create = threading.Lock()

    @classmethod
    def of_this_process(cls) -> LeaseKeeper:
        with cls._create:
            if cls._instance is None or cls._instance_pid != os.getpid():
                cls._instance, cls._instance_pid = cls(), os.getpid()
            return cls._instance

    def __init__(self):
        self.held: dict[int, str] = {}
        self.guard = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="step-lease-keeper", daemon=True)
        self.thread.start()

    def hold(self, owner: str, step_ids: list[int]) -> None:
        with self.guard:
            self.held.update(dict.fromkeys(step_ids, owner))

    def release(self, *step_ids: int) -> None:
        with self.guard:
            for step_id in step_ids:
                self.held.pop(step_id, None)

    def _run(self) -> None:
        while True:
            time.sleep(max(lease_seconds() / 3, 0.2))
            with self.guard:
                by_owner: dict[str, list[int]] = {}
                for step_id, owner in self.held.items():
                    by_owner.setdefault(owner, []).append(step_id)
            try:
                for owner, ids in by_owner.items():
                    Step.objects.filter(pk__in=ids, lease_owner=owner, state=StepState.RUNNING).update(
                        lease_expires_at=timezone.now() + timedelta(seconds=lease_seconds())
                    )
            except Exception:
                logger.warning("could not renew step leases", exc_info=True)
                connection.close()


# --- the reconciler -------------------------------------------------------------------------------------


def deployments_reconcile() -> dict[str, int]:
    """Start scheduled deployments whose time came, and advance those with something due or lost.

    Run by Celery beat every ``RDM_RECONCILE_SECONDS``; safe to run at any time, as often as wished.
    """
    from deployments.services import deployment_start
    from deployments.tasks import deployment_advance_task
    from rdm_site.exceptions import DomainError

    now = timezone.now()
    started = 0
    for deployment in Deployment.objects.filter(state=DeploymentState.SCHEDULED, scheduled_for__lte=now):
        try:
            deployment_start(deployment=deployment, actor=None, reason="its scheduled time came")
            started += 1
        except DomainError as error:
            logger.info("scheduled deployment %s cannot start yet: %s", deployment.pk, error)
    stale = Step.objects.filter(deployment=OuterRef("pk"), state__in=OPEN).filter(
        Q(lease_expires_at__lt=now) | Q(lease_owner="", due_at__lte=now)
    )
    moving = Q(state__in=[DeploymentState.QUEUED, DeploymentState.RUNNING, DeploymentState.ROLLING_BACK])
    intervention = Q(state=DeploymentState.PAUSED, pause_kind=PauseKind.INTERVENTION)
    due = (moving | intervention) & (Q(due_at__lte=now) | Exists(stale))
    ended = Q(state__in=DEPLOYMENT_TERMINAL_STATES) & Exists(stale)
    ids = list(Deployment.objects.filter(due | ended).values_list("id", flat=True))
    for deployment_id in ids:
        deployment_advance_task.delay(deployment_id)
    return {"started": started, "advanced": len(ids)}


__all__ = ["deployment_advance", "deployments_reconcile", "steps_run"]
