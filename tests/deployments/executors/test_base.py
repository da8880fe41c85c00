"""The executor interface: parameters are checked all at once and converted; outcomes are consistent."""

from datetime import UTC, datetime

import pytest

from deployments.executors.base import ExecutorParameterError, OutcomeStatus, StepOutcome, backoff
from deployments.executors.http_call import HttpCallExecutor
from deployments.executors.wait import WaitExecutor
from tests.harness.steps import step_context


def test_validation_lists_every_problem_at_once():
    # given parameters with a missing, an unknown, a mistyped, an out-of-choice and a cross-field problem
    parameters = {"method": "FETCH", "timeout": "soon", "colour": "red", "expected_statuses": [200, 999]}

    # when they are validated
    with pytest.raises(ExecutorParameterError) as raised:
        HttpCallExecutor().validate(parameters)

    # then every problem is named
    assert sorted(raised.value.problems) == [
        "colour: unknown parameter",
        "expected_statuses: must list HTTP statuses (100-599)",
        "method: must be one of GET, POST, PUT, PATCH, DELETE",
        "timeout: must be a number",
        "url: is required",
    ]


def test_substituted_text_is_converted_to_the_declared_type_and_defaults_are_filled():
    # given parameters as text, as substitution leaves them
    # when validated, then they come back typed, with the defaults of those not given
    cleaned = HttpCallExecutor().validate({"url": "https://ci.example.com/build", "timeout": "2.5"})
    assert cleaned["timeout"] == 2.5
    assert cleaned["method"] == "POST"
    assert cleaned["expected_statuses"] == [200, 201, 202, 204]
    assert WaitExecutor().validate({"duration_seconds": "30"}) == {"duration_seconds": 30}


def test_range_limits_are_enforced():
    # given a negative duration, when validated, then it is refused with the limit
    with pytest.raises(ExecutorParameterError, match="duration_seconds: must be at least 0"):
        WaitExecutor().validate({"duration_seconds": -1})


def test_description_lists_parameters_for_the_editor_and_the_api():
    # given an executor, when described, then each parameter says its type, whether required, default and secrecy
    described = HttpCallExecutor.describe()
    url = next(parameter for parameter in described["parameters"] if parameter["name"] == "url")
    assert described["name"] == "http_call"
    assert (url["type"], url["required"], url["secret"]) == ("string", True, False)


def test_default_rollback_has_nothing_to_undo():
    # given an executor without a rollback of its own, when rolled back, then it succeeds saying so
    outcome = WaitExecutor().rollback(step_context(WaitExecutor(), {"duration_seconds": 0}))
    assert (outcome.status, outcome.message) == (OutcomeStatus.SUCCEEDED, "nothing to roll back")


def test_outcomes_keep_waiting_and_retrying_apart():
    # given the rules of an outcome, when broken, then the outcome is refused
    with pytest.raises(ValueError, match="wait_until"):
        StepOutcome(OutcomeStatus.WAITING, "no time given")
    with pytest.raises(ValueError, match="retry_after"):
        StepOutcome(OutcomeStatus.SUCCEEDED, "ok", retry_after=5)
    assert StepOutcome.failed("busy", retry_after=5).transient
    assert StepOutcome.waiting("later", until=datetime(2026, 1, 1, tzinfo=UTC)).wait_until


def test_backoff_doubles_up_to_five_minutes():
    # given successive attempts, when backing off, then the delay doubles and is capped
    assert [backoff(attempt) for attempt in (1, 2, 3, 10)] == [5, 10, 20, 300]
