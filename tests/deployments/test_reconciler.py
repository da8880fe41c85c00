"""The reconciler re-drives what came due or lost its worker, and looks at nothing else."""

import time
from datetime import timedelta
from zoneinfo import ZoneInfo

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
        assert reconciler.deployments_reconcile() == {"started": 0, "advanced": 1, "promoted": 0}
    assert len(queued) == 1
    engine.deployment_advance(deployment_id=deployment.pk)

    # then the step is skipped, and the next look finds nothing to do
    step.refresh_from_db()
    assert step.state == StepState.SKIPPED
    assert reconciler.deployments_reconcile() == {"started": 0, "advanced": 0, "promoted": 0}


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
    assert reconciler.deployments_reconcile() == {"started": 0, "advanced": 0, "promoted": 0}


def test_a_running_deployment_whose_check_came_due_is_advanced(landscape, manager):
    land = landscape(targets=1)
    deployment = started(land, manager)
    engine.deployment_advance(deployment_id=deployment.pk)
    Deployment.objects.filter(pk=deployment.pk).update(due_at=timezone.now() - timedelta(seconds=1))

    assert reconciler.deployments_reconcile() == {"started": 0, "advanced": 1, "promoted": 0}


def window_opening_at(opening, environment, zone: str = "Europe/Paris"):
    """A daily window of ``environment`` that opens at ``opening`` (as read in ``zone``) for an hour."""
    from releases.recurrence import zone as time_zone
    from tests.releases.factories import WindowFactory

    local = opening.astimezone(time_zone(zone))
    return WindowFactory(
        first_date=local.date() - timedelta(days=1),
        start_time=local.time().replace(microsecond=0),
        rrule="FREQ=DAILY",
        duration=timedelta(hours=1),
        time_zone=zone,
        environments=[environment],
    )


def test_a_scheduled_deployment_waits_for_its_window_says_so_once_and_starts_when_it_opens(
    landscape, manager, django_capture_on_commit_callbacks
):
    from rdm_site.models import AuditEvent

    # given a deployment scheduled for now in a window open now, whose window then moves to open in 2 seconds
    land = landscape(targets=1)
    now = timezone.now()
    window = window_opening_at(now - timedelta(minutes=5), land.environment)
    deployment = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    services.deployment_schedule(deployment=deployment, actor=manager, scheduled_for=now)
    opening = (now + timedelta(seconds=2)).replace(microsecond=0) + timedelta(seconds=1)
    moved = window_opening_at(opening, land.environment)
    window.delete()

    # when the reconciler looks three times before the opening
    for _ in range(3):
        assert reconciler.deployments_reconcile()["started"] == 0

    # then the deployment says what it waits for, in the window's zone, and said it once
    deployment.refresh_from_db()
    local = opening.astimezone(ZoneInfo(moved.time_zone))
    assert deployment.state == DeploymentState.SCHEDULED
    assert deployment.start_wait == f"waits for the window opening at {local:%a %Y-%m-%d %H:%M} Europe/Paris"
    assert deployment.start_not_before == opening
    waits = AuditEvent.objects.filter(action="deployment.wait", object_id=str(deployment.pk))
    assert list(waits.values_list("reason", flat=True)) == [deployment.start_wait]
    assert deployment.events.filter(message=deployment.start_wait).count() == 1

    # and when the window opens, the next look starts it
    while timezone.now() < opening:
        time.sleep(0.1)
    with django_capture_on_commit_callbacks(execute=False):
        assert reconciler.deployments_reconcile()["started"] == 1
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.QUEUED
    assert (deployment.start_wait, deployment.start_not_before) == ("", None)
