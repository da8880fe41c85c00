"""Hold a rollout to a metric: a Prometheus query compared with a threshold (error rate, latency...)."""

import math
import operator
from collections.abc import Callable
from urllib.parse import urlencode

from deployments.executors.base import Executor, Parameter, ParameterType, StepContext, StepOutcome
from deployments.executors.http_support import TIMEOUT_PARAMETER, send, unexpected_status

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}


class PrometheusGateExecutor(Executor):
    """Passes when ``value <operator> threshold`` holds for the query's single value.

    No data fails the gate: a metric that is not reported proves nothing about the new version's health.
    A query returning several series fails too: the gate would not know which one to judge, so the query
    must aggregate (``sum(...)``, ``max(...)``).
    """

    name = "prometheus_gate"
    display_name = "Prometheus metric gate"
    description = "Queries Prometheus and passes when the value satisfies the threshold."
    parameters_schema = (
        Parameter(
            "prometheus_url",
            ParameterType.STRING,
            "Base URL of Prometheus, e.g. http://prometheus:9090.",
            required=True,
        ),
        Parameter(
            "query", ParameterType.STRING, "PromQL returning one value, e.g. sum(rate(errors[5m])).", required=True
        ),
        Parameter(
            "operator",
            ParameterType.STRING,
            "How the value must compare with the threshold.",
            required=True,
            choices=tuple(OPERATORS),
        ),
        Parameter("threshold", ParameterType.NUMBER, "The value to compare with.", required=True),
        TIMEOUT_PARAMETER,
    )

    def run(self, context: StepContext) -> StepOutcome:
        parameters = context.parameters
        url = parameters["prometheus_url"].rstrip("/") + "/api/v1/query?" + urlencode({"query": parameters["query"]})
        result = send(context, "GET", url, timeout=parameters["timeout"])
        if isinstance(result, StepOutcome):
            return result
        if result.status != 200:
            return unexpected_status(context, result, "200")
        try:
            payload = result.json()
        except ValueError:
            payload = None
        value, problem = _single_value(payload)
        if problem:
            return StepOutcome.failed(f"{problem} for {parameters['query']}")
        condition = f"{parameters['operator']} {parameters['threshold']:g}"
        output = {"value": value, "operator": parameters["operator"], "threshold": parameters["threshold"]}
        if OPERATORS[parameters["operator"]](value, parameters["threshold"]):
            return StepOutcome.succeeded(f"{value:g} {condition}", **output)
        return StepOutcome.failed(f"{value:g} is not {condition}", **output)


def _single_value(payload: object) -> tuple[float | None, str | None]:
    """The one value of an instant query's answer, or why there is none."""
    if not isinstance(payload, dict) or payload.get("status") != "success":
        error = payload.get("error", "unreadable answer") if isinstance(payload, dict) else "unreadable answer"
        return None, f"Prometheus error: {error}"
    data = payload.get("data", {})
    if data.get("resultType") == "scalar":
        sample = data.get("result")
    elif data.get("resultType") == "vector":
        series = data.get("result", [])
        if len(series) > 1:
            return None, f"{len(series)} series returned (aggregate to one)"
        sample = series[0].get("value") if series else None
    else:
        return None, f"unsupported result type {data.get('resultType')!r}"
    value = float(sample[1]) if sample else math.nan
    if math.isnan(value):
        return None, "no data"
    return value, None
