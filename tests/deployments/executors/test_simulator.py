"""The simulator: reproducible failures, a failing target, and latency that never holds a worker long."""

from datetime import timedelta

from deployments.executors.base import OutcomeStatus
from deployments.executors.simulator import SimulatorExecutor
from tests.harness.steps import STARTED_AT, step_context


def _simulate(parameters, **fields):
    return SimulatorExecutor().run(step_context(SimulatorExecutor(), parameters, **fields))


def test_failures_are_drawn_from_the_idempotency_key_so_retries_repeat_them():
    # given a 50 % failure rate over many steps
    keys = [f"deployment-7-step-{number}" for number in range(40)]
    outcomes = {key: _simulate({"failure_rate": 0.5}, idempotency_key=key).status for key in keys}

    # when each step is retried with its key
    retried = {key: _simulate({"failure_rate": 0.5}, idempotency_key=key, attempt=2).status for key in keys}

    # then each gets the same result again, and both results occur
    assert retried == outcomes
    assert set(outcomes.values()) == {OutcomeStatus.SUCCEEDED, OutcomeStatus.FAILED}


def test_named_target_always_fails_and_others_succeed():
    # given a simulator failing on "web-2", when run on web-1 and web-2, then only web-2 fails
    assert _simulate({"fail_on_target": "web-2"}, target="web-1").status == OutcomeStatus.SUCCEEDED
    failed = _simulate({"fail_on_target": "web-2"}, target="web-2")
    assert (failed.status, failed.message) == (OutcomeStatus.FAILED, "simulated failure on target web-2")


def test_long_latency_is_a_wait_not_a_sleep():
    # given a 30-second latency, when run at the start, then it waits until 30 s after the start
    waiting = _simulate({"latency_ms": 30_000})
    assert (waiting.status, waiting.wait_until) == (OutcomeStatus.WAITING, STARTED_AT + timedelta(seconds=30))

    # and when polled then, it has finished
    assert _simulate({"latency_ms": 30_000}, now=STARTED_AT + timedelta(seconds=30)).status == OutcomeStatus.SUCCEEDED


def test_rollback_succeeds():
    # given a simulated step, when rolled back, then it succeeds
    context = step_context(SimulatorExecutor(), {})
    assert SimulatorExecutor().rollback(context).status == OutcomeStatus.SUCCEEDED
