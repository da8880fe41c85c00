"""What the HTTP executors share: outbound errors and unexpected statuses turned into step outcomes."""

from typing import Any

from deployments.executors.base import (
    RETRY_MAX_SECONDS,
    Parameter,
    ParameterType,
    StepContext,
    StepOutcome,
    backoff,
)
from rdm_site.outbound import OutboundFailed, OutboundRefused, OutboundResponse, outbound_request

# A step's HTTP call must finish well inside the Celery task's soft time limit (90 s).
TIMEOUT_PARAMETER = Parameter(
    "timeout", ParameterType.NUMBER, "Seconds to wait for each network operation.", default=10, minimum=0.1, maximum=60
)
# Worth retrying: the server is overloaded, restarting or asks us to slow down.
TRANSIENT_CLIENT_STATUSES = {408, 425, 429}
EXCERPT_CHARS = 2000


def send(context: StepContext, method: str, url: str, **kwargs: Any) -> OutboundResponse | StepOutcome:
    """The response, or the failed outcome when the request was refused (permanent) or failed (transient)."""
    context.log(f"{method} {url}")
    try:
        response = outbound_request(method, url, **kwargs)
    except OutboundRefused as error:
        return StepOutcome.failed(f"refused by the outbound policy: {error.reason}")
    except OutboundFailed as error:
        return StepOutcome.failed(str(error), retry_after=backoff(context.attempt))
    context.log(f"HTTP {response.status} in {response.elapsed:.3f} s")
    return response


def unexpected_status(context: StepContext, response: OutboundResponse, expected: str) -> StepOutcome:
    """Failed: transient for 5xx and 408/425/429 (honouring Retry-After), permanent for anything else."""
    message = f"HTTP {response.status}, expected {expected}"
    output = {"status": response.status, "response": excerpt(response)}
    if response.status >= 500 or response.status in TRANSIENT_CLIENT_STATUSES:
        return StepOutcome.failed(message, retry_after=_retry_after(response, context.attempt), **output)
    return StepOutcome.failed(message, **output)


def excerpt(response: OutboundResponse) -> str:
    return response.body[:EXCERPT_CHARS].decode(errors="replace")


def _retry_after(response: OutboundResponse, attempt: int) -> float:
    """The server's Retry-After in seconds when it gives one (capped like our backoff), else our backoff."""
    value = response.headers.get("retry-after", "")
    if value.isdigit():
        return min(float(value), RETRY_MAX_SECONDS)
    return backoff(attempt)
