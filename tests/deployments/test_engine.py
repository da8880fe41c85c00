"""The engine, run in this process (``drive``): waves, gates, failures, rollback, retries, interventions,
abort, lost workers and secrets. Real-worker rollouts are in test_rollouts.py."""

import itertools
import threading
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import F
from django.utils import timezone

from deployments import engine, reconciler, services
from deployments.choices import DeploymentState, StepKind, StepState, WaveState
from deployments.engine import leases, runner
from deployments.executors.base import Executor, StepOutcome
from deployments.executors.registry import registry
from deployments.models import DeploymentEvent, DeploymentLock, Step, StepLog
from rdm_site.exceptions import IllegalTransition, UnmetConditions
from rdm_site.models import AuditEvent
from tests.deployments.conftest import drive, make_landscape

SIMULATE = {"name": "deploy", "executor": "simulator"}


def plan(land, actor, **fields):
    return services.deployment_create(actor=actor, process=land.process, environment=land.environment, **fields)


def started(land, actor, **fields):
    deployment = plan(land, actor, **fields)
    services.deployment_start(deployment=deployment, actor=actor)
    return deployment


def test_a_big_bang_rollout_runs_every_target_and_ends_succeeded(landscape, manager):
    # given three targets and a one-step process
    land = landscape(targets=3)

    # when a big bang deployment is started and driven to the end
    deployment = drive(started(land, manager, version="2.0.0"))

    # then every step succeeded, the lock is released, and every change was numbered without a gap
    assert deployment.state == DeploymentState.SUCCEEDED
    assert set(deployment.steps.values_list("state", flat=True)) == {StepState.SUCCEEDED}
    assert not DeploymentLock.objects.exists()
    seqs = list(DeploymentEvent.objects.filter(deployment=deployment).values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert deployment.last_event_seq == len(seqs)
    transitions = list(
        AuditEvent.objects.filter(object_id=str(deployment.pk), action__startswith="deployment.").values_list(
            "action", "to_state"
        )
    )
    assert transitions == [
        ("deployment.create", "planned"),
        ("deployment.start", "queued"),
        ("deployment.run", "running"),
        ("deployment.succeed", "succeeded"),
    ]


def test_a_phased_rollout_runs_wave_after_wave(landscape, manager):
    land = landscape(targets=10)
    deployment = drive(started(land, manager, model="phased", phase_plan={"canary": 1, "percentages": [50, 100]}))

    assert deployment.state == DeploymentState.SUCCEEDED
    waves = list(deployment.waves.order_by("index"))
    assert [(wave.target_count, wave.state) for wave in waves] == [(1, "passed"), (4, "passed"), (5, "passed")]
    for before, after in itertools.pairwise(waves):
        last_of_before = max(before.steps.values_list("finished_at", flat=True))
        first_of_after = min(after.steps.values_list("started_at", flat=True))
        assert last_of_before <= first_of_after, "a wave starts only after the one before passed"


def test_too_many_failures_in_a_wave_roll_back_the_waves_done_last_first(landscape, manager):
    # given 6 targets in waves of 1, 2 and 3, and a step that fails on the second wave's first target
    land = landscape(targets=6)
    failing = land.targets[1].ci.name
    land.process.step_templates.update(parameters={"fail_on_target": failing})

    # when the phased rollout runs
    deployment = drive(started(land, manager, model="phased", phase_plan={"canary": 1, "percentages": [50, 100]}))

    # then wave 2 failed, wave 3 never ran, and waves 2 then 1 were rolled back
    assert deployment.state == DeploymentState.ROLLED_BACK
    assert failing in deployment.outcome
    assert list(deployment.waves.order_by("index").values_list("state", flat=True)) == ["passed", "failed", "pending"]
    assert set(deployment.steps.filter(wave__index=2).values_list("state", flat=True)) == {StepState.SKIPPED}
    rollbacks = list(deployment.steps.filter(kind=StepKind.ROLLBACK).order_by("finished_at", "id"))
    assert [step.wave.index for step in rollbacks] == [1, 1, 0]
    assert all(step.state == StepState.SUCCEEDED for step in rollbacks)
    assert {step.rolls_back.target_id for step in rollbacks} == {t.pk for t in land.targets[:3]}
    assert not DeploymentLock.objects.exists()


def test_failures_within_the_threshold_skip_the_target_and_carry_on(landscape, manager):
    # given a second step after the deploy step, a threshold of half the targets, and one failing target
    land = landscape(targets=4, steps=[SIMULATE, {"name": "verify", "executor": "simulator"}])
    failing = land.targets[2].ci.name
    land.process.step_templates.filter(name="deploy").update(parameters={"fail_on_target": failing})

    deployment = drive(started(land, manager, rollback_threshold=0.5))

    # then the failed target's next step is skipped, and the rollout still succeeds
    assert deployment.state == DeploymentState.SUCCEEDED
    on_failed = dict(deployment.steps.filter(target__ci__name=failing).values_list("name", "state"))
    assert on_failed == {"deploy": StepState.FAILED, "verify": StepState.SKIPPED}


class Exploding(Executor):
    name = "test_exploding"
    display_name = "Explodes"

    def run(self, context):
        raise RuntimeError("boom")


class Forgetful(Executor):
    name = "test_forgetful"
    display_name = "Returns nothing"

    def run(self, context):
        return None


@pytest.fixture
def broken_executors():
    for executor in (Exploding, Forgetful):
        registry._classes[executor.name] = executor
    yield
    for executor in (Exploding, Forgetful):
        registry._classes.pop(executor.name)


@pytest.mark.parametrize(
    ("executor", "message"),
    [("test_exploding", "the executor raised RuntimeError: boom"), ("test_forgetful", "not a StepOutcome")],
)
def test_an_executor_that_breaks_fails_its_step_not_the_engine(landscape, manager, broken_executors, executor, message):
    land = landscape(targets=1, steps=[{"name": "broken", "executor": executor}])
    deployment = drive(started(land, manager))
    step = deployment.steps.get(kind=StepKind.DEPLOY)
    assert step.state == StepState.FAILED
    assert message in step.message
    assert deployment.state == DeploymentState.ROLLED_BACK


def make_due(deployment):
    """Let time pass: every wait of the deployment's steps is over."""
    Step.objects.filter(deployment=deployment, state=StepState.RUNNING).update(due_at=timezone.now())


def test_a_transient_failure_is_retried_with_the_same_key_and_counts_its_attempts(
    landscape, manager, target_server, local_outbound
):
    # given a target that fails the first call with a 503
    land = landscape(
        targets=1,
        steps=[{"name": "call", "executor": "http_call", "parameters": {"url": target_server.url("/effects/a")}}],
    )
    target_server.fail_next(1, status=503)

    # when the rollout runs, the failure is a retry due later
    deployment = drive(started(land, manager))
    step = deployment.steps.get()
    assert (step.state, step.attempt, deployment.state) == (StepState.RUNNING, 2, DeploymentState.RUNNING)
    assert step.due_at > timezone.now() + timedelta(seconds=3), "backoff, not at once"

    # and once that time came, it runs again and the effect happens once
    make_due(deployment)
    deployment = drive(deployment)
    assert deployment.state == DeploymentState.SUCCEEDED
    assert target_server.effect_count("/effects/a") == 1
    keys = {request.headers["Idempotency-Key"] for request in target_server.requests_to("/effects/a")}
    assert keys == {step.idempotency_key}


def test_retries_are_bounded(landscape, manager, target_server, local_outbound):
    land = landscape(
        targets=1,
        steps=[
            {
                "name": "call",
                "executor": "http_call",
                "retries": 1,
                "parameters": {"url": target_server.url("/effects/x")},
            }
        ],
    )
    target_server.fail_next(5, status=503)
    deployment = drive(started(land, manager))
    make_due(deployment)
    deployment = drive(deployment)
    step = deployment.steps.get(kind=StepKind.DEPLOY)
    assert (step.state, step.attempt) == (StepState.FAILED, 2)
    assert len(target_server.requests_to("/effects/x")) == 2


INTERVENTION = {
    "name": "confirm",
    "executor": "manual_intervention",
    "run_once": True,
    "parameters": {"instructions": "Check the canary dashboard", "deadline_minutes": 30},
}


def test_a_manual_intervention_pauses_the_rollout_until_answered(landscape, manager):
    # given a process that asks for confirmation after deploying
    land = landscape(targets=2, steps=[SIMULATE, INTERVENTION])

    # when it runs, it pauses at the intervention with its instructions
    deployment = drive(started(land, manager))
    assert deployment.state == DeploymentState.PAUSED
    assert deployment.pause_kind == "intervention"
    assert "Check the canary dashboard" in deployment.pause_reason
    step = deployment.steps.get(executor="manual_intervention")
    assert step.deadline == step.started_at + timedelta(minutes=30)

    # and a Deployment Manager's answer resumes it to the end
    services.step_answer(step=step, actor=manager, answer="proceed")
    deployment = drive(deployment)
    assert deployment.state == DeploymentState.SUCCEEDED
    step.refresh_from_db()
    assert (step.manual_answer, step.answered_by) == ("proceed", manager)


def test_an_intervention_answered_abort_fails_its_step_and_rolls_back(landscape, manager):
    land = landscape(targets=1, steps=[SIMULATE, INTERVENTION])
    deployment = drive(started(land, manager))
    services.step_answer(step=deployment.steps.get(executor="manual_intervention"), actor=manager, answer="abort")
    deployment = drive(deployment)
    assert deployment.state == DeploymentState.ROLLED_BACK
    assert deployment.steps.get(executor="manual_intervention").message == "answered: abort"


def test_an_intervention_past_its_deadline_fails_and_cannot_be_answered(landscape, manager):
    # given a rollout waiting at an intervention
    land = landscape(targets=1, steps=[SIMULATE, INTERVENTION])
    deployment = drive(started(land, manager))
    step = deployment.steps.get(executor="manual_intervention")

    # when its deadline has passed (it started 31 minutes ago)
    past = timezone.now() - timedelta(minutes=31)
    Step.objects.filter(pk=step.pk).update(started_at=past, deadline=past + timedelta(minutes=30))

    # then an answer is refused
    with pytest.raises(UnmetConditions, match="its deadline passed"):
        services.step_answer(step=step, actor=manager, answer="proceed")

    # and when the reconciler calls it again, the step fails and the rollout rolls back
    make_due(deployment)
    deployment = drive(deployment)
    step.refresh_from_db()
    assert step.state == StepState.FAILED
    assert "deadline passed" in step.message
    assert deployment.state == DeploymentState.ROLLED_BACK


class Gate:
    """Holds the gated steps from the ``hold_from``-th call on until opened; counts how many were under way at
    once. The calls before ``hold_from`` take ``seconds``."""

    def __init__(self, *, hold_from: int = 10**6, seconds: float = 0.0):
        self.hold_from, self.seconds = hold_from, seconds
        self.calls = self.under_way = self.most = 0
        self.lock = threading.Lock()
        self.held = threading.Semaphore(0)
        self.opened = threading.Event()

    def through(self, context):
        with self.lock:
            self.calls += 1
            self.under_way += 1
            self.most = max(self.most, self.under_way)
            hold = self.calls >= self.hold_from
        if hold:
            self.held.release()
            self.opened.wait(timeout=20)
        else:
            time.sleep(self.seconds)
        with self.lock:
            self.under_way -= 1
        return StepOutcome.succeeded(f"through on {context.target}")

    def wait_held(self, count: int) -> None:
        for _ in range(count):
            assert self.held.acquire(timeout=20), "a step to be under way at the gate"


class Gated(Executor):
    """A step that passes through the test's gate."""

    name = "test_gated"
    display_name = "Gated"
    gate: Gate

    def run(self, context):
        return self.gate.through(context)


@pytest.fixture
def gate():
    """Installs the gated executor; ``gate(...)`` sets up its gate."""

    def make(**options) -> Gate:
        Gated.gate = Gate(**options)
        return Gated.gate

    registry._classes[Gated.name] = Gated
    make()
    yield make
    Gated.gate.opened.set()
    registry._classes.pop(Gated.name)


GATED = {"name": "deploy", "executor": "test_gated"}


def dispatched(deployment) -> list[int]:
    engine.deployment_advance(deployment_id=deployment.pk)
    return list(deployment.steps.filter(lease_owner=engine.QUEUED).order_by("id").values_list("id", flat=True))


@contextmanager
def running_in_a_thread(deployment, step_ids, owner="w"):
    """``steps_run`` on a thread of its own, as a worker runs it, while the test acts; joined at the end."""
    ran = []

    def work():
        try:
            ran.append(engine.steps_run(deployment_id=deployment.pk, step_ids=step_ids, owner=owner))
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    try:
        yield ran
    finally:
        worker.join(timeout=30)
        assert not worker.is_alive()


def manager_of_transactional_tests():
    from rdm_site.roles import Role
    from tests.factories import UserFactory

    return UserFactory(username="dm", roles=[Role.DEPLOYMENT_MANAGER])


@pytest.mark.parametrize(("limit", "hold_from"), [(1, 3), (4, 1)])
def test_abort_stops_new_steps_and_lets_those_under_way_finish(transactional_db, settings, gate, limit, hold_from):
    # given ten targets, at most `limit` steps of the deployment at once, and a batch under way whose steps
    # from the `hold_from`-th on wait at a gate
    settings.RDM_DEPLOYMENT_STEP_CONCURRENCY = limit
    manager = manager_of_transactional_tests()
    deployment = started(make_landscape(targets=10, steps=[GATED]), manager)
    steps = dispatched(deployment)
    at_the_gate = gate(hold_from=hold_from)

    # when the deployment is aborted while `limit` steps are under way
    with running_in_a_thread(deployment, steps):
        at_the_gate.wait_held(limit)
        services.deployment_abort(deployment=deployment, actor=manager, reason="wrong version")
        at_the_gate.opened.set()

    # then those under way finished, and no other step started
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.ABORTED
    finished = hold_from - 1 + limit
    assert at_the_gate.calls == finished
    states = list(deployment.steps.order_by("id").values_list("state", flat=True))
    assert states == [StepState.SUCCEEDED] * finished + [StepState.SKIPPED] * (10 - finished)
    assert deployment.waves.get().state == WaveState.FAILED
    assert not DeploymentLock.objects.exists()


def test_a_batch_runs_its_steps_at_once_up_to_the_deployments_limit(landscape, manager, settings, gate):
    # given twelve targets whose step takes 0.1 s, and at most five steps of a deployment at once
    settings.RDM_DEPLOYMENT_STEP_CONCURRENCY = 5
    deployment = started(landscape(targets=12, steps=[GATED]), manager)
    timing = gate(seconds=0.1)

    # when one batch runs them
    began = time.monotonic()
    ran = engine.steps_run(deployment_id=deployment.pk, step_ids=dispatched(deployment), owner="w")

    # then five ran at once, never more, in three rounds rather than twelve
    assert (ran, timing.most) == (12, 5)
    assert time.monotonic() - began < 1.0
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.SUCCEEDED
    assert StepLog.objects.filter(step__deployment=deployment, message__startswith="through on").count() == 12


def hold_on_a_worker(land, manager, count: int) -> None:
    """``count`` steps of another deployment running on another worker, which holds their leases."""
    other = started(land, manager)
    ids = dispatched(other)[:count]
    Step.objects.filter(pk__in=ids).update(
        state=StepState.RUNNING, lease_owner="elsewhere", lease_expires_at=timezone.now() + timedelta(minutes=1)
    )


def test_steps_running_on_other_workers_count_against_the_global_limit(landscape, manager, settings, gate):
    # given at most three steps at once anywhere, two of them held by another worker for another deployment
    settings.RDM_STEP_CONCURRENCY = 3
    hold_on_a_worker(landscape(targets=2), manager, 2)
    deployment = started(landscape(targets=4, steps=[GATED]), manager)
    timing = gate(seconds=0.05)

    # when a batch runs four steps
    ran = engine.steps_run(deployment_id=deployment.pk, step_ids=dispatched(deployment), owner="w")

    # then they ran one at a time, in the one slot left
    assert (ran, timing.most) == (4, 1)
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.SUCCEEDED


def test_a_batch_that_finds_no_free_slot_hands_its_steps_back_to_be_dispatched_again(
    landscape, manager, settings, django_capture_on_commit_callbacks
):
    # given every slot held by another worker
    settings.RDM_STEP_CONCURRENCY = 2
    hold_on_a_worker(landscape(targets=2), manager, 2)
    deployment = started(landscape(targets=3), manager)
    steps = dispatched(deployment)
    first_lease = Step.objects.get(pk=steps[0]).lease_expires_at

    # when a batch runs them, it waits for a slot as long as a batch may claim, and none comes free
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert engine.steps_run(deployment_id=deployment.pk, step_ids=steps, owner="w") == 0

    # then nothing ran, and the steps were dispatched again
    again = list(Step.objects.filter(pk__in=steps))
    assert {(step.state, step.lease_owner) for step in again} == {(StepState.PENDING, engine.QUEUED)}
    assert all(step.lease_expires_at > first_lease for step in again)
    assert queued, "sent again"


def test_a_batch_with_threads_to_spare_runs_steps_no_worker_took_yet(landscape, manager):
    # given two deployments whose steps were dispatched, the second's a moment ago with no worker free to take them
    first = started(landscape(targets=2), manager)
    second = started(landscape(targets=3), manager)
    first_steps, second_steps = dispatched(first), dispatched(second)
    Step.objects.filter(pk__in=second_steps).update(lease_expires_at=F("lease_expires_at") - timedelta(seconds=1))

    # when the first deployment's batch runs
    ran = engine.steps_run(deployment_id=first.pk, step_ids=first_steps, owner="w")

    # then it ran the second's steps too, and the second's own message later finds nothing left to do
    assert ran == 5
    assert engine.steps_run(deployment_id=second.pk, step_ids=second_steps, owner="late") == 0
    for deployment in (first, second):
        deployment.refresh_from_db()
        assert deployment.state == DeploymentState.SUCCEEDED
    assert set(Step.objects.values_list("attempt", flat=True)) == {1}


def test_an_outcome_is_not_recorded_once_the_step_was_taken_over(transactional_db, gate):
    # given a step under way on a worker
    deployment = started(make_landscape(targets=1, steps=[GATED]), manager_of_transactional_tests())
    steps = dispatched(deployment)
    at_the_gate = gate(hold_from=1)

    # when its lease is lost meanwhile, and another worker holds the step when the first finishes
    with running_in_a_thread(deployment, steps, owner="slow-worker"):
        at_the_gate.wait_held(1)
        Step.objects.filter(pk=steps[0]).update(lease_owner="new-worker")
        at_the_gate.opened.set()

    # then the first worker's outcome is not recorded: the step is still the new worker's
    step = Step.objects.get(pk=steps[0])
    assert (step.state, step.lease_owner) == (StepState.RUNNING, "new-worker")
    assert StepLog.objects.filter(step=step, message__contains="no longer held by this worker").exists()


def test_a_batch_holds_the_next_steps_in_reserve_and_starts_them_as_calls_return(transactional_db, settings, gate):
    # given six targets, at most two steps of the deployment at once, and a batch whose first two steps wait
    settings.RDM_DEPLOYMENT_STEP_CONCURRENCY = 2
    deployment = started(make_landscape(targets=6, steps=[GATED]), manager_of_transactional_tests())
    steps = dispatched(deployment)
    at_the_gate = gate(hold_from=1)

    with running_in_a_thread(deployment, steps, owner="w"):
        at_the_gate.wait_held(2)
        # then, while two run, the next two are held in reserve: still pending, leased to the batch (which
        # renews them), so that no other worker takes them
        rows = dict(deployment.steps.values_list("id", "state"))
        held = list(deployment.steps.filter(state=StepState.PENDING, lease_owner="w").values_list("id", flat=True))
        assert sorted(rows.values()).count(StepState.RUNNING) == 2
        assert held == steps[2:4]
        before = Step.objects.get(pk=held[0]).lease_expires_at
        leases._renew("w", held)
        assert Step.objects.get(pk=held[0]).lease_expires_at > before
        at_the_gate.hold_from = 10**6
        at_the_gate.opened.set()

    # and when the calls return, the reserve starts in their slots: never more than two at once, every step
    # ran once, and each has its "running" event before its end, numbered without a gap
    deployment.refresh_from_db()
    assert (deployment.state, at_the_gate.calls, at_the_gate.most) == (DeploymentState.SUCCEEDED, 6, 2)
    events = list(DeploymentEvent.objects.filter(deployment=deployment).order_by("seq"))
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    for step_id in steps:
        assert [event.state for event in events if event.step_id_ref == step_id] == ["running", "succeeded"]


def test_a_pause_keeps_the_steps_held_in_reserve_from_starting(transactional_db, settings, gate):
    # given two steps under way at a gate, two more held in reserve
    settings.RDM_DEPLOYMENT_STEP_CONCURRENCY = 2
    manager = manager_of_transactional_tests()
    deployment = started(make_landscape(targets=6, steps=[GATED]), manager)
    steps = dispatched(deployment)
    at_the_gate = gate(hold_from=1)

    # when the deployment is paused while they run
    with running_in_a_thread(deployment, steps, owner="w"):
        at_the_gate.wait_held(2)
        services.deployment_pause(deployment=deployment, actor=manager, reason="looking at a graph")
        at_the_gate.opened.set()

    # then only the two under way ran; the reserve was handed back, pending, for the resume
    deployment.refresh_from_db()
    assert (deployment.state, at_the_gate.calls) == (DeploymentState.PAUSED, 2)
    assert not deployment.steps.filter(lease_owner="w").exists()
    assert deployment.steps.filter(state=StepState.PENDING).count() == 4
    services.deployment_resume(deployment=deployment, actor=manager)
    at_the_gate.hold_from = 10**6
    assert drive(deployment).state == DeploymentState.SUCCEEDED
    assert at_the_gate.calls == 6


def test_steps_held_in_reserve_by_a_lost_worker_run_elsewhere_as_their_first_attempt(landscape, manager):
    # given a worker that claimed one step and held two in reserve, then died (its leases ran out)
    deployment = started(landscape(targets=3), manager)
    step_ids = dispatched(deployment)
    _, claimed, reserved, _ = runner._claim(deployment.pk, step_ids, "dead-worker", 1, reserve=0)
    assert (len(claimed), len(reserved)) == (1, 1)
    Step.objects.filter(pk__in=step_ids).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    # when the reconciler has them dispatched again
    reconciler.deployments_reconcile()
    deployment = drive(deployment)

    # then the claimed step ran again as a second attempt; the reserved one, never started, as its first
    assert deployment.state == DeploymentState.SUCCEEDED
    attempts = dict(deployment.steps.values_list("id", "attempt"))
    assert attempts[claimed[0].pk] == 2
    assert attempts[reserved[0].pk] == 1


class SelectedBefore:
    """Steps as a query had them: ``filter`` returns them whatever happened since."""

    def __init__(self, steps):
        self.steps = steps

    def filter(self, *conditions):
        return self.steps


def test_an_abort_and_the_start_of_a_reserved_step_never_both_win(landscape, manager):
    # given a step held in reserve by a worker, which an abort found not under way
    deployment = started(landscape(targets=3), manager)
    _, _, (held, other), _ = runner._claim(deployment.pk, dispatched(deployment), "w", 1, reserve=1)
    found_by_the_abort = list(Step.objects.filter(pk=held.pk))

    # when the worker starts it before the abort writes, the abort leaves it to the worker
    assert runner.steps_start_held([held], "w", DeploymentState.RUNNING) == [held]
    tick = engine.Tick(deployment)
    assert engine.skip_open(tick, SelectedBefore(found_by_the_abort), "aborted") == 0
    assert Step.objects.get(pk=held.pk).state == StepState.RUNNING
    assert tick.events.pending == []

    # and when the abort comes first, the worker's start writes nothing
    services.deployment_abort(deployment=deployment, actor=manager, reason="wrong version")
    assert runner.steps_start_held([other], "w", DeploymentState.RUNNING) == []
    assert Step.objects.get(pk=other.pk).state == StepState.SKIPPED


def test_pause_stops_new_steps_and_resume_continues(landscape, manager):
    land = landscape(targets=4)
    deployment = started(land, manager)
    engine.deployment_advance(deployment_id=deployment.pk)
    services.deployment_pause(deployment=deployment, actor=manager, reason="looking at a graph")
    deployment = drive(deployment)
    assert deployment.state == DeploymentState.PAUSED
    assert not deployment.steps.filter(state=StepState.SUCCEEDED).exists()

    services.deployment_resume(deployment=deployment, actor=manager)
    deployment = drive(deployment)
    assert deployment.state == DeploymentState.SUCCEEDED


def test_one_active_deployment_per_service_and_environment(landscape, manager):
    land = landscape(targets=1)
    first = started(land, manager)
    second = plan(land, manager)
    with pytest.raises(UnmetConditions, match=f"deployment #{first.pk} of .* is already active"):
        services.deployment_start(deployment=second, actor=manager)
    drive(first)
    services.deployment_start(deployment=second, actor=manager)
    assert drive(second).state == DeploymentState.SUCCEEDED


def test_a_succeeded_deployment_is_not_rolled_back_in_place(landscape, manager):
    deployment = drive(started(landscape(targets=1), manager))
    assert deployment.state == DeploymentState.SUCCEEDED
    with pytest.raises(IllegalTransition):
        services.deployment_rollback(deployment=deployment, actor=manager, reason="that is a new deployment (ELS)")


def test_roll_back_now_skips_the_rest_and_undoes_what_ran(landscape, manager):
    # given a rollout waiting at an intervention after deploying to 4 targets
    land = landscape(targets=4, steps=[SIMULATE, INTERVENTION])
    deployment = drive(started(land, manager))
    assert deployment.state == DeploymentState.PAUSED

    # when the Deployment Manager rolls back now
    services.deployment_rollback(deployment=deployment, actor=manager, reason="the canary looks wrong")
    deployment = drive(deployment)

    # then the intervention is skipped, the four deploy steps are undone, and who and why is audited
    assert deployment.state == DeploymentState.ROLLED_BACK
    assert deployment.outcome == "the canary looks wrong"
    assert deployment.steps.get(executor="manual_intervention").state == StepState.SKIPPED
    assert deployment.steps.filter(kind=StepKind.ROLLBACK, state=StepState.SUCCEEDED).count() == 4
    audit = AuditEvent.objects.get(object_id=str(deployment.pk), action="deployment.roll_back")
    assert (audit.actor_label, audit.reason) == ("dm", "the canary looks wrong")


def test_a_step_whose_worker_was_lost_runs_again_with_the_same_key(
    landscape, manager, django_capture_on_commit_callbacks
):
    # given a step claimed by a worker that then died (its lease ran out)
    land = landscape(targets=1)
    deployment = started(land, manager)
    engine.deployment_advance(deployment_id=deployment.pk)
    step = deployment.steps.get()
    runner._claim(deployment.pk, [step.pk], "dead-worker")
    Step.objects.filter(pk=step.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    # when the reconciler looks, it has the deployment advanced, which dispatches the step again
    with django_capture_on_commit_callbacks() as queued:
        assert reconciler.deployments_reconcile() == {"started": 0, "advanced": 1, "promoted": 0}
    assert queued, "sent again"
    deployment = drive(deployment)

    # then it ran again (second attempt, same key) and the rollout finished
    step.refresh_from_db()
    assert (step.state, step.attempt, deployment.state) == (StepState.SUCCEEDED, 2, DeploymentState.SUCCEEDED)
    assert StepLog.objects.filter(step=step, message__contains="worker was lost").exists()


def test_a_step_given_again_after_losing_its_worker_too_often_fails_and_the_rollout_rolls_back(landscape, manager):
    # given a step whose worker was lost for the third time (its lease ran out)
    deployment = started(landscape(targets=1), manager)
    step_ids = dispatched(deployment)
    runner._claim(deployment.pk, step_ids, "dead-worker")
    Step.objects.filter(pk__in=step_ids).update(attempt=3, lease_expires_at=timezone.now() - timedelta(seconds=1))

    # when its message is delivered once more
    ran = engine.steps_run(deployment_id=deployment.pk, step_ids=step_ids, owner="w")

    # then it is not run again: it failed, and the rollout rolls back (what the batch ran, if anything, is the
    # rollback's step, which it may take once it waited 50 ms for a worker)
    step = Step.objects.get(pk=step_ids[0])
    assert (step.state, step.message) == (StepState.FAILED, "lost its worker 3 times")
    assert ran == deployment.steps.filter(kind=StepKind.ROLLBACK).exclude(state=StepState.PENDING).count()
    assert drive(deployment).state == DeploymentState.ROLLED_BACK


def test_a_scheduled_deployment_starts_by_itself_when_its_time_comes(landscape, manager):
    land = landscape(targets=1)
    deployment = plan(land, manager)
    services.deployment_schedule(
        deployment=deployment, actor=manager, scheduled_for=timezone.now() - timedelta(seconds=1)
    )
    assert reconciler.deployments_reconcile()["started"] == 1
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.QUEUED
    assert AuditEvent.objects.get(object_id=str(deployment.pk), action="deployment.start").actor_label == "system"


def test_secrets_are_masked_in_logs_outputs_events_and_audit(landscape, manager, target_server, local_outbound):
    # given a secret variable used in a URL and a header
    secret = "hunter2-secret"
    land = landscape(
        targets=1,
        steps=[
            {
                "name": "call",
                "executor": "http_call",
                "parameters": {
                    "url": target_server.url("/effects/x?token=#{Token}"),
                    "headers": {"Authorization": "Bearer #{Token}"},
                },
            }
        ],
    )
    services.variable_set(actor=manager, service=land.service, name="Token", value=secret, is_secret=True)

    # when the rollout runs
    deployment = drive(started(land, manager))

    # then the target got the secret, and nothing RDM wrote holds it
    assert deployment.state == DeploymentState.SUCCEEDED
    assert target_server.requests_to("/effects/x")[0].headers["Authorization"] == f"Bearer {secret}"
    step = deployment.steps.get()
    written = [
        str(step.parameters),
        str(step.output),
        step.message,
        *StepLog.objects.values_list("message", flat=True),
        *DeploymentEvent.objects.values_list("message", flat=True),
        *(str(row) for row in AuditEvent.objects.values_list("reason", "changes", "object_repr")),
    ]
    assert not [text for text in written if secret in text]
    assert any("token=********" in text for text in written)


def test_a_step_that_runs_longer_than_its_lease_keeps_it_by_heartbeat(
    transactional_db, settings, target_server, local_outbound
):
    import threading

    from django.db import connection

    from rdm_site.roles import Role
    from tests.deployments.conftest import make_landscape
    from tests.factories import UserFactory
    from tests.harness.processes import wait_until

    # given leases of 0.9 s, and a call that takes 1.2 s to answer
    settings.RDM_STEP_LEASE_SECONDS = 0.9
    leases.LeaseKeeper._instance = None  # a keeper that renews at this lease's pace
    manager = UserFactory(username="dm", roles=[Role.DEPLOYMENT_MANAGER])
    land = make_landscape(
        targets=1,
        steps=[
            {"name": "slow", "executor": "http_call", "parameters": {"url": target_server.url("/effects/a?delay=1.2")}}
        ],
    )
    deployment = started(land, manager)
    engine.deployment_advance(deployment_id=deployment.pk)
    step = deployment.steps.get()

    def work():
        try:
            engine.steps_run(deployment_id=deployment.pk, step_ids=[step.pk], owner="busy-worker")
        finally:
            connection.close()

    # when it runs past its first lease
    worker = threading.Thread(target=work)
    worker.start()
    claimed = wait_until(lambda: Step.objects.filter(pk=step.pk, lease_owner="busy-worker").first(), what="a claim")

    # then the lease is renewed (nobody would take the step over) while the call goes on, and the step ran once
    renewed = wait_until(
        lambda: Step.objects.filter(
            pk=step.pk, lease_expires_at__gt=claimed.lease_expires_at, state=StepState.RUNNING
        ).first(),
        timeout=1.5,
        what="the lease to be renewed",
    )
    assert renewed.lease_owner == "busy-worker"
    worker.join(timeout=10)
    step.refresh_from_db()
    assert (step.state, step.attempt) == (StepState.SUCCEEDED, 1)
    assert target_server.effect_count("/effects/a") == 1
