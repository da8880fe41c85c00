"""Pause a rollout for a fixed time (let caches warm, let a canary take traffic)."""

from datetime import timedelta

from deployments.executors.base import Executor, Parameter, ParameterType, StepContext, StepOutcome


class WaitExecutor(Executor):
    """Counts from ``started_at``, so a step polled again (or re-run after a lost worker) does not restart the clock."""

    name = "wait"
    display_name = "Wait"
    description = "Waits a number of seconds, without holding a worker."
    parameters_schema = (
        Parameter(
            "duration_seconds",
            ParameterType.INTEGER,
            "How long to wait.",
            required=True,
            minimum=0,
            maximum=7 * 24 * 3600,
        ),
    )

    def run(self, context: StepContext) -> StepOutcome:
        due = context.started_at + timedelta(seconds=context.parameters["duration_seconds"])
        if context.now >= due:
            return StepOutcome.succeeded(f"waited {context.parameters['duration_seconds']} s")
        return StepOutcome.waiting(f"waiting until {due.isoformat()}", until=due)
