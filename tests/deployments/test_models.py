"""State-machine matrices: every (state, transition) pair of Deployment, Wave and Step, allowed or refused."""

import pytest
from django_fsm import can_proceed

from deployments.choices import DeploymentState, StepState, WaveState
from deployments.models import Deployment, Step, Wave

D = DeploymentState
DEPLOYMENT_ALLOWED = {
    "schedule": {D.PLANNED: D.SCHEDULED},
    "start": {D.PLANNED: D.QUEUED, D.SCHEDULED: D.QUEUED},
    "run": {D.QUEUED: D.RUNNING},
    "pause": {D.RUNNING: D.PAUSED},
    "resume": {D.PAUSED: D.RUNNING},
    "succeed": {D.RUNNING: D.SUCCEEDED},
    "fail": {D.RUNNING: D.FAILED, D.PAUSED: D.FAILED, D.ROLLING_BACK: D.FAILED},
    "roll_back": {D.RUNNING: D.ROLLING_BACK, D.PAUSED: D.ROLLING_BACK, D.FAILED: D.ROLLING_BACK},
    "finish_rollback": {D.ROLLING_BACK: D.ROLLED_BACK},
    "abort": dict.fromkeys((D.PLANNED, D.SCHEDULED, D.QUEUED, D.RUNNING, D.PAUSED, D.ROLLING_BACK), D.ABORTED),
}
W = WaveState
WAVE_ALLOWED = {
    "start": {W.PENDING: W.RUNNING},
    "verify": {W.RUNNING: W.VERIFYING},
    "pass_": {W.VERIFYING: W.PASSED},
    "fail": {W.RUNNING: W.FAILED, W.VERIFYING: W.FAILED},
}
S = StepState
STEP_ALLOWED = {
    "start": {S.PENDING: S.RUNNING},
    "succeed": {S.RUNNING: S.SUCCEEDED},
    "fail": {S.RUNNING: S.FAILED},
    "skip": {S.PENDING: S.SKIPPED, S.RUNNING: S.SKIPPED},
}


def matrix(states, allowed):
    return [
        pytest.param(state, transition, allowed[transition].get(state), id=f"{state}-{transition}")
        for state in states
        for transition in allowed
    ]


@pytest.mark.parametrize(("state", "transition", "target"), matrix(DeploymentState, DEPLOYMENT_ALLOWED))
def test_deployment_state_machine(state, transition, target):
    # given a deployment in ``state``
    deployment = Deployment(state=state)
    method = getattr(deployment, transition)

    # when the transition is tried, then it is allowed exactly as the table says, and lands where it says
    assert can_proceed(method) == (target is not None)
    if target is not None:
        method()
        assert deployment.state == target


@pytest.mark.parametrize(("state", "transition", "target"), matrix(WaveState, WAVE_ALLOWED))
def test_wave_state_machine(state, transition, target):
    wave = Wave(state=state)
    method = getattr(wave, transition)
    assert can_proceed(method) == (target is not None)
    if target is not None:
        method()
        assert wave.state == target


@pytest.mark.parametrize(("state", "transition", "target"), matrix(StepState, STEP_ALLOWED))
def test_step_state_machine(state, transition, target):
    step = Step(state=state)
    method = getattr(step, transition)
    assert can_proceed(method) == (target is not None)
    if target is not None:
        method()
        assert step.state == target


def test_the_state_field_cannot_be_assigned_by_hand():
    deployment = Deployment(state=DeploymentState.RUNNING)
    with pytest.raises(AttributeError):
        deployment.state = DeploymentState.SUCCEEDED


def test_a_step_keeps_its_first_start_time_across_calls():
    # given a step started once, then (after its worker was lost) started again from a fresh copy
    step = Step(state=StepState.PENDING)
    step.start()
    first = step.started_at
    again = Step(state=StepState.PENDING, started_at=first)
    again.start()
    # then waits and deadlines still count from the first start
    assert again.started_at == first
    assert again.attempt == 1
