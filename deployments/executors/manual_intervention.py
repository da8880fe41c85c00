"""Stop the rollout until a person confirms something only a person can check."""

from datetime import timedelta

from deployments.executors.base import Executor, Parameter, ParameterType, StepContext, StepOutcome

PROCEED = "proceed"
ABORT = "abort"


class ManualInterventionExecutor(Executor):
    """Waits for ``context.answer``, which the orchestrator records when a Deployment Manager answers.

    An answer decides whenever it is read; with none, the step waits until the deadline and then fails,
    since a rollout must not stay half-done because nobody looked.
    """

    name = "manual_intervention"
    display_name = "Manual intervention"
    description = "Waits for a person to proceed or abort; fails when nobody answers before the deadline."
    parameters_schema = (
        Parameter("instructions", ParameterType.STRING, "What the person must check or do.", required=True),
        Parameter(
            "deadline_minutes",
            ParameterType.INTEGER,
            "Minutes to answer in.",
            default=60,
            minimum=1,
            maximum=7 * 24 * 60,
        ),
    )

    def run(self, context: StepContext) -> StepOutcome:
        if context.answer == PROCEED:
            return StepOutcome.succeeded("answered: proceed")
        if context.answer == ABORT:
            return StepOutcome.failed("answered: abort")
        if context.answer is not None:
            return StepOutcome.failed(f"unknown answer {context.answer!r} (expected {PROCEED} or {ABORT})")
        deadline = context.started_at + timedelta(minutes=context.parameters["deadline_minutes"])
        if context.now >= deadline:
            return StepOutcome.failed(f"deadline passed at {deadline.isoformat()} without an answer")
        return StepOutcome.waiting(context.parameters["instructions"], until=deadline, deadline=deadline.isoformat())
