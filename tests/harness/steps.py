"""Executor calls as the orchestrator will make them, without the database."""

from datetime import UTC, datetime
from typing import Any

from deployments.executors.base import Executor, StepContext

STARTED_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def step_context(executor: Executor, parameters: dict[str, Any], **fields: Any) -> StepContext:
    """A context for the step's first call, with validated parameters; ``fields`` override the defaults."""
    defaults = {
        "step_id": 1,
        "deployment_id": 1,
        "target": "web-1",
        "target_attributes": {},
        "idempotency_key": "deployment-1-step-1",
        "attempt": 1,
        "started_at": STARTED_AT,
        "now": STARTED_AT,
        "log": lambda message: None,
    }
    return StepContext(parameters=executor.validate(parameters), **{**defaults, **fields})
