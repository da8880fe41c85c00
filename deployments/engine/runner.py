"""Running steps: claim them within the concurrency limits, call the executors in this process's step threads,
record the outcomes as they come, renew the leases."""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
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
    INTERVENTION,
    OPEN,
    QUEUED,
    SLICE_SECONDS,
    Tick,
    claim_lock,
    claimable,
    count_lost_workers,
    free_slots,
    kinds_runnable,
    lease_seconds,
    lock_deployment,
    steps_write,
)
from deployments.engine.leases import LeaseKeeper
from deployments.executors.base import ExecutorError, OutcomeStatus, StepContext, StepOutcome
from deployments.executors.registry import get_executor
from deployments.models import Deployment, Step, StepLog
from deployments.planning import VariableSet, variables_resolve
from deployments.variables import UnknownVariablesError, mask, substitute

logger = logging.getLogger(__name__)

COALESCE_SECONDS = 0.01  # outcomes that arrive this close together are taken together
RECORD_SECONDS = 0.1  # an outcome is recorded at most this long after it came (claims for new steps go first)
GIVE_WAY_SECONDS = 0.005  # before recording, the runner waits this long for more calls to return, leaving the
# interpreter to the step threads that are starting their calls (a record is mostly Python, and holds it)
POLL_SECONDS = 0.05  # a batch whose steps wait for a free slot (or whose steps all run) looks again this often
STEAL_AFTER_SECONDS = 0.05  # a step dispatched this long ago that no worker took yet may be run by any batch
RESERVING_STATES = (DeploymentState.RUNNING, DeploymentState.ROLLING_BACK)  # steps are held in reserve only then


@dataclass
class Result:
    step_id: int
    outcome: StepOutcome
    logs: list[tuple[datetime, str, str]]
    at: datetime


@dataclass
class _Run:
    """A deployment whose steps the batch runs: what its executors need, the outcomes not yet recorded, and its
    reserve: steps held for the slots of the calls under way (``steps_start_held``)."""

    deployment: Deployment
    variables: VariableSet
    results: list[Result] = field(default_factory=list)
    reserve: list[Step] = field(default_factory=list)
    reserved_in: str = ""  # the deployment's state when the reserve was taken: a step of it starts only in that state
    started: list[Step] = field(default_factory=list)  # started from the reserve, their "running" event not written
    release: list[int] = field(default_factory=list)  # held in reserve, to hand back when next recorded

    @property
    def secrets(self) -> list[str]:
        return self.variables.secret_values


def steps_run(*, deployment_id: int, step_ids: list[int], owner: str) -> int:
    """Run the given steps many at a time, and with threads to spare, steps dispatched to other tasks that no
    worker took yet (of any deployment); returns how many ran.

    A step starts as soon as it is claimed, in one of this process's step threads (``step_threads``), within
    the limits ``free_slots`` counts. When its call returns, its slot goes to the next step at once, and its
    outcome is recorded (the deployment advanced) within ``RECORD_SECONDS``, with those that came with it.
    Database work stays on this thread. Short by construction: it claims nothing after ``SLICE_SECONDS``,
    hands back the steps it could not start, and a step that must wait returns at once with a due time.
    """
    batch = _Batch(owner, deployment_id, step_ids)
    try:
        batch.run()
    except SoftTimeLimitExceeded:
        logger.warning("steps of deployment %s ran out of time; handing the rest back", deployment_id)
    finally:
        batch.finish()
    return batch.ran


_threads: dict[tuple[int, int], ThreadPoolExecutor] = {}
_threads_create = threading.Lock()


def step_threads() -> ThreadPoolExecutor:
    """This process's threads for executor calls: as many as steps may run at once anywhere (created on first
    use, after the fork, and only as needed)."""
    key = (os.getpid(), settings.RDM_STEP_CONCURRENCY)
    with _threads_create:
        if key not in _threads:
            _threads[key] = ThreadPoolExecutor(max_workers=key[1], thread_name_prefix="rdm-step")
        return _threads[key]


class _Batch:
    """One task's steps, then (with threads to spare) steps dispatched to other tasks, run until the slice ends.

    Each turn claims first, then records: a step whose call returned frees its slot for this batch at once
    (``_finished``), so the next steps start while the outcomes are being written. Better still, each claim and
    record also takes a reserve: as many of the deployment's next steps as it has calls under way, held (pending,
    with this batch's lease) so that a returning call's slot goes to one of them at once, by one guarded statement
    instead of a claim (``_hand_over``); the record that follows writes their "running" events and refills the
    reserve.
    """

    def __init__(self, owner: str, deployment_id: int, step_ids: list[int]):
        self.owner = owner
        self.home = deployment_id
        self.waiting = list(step_ids)  # the task's own steps that may start once a slot is free
        self.unclaimed = set(step_ids)  # the task's own steps it has not claimed (handed back at the end)
        self.running: dict[Future, int] = {}  # executor call -> its deployment
        self.runs: dict[int, _Run] = {}
        self.unrecorded_since: float | None = None  # when the oldest outcome not recorded yet came
        self.deadline = time.monotonic() + SLICE_SECONDS  # no step starts after this
        self.keeper = LeaseKeeper.of_this_process()
        self.threads = step_threads()
        self.ran = 0

    def run(self) -> None:
        while True:
            claiming = time.monotonic() < self.deadline
            if claiming:
                self._claim_more()
                if self.running and not self._record_due() and self._collect(timeout=GIVE_WAY_SECONDS):
                    continue  # more calls returned meanwhile: refill their slots before recording
            self._record(claiming=claiming)
            if self.running:
                self._collect(timeout=POLL_SECONDS)
            elif claiming and self.waiting:
                time.sleep(POLL_SECONDS)  # every slot is taken elsewhere: wait for one
            else:
                return

    def finish(self) -> None:
        """Wait for the calls under way, record every outcome, and hand back the own steps never claimed (no
        slot came free in time, or the deployment paused): those still queued are dispatched again. Nothing
        starts any more, and the reserve is handed back."""
        self.deadline = 0.0
        while self.running:
            self._collect(timeout=None)
        self._record(claiming=False)
        queued = Step.objects.filter(pk__in=self.unclaimed, state__in=OPEN, lease_owner=QUEUED)
        if self.unclaimed and queued.exists():
            _record(self.home, self.owner, [], [], handback=sorted(self.unclaimed))

    def _room(self) -> int:
        return max(settings.RDM_STEP_CONCURRENCY - len(self.running), 0)

    def _record_due(self) -> bool:
        return self.unrecorded_since is not None and time.monotonic() - self.unrecorded_since >= RECORD_SECONDS

    def _finished(self, deployment_id: int | None = None) -> tuple[int, int]:
        """This batch's steps whose call returned and whose outcome is not recorded yet, everywhere and of the
        deployment: they still count as running in the database, but call nothing any more."""
        here = len(self.runs[deployment_id].results) if deployment_id in self.runs else 0
        return sum(len(run.results) for run in self.runs.values()), here

    def _claim_more(self) -> None:
        """Claim what the free slots allow: the own steps first, then steps no worker took yet."""
        room = self._room()
        if room and self.waiting:
            deployment, claimed, reserved, self.waiting = _claim(
                self.home,
                self.waiting,
                self.owner,
                room,
                finished=self._finished(self.home),
                reserve=self._reserve_room(self.home),
            )
            room -= self._start(deployment, claimed, reserved)
        if room and not self.waiting and (self._finished()[0] or free_slots(None, timezone.now())):
            for deployment_id, ids in _dispatched_elsewhere(room):
                deployment, claimed, reserved, _ = _claim(
                    deployment_id,
                    ids,
                    self.owner,
                    room,
                    finished=self._finished(deployment_id),
                    reserve=self._reserve_room(deployment_id),
                )
                room -= self._start(deployment, claimed, reserved)
                if not room:
                    break

    def _reserve_room(self, deployment_id: int) -> int:
        """How many more of the deployment's steps to hold in reserve, besides one per step claimed with them:
        one per call of it under way, less those held already."""
        run = self.runs.get(deployment_id)
        if run is None:
            return 0
        under_way = sum(1 for running_in in self.running.values() if running_in == deployment_id)
        return max(under_way - len(run.reserve), 0)

    def _start(self, deployment: Deployment | None, claimed: list[Step], reserved: list[Step] = ()) -> int:
        """Start the steps just claimed, each in a step thread, and keep those reserved; their leases are renewed
        meanwhile."""
        if not claimed and not reserved:
            return 0
        run = self.runs.get(deployment.pk)
        if run is None:
            variables = variables_resolve(deployment.service_id, deployment.environment_id)
            run = self.runs[deployment.pk] = _Run(deployment, variables)
        self.keeper.hold(self.owner, [step.pk for step in [*claimed, *reserved]])
        self.unclaimed.difference_update(step.pk for step in [*claimed, *reserved])
        if reserved:
            run.reserve += reserved
            run.reserved_in = deployment.state
        self._submit(run, claimed)
        return len(claimed)

    def _submit(self, run: _Run, steps: list[Step]) -> None:
        for step in steps:
            future = self.threads.submit(_execute, step, run.deployment, run.variables, run.secrets)
            self.running[future] = run.deployment.pk

    def _collect(self, timeout: float | None) -> int:
        """Take the outcomes that came within ``timeout``, their slots going to steps held in reserve; if some
        slot found none, also those that follow within ``COALESCE_SECONDS`` (one claim then serves the calls
        returning together). Returns how many."""
        done = wait(self.running, timeout=timeout, return_when=FIRST_COMPLETED).done
        count, unfilled = self._take_results(done)
        if unfilled and self.running:  # slots to claim steps for: one claim for the calls returning together
            more, _ = self._take_results(wait(self.running, timeout=COALESCE_SECONDS).done)
            count += more
        return count

    def _take_results(self, done: set[Future]) -> tuple[int, int]:
        """Keep the outcomes of the calls that returned, and give their slots to steps held in reserve; returns
        how many returned, and how many of their slots no reserved step took."""
        if done and self.unrecorded_since is None:
            self.unrecorded_since = time.monotonic()
        freed: dict[int, int] = {}
        for future in done:
            result = future.result()
            self.keeper.release(result.step_id)
            deployment_id = self.running.pop(future)
            self.runs[deployment_id].results.append(result)
            freed[deployment_id] = freed.get(deployment_id, 0) + 1
            self.ran += 1
        filled = 0
        if time.monotonic() < self.deadline:
            for deployment_id, slots in freed.items():
                filled += self._hand_over(self.runs[deployment_id], slots)
        return len(done), len(done) - filled

    def _hand_over(self, run: _Run, slots: int) -> int:
        """Start steps held in reserve in the slots of the deployment's calls that returned: a slot passes from a
        call to the next without a claim, since the returned call still counts as running until recorded. Those
        that could not start (the deployment moved on, or a step was skipped) and the rest of the reserve are
        handed back when the deployment is next recorded."""
        steps, run.reserve = run.reserve[:slots], run.reserve[slots:]
        if not steps:
            return 0
        started = steps_start_held(steps, self.owner, run.reserved_in)
        if len(started) < len(steps):
            run.reserve = [step for step in steps if step not in started] + run.reserve
            self._hand_back(run)
        run.started += started
        self._submit(run, started)
        return len(started)

    def _hand_back(self, run: _Run) -> None:
        """Give up the reserve: its leases are no longer renewed, and are cleared when the deployment is next
        recorded (its steps are then dispatched again, if they still may run)."""
        released = [step.pk for step in run.reserve]
        self.keeper.release(*released)
        run.release += released
        run.reserve = []

    def _record(self, *, claiming: bool) -> None:
        """Record the outcomes that came, each deployment's in one transaction, which (while ``claiming``) also
        claims the steps the deployment moved on to (its next position or wave) as far as slots allow, and
        refills its reserve; otherwise the reserve is handed back."""
        self.unrecorded_since = None
        for deployment_id, run in self.runs.items():
            if not claiming:
                self._hand_back(run)
            if not (run.results or run.started or run.release):
                continue
            results, run.results = run.results, []
            started, run.started = run.started, []
            release, run.release = run.release, []
            deployment, claimed, reserved = _record(
                deployment_id,
                self.owner,
                results,
                run.secrets,
                started=started,
                release=release,
                room=self._room() if claiming else 0,
                reserve=self._reserve_room(deployment_id) if claiming else 0,
                finished=(self._finished()[0], 0),
            )
            self._start(deployment, claimed, reserved)


def _dispatched_elsewhere(room: int) -> list[tuple[int, list[int]]]:
    """Steps dispatched a while ago that no worker took yet (their workers are busy), oldest first, by
    deployment: up to ``room`` of them."""
    rows = (
        Step.objects.filter(state__in=OPEN)
        .filter(_untaken(timezone.now()))
        .order_by("lease_expires_at", "id")
        .values_list("deployment_id", "id")[:room]
    )
    by_deployment: dict[int, list[int]] = {}
    for deployment_id, step_id in rows:
        by_deployment.setdefault(deployment_id, []).append(step_id)
    return list(by_deployment.items())


def _in_the_queue(now: datetime) -> Q:
    """Dispatched, and no worker took it yet: the queue's lease is live."""
    return Q(lease_owner=QUEUED, lease_expires_at__gt=now)


def _untaken(now: datetime) -> Q:
    """Dispatched at least ``STEAL_AFTER_SECONDS`` ago, and no worker took it yet."""
    dispatched_before = now + timedelta(seconds=lease_seconds() - STEAL_AFTER_SECONDS)
    return _in_the_queue(now) & Q(lease_expires_at__lt=dispatched_before)


@transaction.atomic
def _claim(
    deployment_id: int,
    step_ids: list[int],
    owner: str,
    room: int | None = None,
    *,
    finished: tuple[int, int] = (0, 0),
    reserve: int | None = None,
) -> tuple[Deployment | None, list[Step], list[Step], list[int]]:
    """Claim as many of the steps as may start now (at most ``room``, when given): the deployment, the steps
    claimed, those held in reserve (``reserve``: see ``_take``), and the ids of those that could start once a
    slot is free (the others are done, held by another worker, or may not start in the deployment's state).
    ``finished``: see ``free_slots``."""
    ready = list(step_ids)
    if not finished[1]:  # a glance first, without locks, for the common cases: no slot, or nothing to claim
        now = timezone.now()
        if not free_slots(deployment_id, now, finished=finished):
            return None, [], [], ready
        ready = list(
            Step.objects.filter(pk__in=step_ids).filter(claimable(now)).order_by().values_list("id", flat=True)
        )
        if not ready:
            return None, [], [], []
    deployment = lock_deployment(deployment_id)
    if deployment is None:
        return None, [], [], []
    tick = Tick(deployment)
    claimed, reserved, left = _take(tick, ready, owner, len(ready) if room is None else room, finished, reserve)
    tick.finish()
    return deployment, claimed, reserved, left


def _take(
    tick: Tick, step_ids: list[int], owner: str, room: int, finished: tuple[int, int], reserve: int | None = None
) -> tuple[list[Step], list[Step], list[int]]:
    """Claim, on the locked deployment, as many of the steps as may start now (at most ``room``): the steps
    claimed, the steps held in reserve, and the ids of those that could start once a slot is free.

    With ``reserve`` given, up to that many more pending steps than are claimed are held in reserve: leased to
    ``owner`` but not started (no transition, no event), so that no other worker takes them; the batch starts
    one when a call of this deployment returns (``steps_start_held``). Locks are taken in one order: the
    deployment row, the audit chain (a transition), then ``CLAIM_LOCK``.
    """
    candidates = _candidates(tick, step_ids)
    lost = {
        step_id
        for step_id, state, lease_owner in candidates
        if state == StepState.RUNNING and lease_owner not in ("", QUEUED)
    }
    if lost and count_lost_workers(tick, list(lost)):
        advance(tick)  # some failed for good: the rollout may have moved on
        candidates, lost = _candidates(tick, step_ids), set()
    if not candidates:
        return [], [], []
    claim_lock()
    free = min(room, free_slots(tick.deployment.pk, tick.now, finished=finished))
    held = []
    if reserve is not None and tick.deployment.state in RESERVING_STATES:
        pending = [step_id for step_id, state, _ in candidates[free:] if state == StepState.PENDING]
        held = pending[: reserve + min(free, len(candidates))]
    held_ids = set(held)
    left = [step_id for step_id, _, _ in candidates[free:] if step_id not in held_ids]
    if not free and not held:
        return [], [], left
    # only the steps taken are loaded whole (a wave that just started may offer hundreds)
    taken = {step_id for step_id, _, _ in candidates[:free]}
    steps = list(Step.objects.filter(pk__in=[*taken, *held]).select_related("target__ci").order_by("position", "id"))
    expires = tick.now + timedelta(seconds=lease_seconds())
    claimed, reserved = [], []
    for step in steps:
        if step.pk in taken:
            if step.pk in lost:
                step.attempt += 1  # (as count_lost_workers wrote it)
            if step.state == StepState.PENDING:
                step.start()
                tick.events.step_changed(step)
            claimed.append(step)
        else:
            reserved.append(step)
        step.lease_owner, step.lease_expires_at = owner, expires
    steps_write(steps, ["state", "started_at", "attempt", "lease_owner", "lease_expires_at"])
    return claimed, reserved, left


def steps_start_held(steps: list[Step], owner: str, deployment_state: str) -> list[Step]:
    """Start steps held in reserve, outside the deployment's lock: each moves by its transition, and is written
    only if it is still pending, still held by ``owner``, and its deployment still in ``deployment_state``: an
    abort, a rollback or a failure skips the reserve (``skip_open``), a pause changes the state, so no step
    starts after them. Returns those started (their events are written by the next record)."""
    for step in steps:
        step.start()
    quote = connection.ops.quote_name
    started = steps_write(
        steps,
        ["state", "started_at", "attempt"],
        only_if=f"s.state = %s AND s.lease_owner = %s AND EXISTS (SELECT 1 FROM {quote(Deployment._meta.db_table)} d "
        "WHERE d.id = s.deployment_id AND d.state = %s)",
        only_if_params=(StepState.PENDING, owner, deployment_state),
    )
    return [step for step in steps if step.pk in started]


def _candidates(tick: Tick, step_ids: list[int]) -> list[tuple[int, str, str]]:
    """The given steps of the locked deployment that may be claimed in its state, in the order they run: their
    ids, states and lease owners."""
    kinds = kinds_runnable(tick.deployment)
    if kinds is None or not step_ids:
        return []
    return list(
        Step.objects.filter(pk__in=step_ids, deployment=tick.deployment)
        .filter(claimable(tick.now) & kinds)
        .order_by("position", "id")
        .values_list("id", "state", "lease_owner")
    )


def _execute(step: Step, deployment: Deployment, variables: VariableSet, secrets: list[str]) -> Result:
    """Call the executor once; whatever it does, the outcome is an outcome (never an exception).

    Runs in a step thread: it reads only the rows its caller loaded (the runner's thread records the result).
    """
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
    deployment_id: int,
    owner: str,
    results: list[Result],
    secrets: list[str],
    *,
    started: list[Step] = (),
    release: list[int] = (),
    room: int = 0,
    reserve: int = 0,
    finished: tuple[int, int] = (0, 0),
    handback: list[int] = (),
) -> tuple[Deployment, list[Step], list[Step]]:
    """Write the outcomes of a batch's steps and advance; then claim (up to ``room``) the steps the deployment
    just moved on to, which are then not sent to other tasks, and hold (up to ``reserve`` more) in reserve;
    returns the deployment as it is now, and both. ``started``: steps the batch started from its reserve, whose
    "running" events are written here; ``release``: steps it held in reserve and hands back. The steps of
    ``handback`` (dispatched to this batch, never claimed) that still wait for a worker are dispatched again."""
    deployment = lock_deployment(deployment_id)
    tick = Tick(deployment)
    for step in started:
        tick.events.step_changed(step)
    wanted = [result.step_id for result in results] + list(handback) + list(release)
    steps = {step.pk: step for step in Step.objects.filter(pk__in=wanted).order_by()}
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
    # handed back, each if still leased as the batch left it: dispatched to it and never claimed (the queue's
    # lease), or held in reserve and never started (its own)
    handed_back = {**dict.fromkeys(handback, QUEUED), **dict.fromkeys(release, owner)}
    for step_id, leased_to in handed_back.items():
        step = steps.get(step_id)
        if step is not None and step.state in OPEN and step.lease_owner == leased_to:
            step.lease_owner, step.lease_expires_at = "", None
            changed.append(step)
    steps_write(changed, STEP_FIELDS)
    StepLog.objects.bulk_create(logs)
    advance(tick)
    claimed, reserved = [], []
    if room or reserve:
        # the steps it just moved on to, else those of its current position still waiting for a worker
        offered = tick.dispatch or _waiting_for_a_worker(tick, room + reserve)
        claimed, reserved, _ = _take(tick, offered, owner, room, finished, reserve)
    taken = {step.pk for step in [*claimed, *reserved]}
    tick.dispatch = [step_id for step_id in tick.dispatch if step_id not in taken]
    tick.finish()
    return deployment, claimed, reserved


def _waiting_for_a_worker(tick: Tick, limit: int) -> list[int]:
    """The deployment's dispatched steps that no worker took yet, in the order they run: up to ``limit``."""
    return list(
        tick.deployment.steps.filter(_in_the_queue(tick.now), state=StepState.PENDING)
        .order_by("position", "id")
        .values_list("id", flat=True)[:limit]
    )


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
