"""Call an external tool's HTTP API (Jenkins, Argo CD, a cloud API) to act on a target."""

from typing import Any
from urllib.parse import urlsplit

from deployments.executors.base import Executor, Parameter, ParameterType, StepContext, StepOutcome
from deployments.executors.http_support import TIMEOUT_PARAMETER, excerpt, send, unexpected_status

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class HttpCallExecutor(Executor):
    """Sends ``Idempotency-Key`` so that a tool honouring it applies the effect once however often we retry.

    The rollback call, when configured, sends ``<key>:rollback``: a key of its own, so the tool does not
    mistake it for a replay of the call it undoes.
    """

    name = "http_call"
    display_name = "HTTP call"
    description = "Calls an external tool's HTTP API. 5xx and timeouts are retried; other statuses fail the step."
    parameters_schema = (
        Parameter("method", ParameterType.STRING, "HTTP method.", default="POST", choices=METHODS),
        Parameter(
            "url", ParameterType.STRING, "URL to call (its host must be allowed for outbound HTTP).", required=True
        ),
        Parameter(
            "headers", ParameterType.MAPPING, "Extra request headers (use secret variables for tokens).", default={}
        ),
        Parameter("body", ParameterType.MAPPING, "JSON body to send."),
        Parameter("expected_statuses", ParameterType.LIST, "Statuses that mean success.", default=[200, 201, 202, 204]),
        TIMEOUT_PARAMETER,
        Parameter("rollback_url", ParameterType.STRING, "URL to call to undo the step; none means nothing to undo."),
        Parameter(
            "rollback_method",
            ParameterType.STRING,
            "HTTP method of the rollback call.",
            default="POST",
            choices=METHODS,
        ),
        Parameter("rollback_body", ParameterType.MAPPING, "JSON body of the rollback call."),
    )

    def check(self, parameters: dict[str, Any]) -> list[str]:
        problems = [
            f"{name}: must be an http or https URL"
            for name in ("url", "rollback_url")
            if parameters.get(name) and urlsplit(parameters[name]).scheme not in {"http", "https"}
        ]
        if any(not isinstance(value, str) for value in parameters.get("headers", {}).values()):
            problems.append("headers: every value must be text")
        statuses = parameters.get("expected_statuses")
        if statuses is not None and (
            not statuses or any(not isinstance(status, int) or not 100 <= status <= 599 for status in statuses)
        ):
            problems.append("expected_statuses: must list HTTP statuses (100-599)")
        return problems

    def run(self, context: StepContext) -> StepOutcome:
        parameters = context.parameters
        return self._call(context, parameters["method"], parameters["url"], parameters["body"], context.idempotency_key)

    def rollback(self, context: StepContext) -> StepOutcome:
        parameters = context.parameters
        if not parameters["rollback_url"]:
            return super().rollback(context)
        return self._call(
            context,
            parameters["rollback_method"],
            parameters["rollback_url"],
            parameters["rollback_body"],
            f"{context.idempotency_key}:rollback",
        )

    def _call(self, context: StepContext, method: str, url: str, body: Any, idempotency_key: str) -> StepOutcome:
        parameters = context.parameters
        headers = {**parameters["headers"], "Idempotency-Key": idempotency_key}
        result = send(context, method, url, headers=headers, json=body, timeout=parameters["timeout"])
        if isinstance(result, StepOutcome):
            return result
        if result.status in parameters["expected_statuses"]:
            return StepOutcome.succeeded(f"HTTP {result.status}", status=result.status, response=excerpt(result))
        return unexpected_status(context, result, "one of " + ", ".join(map(str, parameters["expected_statuses"])))
