"""A stand-in target for demos and tests: latency, random failures and a failing target, reproducibly."""

import random
import time
from datetime import timedelta

from deployments.executors.base import Executor, Parameter, ParameterType, StepContext, StepOutcome

# Latencies up to this are slept in the call; longer ones are waits, so a worker is never held.
SLEEP_LIMIT_MS = 200


class SimulatorExecutor(Executor):
    """Whether a step fails is drawn from a generator seeded with the idempotency key.

    A retry of the same step (same key) therefore draws the same result, as a real broken target would.
    """

    name = "simulator"
    display_name = "Simulator"
    description = "Pretends to deploy: takes some time, fails at a given rate or on a named target."
    parameters_schema = (
        Parameter(
            "latency_ms", ParameterType.INTEGER, "How long the step takes.", default=0, minimum=0, maximum=3_600_000
        ),
        Parameter(
            "failure_rate", ParameterType.NUMBER, "Share of steps that fail, 0 to 1.", default=0.0, minimum=0, maximum=1
        ),
        Parameter(
            "fail_on_target", ParameterType.STRING, "Name of a target on which the step always fails.", default=""
        ),
    )

    def run(self, context: StepContext) -> StepOutcome:
        parameters = context.parameters
        latency_ms = parameters["latency_ms"]
        if latency_ms > SLEEP_LIMIT_MS:
            done_at = context.started_at + timedelta(milliseconds=latency_ms)
            if context.now < done_at:
                return StepOutcome.waiting(f"simulating {latency_ms} ms of work", until=done_at)
        else:
            time.sleep(latency_ms / 1000)
        if parameters["fail_on_target"] and context.target == parameters["fail_on_target"]:
            return StepOutcome.failed(f"simulated failure on target {context.target}")
        draw = random.Random(context.idempotency_key).random()  # noqa: S311 - reproducible, not secret
        if draw < parameters["failure_rate"]:
            return StepOutcome.failed(f"simulated failure (drew {draw:.3f} < {parameters['failure_rate']:g})")
        return StepOutcome.succeeded(f"simulated deployment to {context.target}")

    def rollback(self, context: StepContext) -> StepOutcome:
        return StepOutcome.succeeded(f"simulated rollback on {context.target}")
