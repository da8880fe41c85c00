"""The HTTP call executor: effects once per idempotency key; 5xx retried later, 4xx final."""

import pytest

from deployments.executors.base import OutcomeStatus
from deployments.executors.http_call import HttpCallExecutor
from tests.harness.steps import step_context

pytestmark = pytest.mark.usefixtures("local_outbound")


def _deploy_step(target_server, **fields):
    parameters = {
        "url": target_server.url("/effects/deploy"),
        "body": {"version": "1.2.3"},
        "rollback_url": target_server.url("/effects/undeploy"),
    }
    return step_context(HttpCallExecutor(), parameters, **fields)


def test_two_runs_with_the_same_key_apply_the_effect_once(target_server):
    # given a deploy step, run once already (a worker then lost before recording it)
    context = _deploy_step(target_server)
    first = HttpCallExecutor().run(context)

    # when it is run again with the same idempotency key
    second = HttpCallExecutor().run(context)

    # then both succeeded, the key was sent, and the target applied the effect once
    assert first.status == second.status == OutcomeStatus.SUCCEEDED
    assert target_server.effect_count("/effects/deploy") == 1
    assert {request.headers["Idempotency-Key"] for request in target_server.requests_to("/effects/deploy")} == {
        "deployment-1-step-1"
    }


def test_server_error_is_a_transient_failure_with_retry_after(target_server):
    # given a target failing with 503 and asking to retry in 7 s
    target_server.fail_next(1, status=503, retry_after="7")

    # when the step runs
    outcome = HttpCallExecutor().run(_deploy_step(target_server))

    # then it failed transiently, and a retry with the same key succeeds and applies the effect once
    assert (outcome.status, outcome.retry_after) == (OutcomeStatus.FAILED, 7)
    assert "HTTP 503" in outcome.message
    retried = HttpCallExecutor().run(_deploy_step(target_server, attempt=2))
    assert retried.status == OutcomeStatus.SUCCEEDED
    assert target_server.effect_count("/effects/deploy") == 1


def test_client_error_is_a_permanent_failure(target_server):
    # given a target refusing the request with 422
    target_server.fail_next(1, status=422)

    # when the step runs
    outcome = HttpCallExecutor().run(_deploy_step(target_server))

    # then it failed for good
    assert outcome.status == OutcomeStatus.FAILED
    assert not outcome.transient
    assert outcome.output["status"] == 422


def test_timeout_is_a_transient_failure(target_server):
    # given a target slower than the step's timeout
    context = step_context(HttpCallExecutor(), {"method": "GET", "url": target_server.url("/slow/1"), "timeout": 0.2})

    # when the step runs, then it failed transiently
    outcome = HttpCallExecutor().run(context)
    assert outcome.transient
    assert "timed out" in outcome.message


def test_refused_host_is_a_permanent_failure(target_server, settings):
    # given a target whose host is not allowed
    settings.OUTBOUND_ALLOWED_HOSTS = []

    # when the step runs, then it failed for good, saying why
    outcome = HttpCallExecutor().run(_deploy_step(target_server))
    assert not outcome.transient
    assert "not in OUTBOUND_ALLOWED_HOSTS" in outcome.message


def test_rollback_calls_the_rollback_url_with_a_key_of_its_own(target_server):
    # given a deploy step that ran
    context = _deploy_step(target_server)
    HttpCallExecutor().run(context)

    # when it is rolled back
    outcome = HttpCallExecutor().rollback(context)

    # then the rollback call was made once, under its own key
    assert outcome.status == OutcomeStatus.SUCCEEDED
    assert target_server.effect_count("/effects/undeploy") == 1
    [request] = target_server.requests_to("/effects/undeploy")
    assert request.headers["Idempotency-Key"] == "deployment-1-step-1:rollback"
