"""The engine's unit of work on one locked deployment (``Tick``), and which steps may be dispatched,
claimed or skipped. See ``deployments.engine`` for how it all fits together."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Min, Q
from django.utils import timezone
from django_fsm import ConcurrentTransition

from deployments.choices import (
    DEPLOYMENT_TERMINAL_STATES,
    STEP_OPEN_STATES,
    DeploymentState,
    LogLevel,
    PauseKind,
    StepKind,
    StepState,
)
from deployments.events import EventBatch
from deployments.executors.manual_intervention import ManualInterventionExecutor
from deployments.models import Deployment, DeploymentLock, Step, StepLog
from deployments.queue import RUN_STEPS, queue_after_commit
from rdm_site.exceptions import ConcurrentModification
from rdm_site.transitions import transitions_record

logger = logging.getLogger(__name__)

QUEUED = "queued"  # lease owner of a step whose message waits in the queue
SLICE_SECONDS = 2.0  # a batch claims no more after this long, and hands back the steps it could not start
# Held by every claim while it counts the steps running on workers, so that two claims (of any deployments,
# on any workers) never both take the last free slot of RDM_STEP_CONCURRENCY.
CLAIM_LOCK = 0x52444D5F5354  # pg_advisory_xact_lock key ("RDM_ST")
LOST_WORKER_ATTEMPTS = 3  # a step may lose its worker this many times (or use its own retries) before it fails
OPEN = list(STEP_OPEN_STATES)
INTERVENTION = ManualInterventionExecutor.name


def lease_seconds() -> float:
    return settings.RDM_STEP_LEASE_SECONDS


# --- the unit of work on one locked deployment ------------------------------------------------------


def save_or_refuse(record) -> None:
    """Save a record whose state just moved; a concurrent move of the same row is refused, never undone."""
    try:
        record.save()
    except ConcurrentTransition:
        # (no query here: the failed save left the transaction unusable)
        what = f"{record._meta.verbose_name} #{record.pk}"
        raise ConcurrentModification(f"{what} was changed by someone else meanwhile; reload and try again") from None


def lock_deployment(deployment_id: int) -> Deployment | None:
    return (
        Deployment.objects.select_for_update(no_key=True, of=("self",))
        .select_related("service", "environment", "process")
        .filter(pk=deployment_id)
        .first()
    )


@dataclass
class Tick:
    """What one transaction does to a locked deployment: its events, the steps to dispatch, when to wake, and
    its transitions' audit records.

    The records are appended to the audit chain at the end (``finish``, or ``records_flush`` before what must
    follow them on the chain): the chain's lock is held from the append to the commit, so appending last keeps
    other deployments' transactions from queueing behind this one's work.
    """

    deployment: Deployment
    now: datetime = field(default_factory=timezone.now)
    events: EventBatch = field(init=False)
    dispatch: list[int] = field(default_factory=list)
    wake_at: datetime | None = None
    records: list[dict] = field(default_factory=list)

    def __post_init__(self):
        self.events = EventBatch(self.deployment)

    def transition(self, name: str, *, actor=None, reason: str = "") -> None:
        """Move the deployment (the caller has checked the conditions), save, audit and announce it."""
        deployment = self.deployment
        from_state = deployment.state
        getattr(deployment, name)()
        save_or_refuse(deployment)
        self.records.append(
            {
                "actor": actor,
                "action": f"deployment.{name}",
                "target": deployment,
                "object_repr": str(deployment),
                "from_state": from_state,
                "to_state": deployment.state,
                "reason": reason,
            }
        )
        self.events.deployment_changed(reason)
        if deployment.state in DEPLOYMENT_TERMINAL_STATES:
            DeploymentLock.objects.filter(deployment=deployment).delete()

    def records_flush(self) -> None:
        """Append the transitions' records to the audit chain now."""
        records, self.records = self.records, []
        transitions_record(records)

    def wake(self, at: datetime | None) -> None:
        if at is not None and (self.wake_at is None or at < self.wake_at):
            self.wake_at = at

    def finish(self) -> None:
        """Write the events, the next wake-up and the audit records, and queue the dispatched steps after commit."""
        deployment = self.deployment
        if deployment.state in (DeploymentState.QUEUED, DeploymentState.RUNNING, DeploymentState.ROLLING_BACK):
            # A safety net: even if every message is lost, the reconciler looks again by then.
            self.wake(self.now + timedelta(seconds=lease_seconds()))
        elif deployment.state != DeploymentState.PAUSED:
            self.wake_at = None
        deployment.due_at = self.wake_at
        self.events.flush(due_at=self.wake_at)
        for chunk in dispatch_chunks(self.dispatch):
            queue_after_commit(RUN_STEPS, deployment.pk, chunk)
        self.records_flush()


def dispatch_chunks(step_ids: list[int]) -> list[list[int]]:
    """Steps per task: at most ``RDM_STEP_BATCH_SIZE``, and spread over at least ``RDM_STEP_SPREAD`` tasks when
    there are that many steps, so that slow steps (HTTP calls) run on several worker processes at once."""
    count = len(step_ids)
    tasks = max(math.ceil(count / settings.RDM_STEP_BATCH_SIZE), min(count, settings.RDM_STEP_SPREAD))
    size = math.ceil(count / tasks) if tasks else 0
    return [step_ids[i : i + size] for i in range(0, count, size)] if size else []


# --- which steps may be dispatched, claimed, skipped -------------------------------------------------


def steps_write(steps: list[Step], fields: list[str], *, only_if: str = "", only_if_params: tuple = ()) -> set[int]:
    """``bulk_update`` in one ``UPDATE ... FROM UNNEST(<one array per column>)``: Django's CASE WHEN form costs
    milliseconds of Python per row, which the engine cannot afford on every batch, and a statement of fixed text
    (one parameter per column, whatever the number of rows) is parsed once per connection by psycopg, not on
    every call. The caller holds the deployment's lock, or gives ``only_if``: a condition on the row as stored
    (``s``), which rows that no longer meet it are left alone by; the ids of the rows written are returned then."""
    if not steps:
        return set()
    model_fields = [Step._meta.get_field(name) for name in fields]
    columns = ["id", *(field.column for field in model_fields)]
    casts = ["bigint", *(field.db_type(connection) for field in model_fields)]
    arrays = [[step.pk for step in steps]]
    arrays += [
        [column.get_db_prep_save(getattr(step, column.attname), connection) for step in steps]
        for column in model_fields
    ]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(column)} = v.{quote(column)}" for column in columns[1:])
    sql = (
        f"UPDATE {quote(Step._meta.db_table)} AS s SET {assignments} "
        f"FROM UNNEST({', '.join(f'%s::{cast}[]' for cast in casts)}) "
        f"AS v({', '.join(quote(column) for column in columns)}) WHERE s.id = v.id"
    )
    if only_if:
        sql += f" AND ({only_if}) RETURNING s.id"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*arrays, *only_if_params])
        return {row[0] for row in cursor.fetchall()} if only_if else set()


def dispatchable(now: datetime) -> Q:
    """Open, not in the queue or with a worker (or their lease ran out), and due."""
    free = Q(lease_owner="") | Q(lease_expires_at__lt=now)
    due = Q(state=StepState.PENDING) | Q(due_at__isnull=True) | Q(due_at__lte=now)
    return Q(state__in=OPEN) & free & due


def claimable(now: datetime) -> Q:
    free = Q(lease_owner="") | Q(lease_owner=QUEUED) | Q(lease_expires_at__lt=now)
    due = Q(state=StepState.PENDING) | Q(due_at__isnull=True) | Q(due_at__lte=now)
    return Q(state__in=OPEN) & free & due


def not_with_a_worker(now: datetime) -> Q:
    """Open steps no worker is running: pending ones (a worker may hold some in reserve, but starts one only if it is
    still pending, ``runner.steps_start_held``), and those whose lease is free or ran out."""
    free = Q(lease_owner="") | Q(lease_owner=QUEUED) | Q(lease_expires_at__lt=now)
    return Q(state=StepState.PENDING) | (Q(state__in=OPEN) & free)


def kinds_runnable(deployment: Deployment) -> Q | None:
    """Which steps may start while the deployment is in its current state (None: none)."""
    if deployment.state == DeploymentState.RUNNING:
        return Q(kind__in=[StepKind.DEPLOY, StepKind.GATE])
    if deployment.state == DeploymentState.ROLLING_BACK:
        return Q(kind=StepKind.ROLLBACK)
    if deployment.state == DeploymentState.PAUSED and deployment.pause_kind == PauseKind.INTERVENTION:
        return Q(kind__in=[StepKind.DEPLOY, StepKind.GATE], executor=INTERVENTION)
    return None


def free_slots(deployment_id: int | None, now: datetime, *, finished: tuple[int, int] = (0, 0)) -> int:
    """How many more steps may start now: under ``RDM_STEP_CONCURRENCY`` across every deployment and worker,
    and (of a given deployment) under ``RDM_DEPLOYMENT_STEP_CONCURRENCY``. A step counts from its claim until
    its outcome is recorded (or its worker is lost), except the caller's own ``finished`` steps (everywhere,
    of the deployment) whose call returned. Exact while the caller holds ``claim_lock``."""
    on_workers = Step.objects.filter(state=StepState.RUNNING, lease_expires_at__gt=now).exclude(
        lease_owner__in=["", QUEUED]
    )
    counts = on_workers.aggregate(everywhere=Count("id"), here=Count("id", filter=Q(deployment_id=deployment_id)))
    free = settings.RDM_STEP_CONCURRENCY - counts["everywhere"] + finished[0]
    if deployment_id is not None:
        free = min(free, settings.RDM_DEPLOYMENT_STEP_CONCURRENCY - counts["here"] + finished[1])
    return max(free, 0)


def claim_lock() -> None:
    """Taken by every claim before it counts the free slots, held until it commits."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CLAIM_LOCK])


def dispatch(tick: Tick, steps) -> int:
    """Queue the given steps that are free and due; they hold a "queued" lease until a worker claims them."""
    ready = list(steps.filter(dispatchable(tick.now)).order_by("position", "id").values_list("id", "lease_owner"))
    lost = [step_id for step_id, owner in ready if owner not in ("", QUEUED)]
    failed = count_lost_workers(tick, lost) if lost else set()
    ids = [step_id for step_id, _ in ready if step_id not in failed]
    if ids:
        Step.objects.filter(pk__in=ids).update(
            lease_owner=QUEUED, lease_expires_at=tick.now + timedelta(seconds=lease_seconds())
        )
        tick.dispatch.extend(ids)
    return len(ids)


def count_lost_workers(tick: Tick, step_ids: list[int]) -> set[int]:
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


def wake_for_waiting(tick: Tick, steps) -> None:
    """Wake up when the first of the given waiting steps comes due."""
    waiting = steps.filter(state=StepState.RUNNING, lease_owner="", due_at__gt=tick.now).aggregate(Min("due_at"))
    tick.wake(waiting["due_at__min"])


def skip_open(tick: Tick, steps, reason: str) -> int:
    """Skip the open steps that no worker is running (a worker records its own step's outcome). A step that a
    worker started from its reserve meanwhile is left to it (the write checks each row again)."""
    skipped = list(steps.filter(not_with_a_worker(tick.now)))
    for step in skipped:
        step.skip()
        step.message = reason
        step.lease_owner, step.lease_expires_at = "", None
    written = steps_write(
        skipped,
        ["state", "finished_at", "message", "lease_owner", "lease_expires_at"],
        only_if="s.state = %s OR s.lease_owner IN ('', %s) OR s.lease_expires_at < %s",
        only_if_params=(StepState.PENDING, QUEUED, tick.now),
    )
    for step in skipped:
        if step.pk in written:
            tick.events.step_changed(step, reason)
    return len(written)
