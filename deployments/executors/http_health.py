"""Check a target's health endpoint: the gate between waves and the proof a step worked."""

from deployments.executors.base import Executor, Parameter, ParameterType, StepContext, StepOutcome
from deployments.executors.http_support import TIMEOUT_PARAMETER, excerpt, send


class HttpHealthExecutor(Executor):
    """Fails when the status or body is not as expected. Only an unreachable target is a transient failure."""

    name = "http_health"
    display_name = "HTTP health check"
    description = "GETs a URL and expects a status and, optionally, a piece of text in the body."
    parameters_schema = (
        Parameter(
            "url", ParameterType.STRING, "URL to check (its host must be allowed for outbound HTTP).", required=True
        ),
        Parameter(
            "expected_status",
            ParameterType.INTEGER,
            "Status of a healthy target.",
            default=200,
            minimum=100,
            maximum=599,
        ),
        Parameter("body_contains", ParameterType.STRING, "Text a healthy response contains; none means any body."),
        TIMEOUT_PARAMETER,
    )

    def run(self, context: StepContext) -> StepOutcome:
        parameters = context.parameters
        result = send(context, "GET", parameters["url"], timeout=parameters["timeout"])
        if isinstance(result, StepOutcome):
            return result
        output = {"status": result.status, "response": excerpt(result)}
        if result.status != parameters["expected_status"]:
            return StepOutcome.failed(
                f"unhealthy: HTTP {result.status}, expected {parameters['expected_status']}", **output
            )
        expected_text = parameters["body_contains"]
        if expected_text and expected_text not in result.body.decode(errors="replace"):
            return StepOutcome.failed(f"unhealthy: the response does not contain {expected_text!r}", **output)
        return StepOutcome.succeeded(f"healthy: HTTP {result.status}", **output)
