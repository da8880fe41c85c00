"""The command executor: only administrator-defined commands, arguments filled in, no shell, output kept."""

import sys

import pytest

from deployments.executors.base import ExecutorParameterError, OutcomeStatus
from deployments.executors.command import CommandExecutor
from tests.harness.steps import step_context


@pytest.fixture(autouse=True)
def allowed_commands(settings):
    settings.RDM_ALLOWED_COMMANDS = {
        "say": [sys.executable, "-c", "import sys; print(sys.argv[1])", "{message} on {target}"],
        "environment": [sys.executable, "-c", "import os; print(sorted(os.environ))"],
        "fail": [sys.executable, "-c", "import sys; sys.exit('broken')"],
        "hang": [sys.executable, "-c", "import time; time.sleep(30)"],
    }


def _run(parameters, **fields):
    return CommandExecutor().run(step_context(CommandExecutor(), parameters, **fields))


def test_allowed_command_runs_with_its_arguments_and_its_output_is_kept():
    # given an allowed command with a placeholder, and a value that a shell would act on
    # when it runs
    outcome = _run({"command": "say", "arguments": {"message": "hello; rm -rf /"}})

    # then the value was passed as one argument, and the output is in the outcome
    assert outcome.status == OutcomeStatus.SUCCEEDED
    assert outcome.output["stdout"] == "hello; rm -rf / on web-1\n"
    assert outcome.output["exit_code"] == 0


def test_the_command_sees_the_step_but_not_the_workers_environment(monkeypatch):
    # given a worker whose environment holds a secret
    monkeypatch.setenv("RDM_SECRETS_KEY", "worker-only")

    # when a command runs, then it gets the step's RDM_* values and none of the worker's secrets
    variables = _run({"command": "environment"}).output["stdout"]
    assert "RDM_IDEMPOTENCY_KEY" in variables
    assert "RDM_SECRETS_KEY" not in variables


def test_failing_command_fails_the_step_with_its_error_output():
    # given a command that exits non-zero, when it runs, then the step failed for good with stderr kept
    outcome = _run({"command": "fail"})
    assert (outcome.status, outcome.transient) == (OutcomeStatus.FAILED, False)
    assert outcome.output["stderr"] == "broken\n"


def test_command_past_its_timeout_is_killed_and_may_be_retried():
    # given a command slower than its timeout, when it runs, then it is killed and failed transiently
    outcome = _run({"command": "hang", "timeout": 1})
    assert outcome.transient
    assert "timed out" in outcome.message


def test_unknown_command_and_wrong_arguments_are_refused():
    # given an unknown command, when validated, then it is refused
    with pytest.raises(ExecutorParameterError, match="'rm' is not an allowed command"):
        CommandExecutor().validate({"command": "rm", "arguments": {"path": "/"}})

    # and given an allowed command with a missing and an unused argument, both are named
    with pytest.raises(ExecutorParameterError) as raised:
        CommandExecutor().validate({"command": "say", "arguments": {"mesage": "typo"}})
    assert raised.value.problems == ["arguments: 'mesage' is not used by say", "arguments: 'message' is needed by say"]
