"""Wait: counts from when the step started, however often it is polled."""

from datetime import timedelta

from deployments.executors.base import OutcomeStatus
from deployments.executors.wait import WaitExecutor
from tests.harness.steps import STARTED_AT, step_context


def test_waits_until_the_duration_has_passed_then_succeeds():
    # given a 5-minute wait
    executor = WaitExecutor()

    # when polled after one minute, then it waits until five minutes after the start
    early = executor.run(step_context(executor, {"duration_seconds": 300}, now=STARTED_AT + timedelta(minutes=1)))
    assert (early.status, early.wait_until) == (OutcomeStatus.WAITING, STARTED_AT + timedelta(minutes=5))

    # and when polled at five minutes, it succeeds
    done = executor.run(step_context(executor, {"duration_seconds": 300}, now=STARTED_AT + timedelta(minutes=5)))
    assert done.status == OutcomeStatus.SUCCEEDED
