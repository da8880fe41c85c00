"""The reconciler re-drives what came due or lost its worker, and looks at nothing else."""

from datetime import timedelta

from django.utils import timezone

from deployments import engine, reconciler, services
from deployments.choices import DeploymentState, StepState
from deployments.engine import runner
from deployments.models import Deployment, Step
from tests.deployments.conftest import drive


def started(land, actor) -> Deployment:
    deployment = services.deployment_create(actor=actor, process=land.process, environment=land.environment)
    return services.deployment_start(deployment=deployment, actor=actor)


def test_a_finished_deployment_with_a_step_left_open_is_re_driven_and_the_step_skipped(
    landscape, manager, django_capture_on_commit_callbacks
):
    # given an aborted deployment whose step a worker held when it was aborted, and then lost
    land = landscape(targets=1)
    deployment = started(land, manager)
    engine.deployment_advance(deployment_id=deployment.pk)
    step = deployment.steps.get()
    runner._claim(deployment.pk, [step.pk], "dead-worker")
    services.deployment_abort(deployment=deployment, actor=manager, reason="stop")
    Step.objects.filter(pk=step.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    # when the reconciler looks
    with django_capture_on_commit_callbacks() as queued:
        assert reconciler.deployments_reconcile() == {"started": 0, "advanced": 1}
    assert len(queued) == 1
    engine.deployment_advance(deployment_id=deployment.pk)

    # then the step is skipped, and the next look finds nothing to do
    step.refresh_from_db()
    assert step.state == StepState.SKIPPED
    assert reconciler.deployments_reconcile() == {"started": 0, "advanced": 0}


def test_finished_planned_and_operator_paused_deployments_are_left_alone(landscape, manager):
    # given deployments that finished, one that is planned, and one an operator paused with a step due
    land = landscape(targets=1)
    for _ in range(3):
        assert drive(started(land, manager)).state == DeploymentState.SUCCEEDED
    services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    paused = started(land, manager)
    engine.deployment_advance(deployment_id=paused.pk)
    services.deployment_pause(deployment=paused, actor=manager, reason="lunch")
    Step.objects.filter(deployment=paused).update(lease_owner="", due_at=timezone.now() - timedelta(seconds=1))
    Deployment.objects.filter(pk=paused.pk).update(due_at=timezone.now() - timedelta(seconds=1))

    # when the reconciler looks, then it advances none of them
    assert reconciler.deployments_reconcile() == {"started": 0, "advanced": 0}


def test_a_running_deployment_whose_check_came_due_is_advanced(landscape, manager):
    land = landscape(targets=1)
    deployment = started(land, manager)
    engine.deployment_advance(deployment_id=deployment.pk)
    Deployment.objects.filter(pk=deployment.pk).update(due_at=timezone.now() - timedelta(seconds=1))

    assert reconciler.deployments_reconcile() == {"started": 0, "advanced": 1}
