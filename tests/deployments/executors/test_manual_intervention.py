"""Manual intervention: waits for an answer until the deadline; the answer decides."""

from datetime import timedelta

import pytest

from deployments.executors.base import OutcomeStatus
from deployments.executors.manual_intervention import ManualInterventionExecutor
from tests.harness.steps import STARTED_AT, step_context

PARAMETERS = {"instructions": "Check the payment page by hand.", "deadline_minutes": 30}


def _poll(**fields):
    return ManualInterventionExecutor().run(step_context(ManualInterventionExecutor(), PARAMETERS, **fields))


def test_without_an_answer_the_step_waits_until_the_deadline():
    # given no answer yet, ten minutes in
    outcome = _poll(now=STARTED_AT + timedelta(minutes=10))

    # then it waits, showing the instructions, to be polled again at the deadline at the latest
    assert outcome.status == OutcomeStatus.WAITING
    assert outcome.message == PARAMETERS["instructions"]
    assert outcome.wait_until == STARTED_AT + timedelta(minutes=30)


@pytest.mark.parametrize(("answer", "status"), [("proceed", OutcomeStatus.SUCCEEDED), ("abort", OutcomeStatus.FAILED)])
def test_the_answer_decides(answer, status):
    # given an answer, when polled, then it succeeds on proceed and fails on abort
    outcome = _poll(answer=answer, now=STARTED_AT + timedelta(minutes=10))
    assert outcome.status == status
    assert outcome.message == f"answered: {answer}"


def test_deadline_without_an_answer_fails():
    # given no answer when the deadline has come, when polled, then it fails saying so
    outcome = _poll(now=STARTED_AT + timedelta(minutes=30))
    assert outcome.status == OutcomeStatus.FAILED
    assert "deadline passed" in outcome.message
