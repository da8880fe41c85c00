"""The Prometheus gate: compares the query's value with a threshold; no data is a failure."""

import pytest

from deployments.executors.base import OutcomeStatus
from deployments.executors.prometheus_gate import PrometheusGateExecutor
from tests.harness.steps import step_context

pytestmark = pytest.mark.usefixtures("local_outbound")
ERROR_RATE = 'sum(rate(http_requests_total{code=~"5.."}[5m]))'


def _gate(target_server, operator="<", threshold=0.05):
    parameters = {
        "prometheus_url": target_server.url(""),
        "query": ERROR_RATE,
        "operator": operator,
        "threshold": threshold,
    }
    return PrometheusGateExecutor().run(step_context(PrometheusGateExecutor(), parameters))


def test_value_within_the_threshold_passes_and_is_reported(target_server):
    # given an error rate of 0.01
    target_server.metric_value = 0.01

    # when gated on "< 0.05"
    outcome = _gate(target_server)

    # then it passes, reporting the value, and Prometheus was asked the query
    assert outcome.status == OutcomeStatus.SUCCEEDED
    assert outcome.output == {"value": 0.01, "operator": "<", "threshold": 0.05}
    [request] = target_server.requests_to("/api/v1/query")
    assert "query=sum%28rate" in request.path


def test_value_beyond_the_threshold_fails(target_server):
    # given an error rate of 0.2, when gated on "< 0.05", then it fails, saying the value
    target_server.metric_value = 0.2
    outcome = _gate(target_server)
    assert outcome.status == OutcomeStatus.FAILED
    assert outcome.message == "0.2 is not < 0.05"
    assert outcome.output["value"] == 0.2


def test_no_data_fails_clearly(target_server):
    # given a query with no data, when gated, then it fails saying so
    target_server.metric_value = None
    outcome = _gate(target_server, operator=">=", threshold=1)
    assert outcome.status == OutcomeStatus.FAILED
    assert outcome.message.startswith("no data for sum(rate(")
