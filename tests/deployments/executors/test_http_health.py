"""The HTTP health check: healthy only with the expected status and text."""

import pytest

from deployments.executors.base import OutcomeStatus
from deployments.executors.http_health import HttpHealthExecutor
from tests.harness.steps import step_context

pytestmark = pytest.mark.usefixtures("local_outbound")


def _check(target_server, **parameters):
    context = step_context(HttpHealthExecutor(), {"url": target_server.url("/health"), **parameters})
    return HttpHealthExecutor().run(context)


def test_healthy_target_passes(target_server):
    # given a target answering 200 "status: green"
    target_server.health_body = "status: green"

    # when checked for 200 and "green", then it passes
    assert _check(target_server, body_contains="green").status == OutcomeStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [(503, "status: green", "HTTP 503, expected 200"), (200, "status: red", "does not contain 'green'")],
)
def test_wrong_status_or_body_fails(target_server, status, body, reason):
    # given a target answering the wrong status or text
    target_server.health_status, target_server.health_body = status, body

    # when checked, then it fails, saying what was wrong
    outcome = _check(target_server, body_contains="green")
    assert outcome.status == OutcomeStatus.FAILED
    assert reason in outcome.message
