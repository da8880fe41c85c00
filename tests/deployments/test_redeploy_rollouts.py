"""Rolling a release back (a blue/green one too) and starting a scheduled deployment when its window opens, with
real Celery workers (and beat) against a local HTTP target server."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from cmdb.selectors import version_matrix
from deployments import redeploy, services
from deployments.choices import DeploymentState
from deployments.models import Deployment, DeploymentEvent
from rdm_site.models import AuditEvent
from rdm_site.roles import Role
from releases.choices import ChangeState, ReleaseState
from tests.deployments.conftest import make_landscape
from tests.deployments.governed import Governed
from tests.deployments.test_reconciler import window_opening_at
from tests.deployments.test_redeploy import blue_green_release, earlier_success, traffic_and_versions
from tests.deployments.test_rollouts import LOCAL, state_of, wait_for
from tests.factories import UserFactory
from tests.harness.processes import start_beat, wait_until

FINISHED = ("succeeded", "failed", "rolled_back", "aborted")


def versions_in_production(governed: Governed) -> list[str]:
    row = next(row for row in version_matrix().rows if row.service == governed.world.service)
    cell = next(cell for cell in row.cells if cell.environment == governed.world.production)
    return cell.versions


def test_rolling_back_a_release_after_success_restores_the_previous_version_in_the_matrix(
    worker_factory, target_server
):
    # given 1.9 ran in production before, and release b1 succeeded on the worker: each target got one call per
    # version, through a health gate
    health = {"executor": "http_health", "parameters": {"url": target_server.url("/health")}}
    deploy = {"url": target_server.url("/effects/#{Target.Name}/#{Deployment.Version}")}
    governed = Governed(
        steps=[{"name": "deploy", "executor": "http_call", "parameters": deploy}], health_checks=[health]
    )
    earlier_success(governed)
    worker = worker_factory(concurrency=2, **LOCAL)
    release = governed.plan()
    services.deployment_start(deployment=release, actor=governed.dm)
    assert wait_for(release, *FINISHED, worker=worker).state == "succeeded"
    assert governed.world.reload().state == ReleaseState.EARLY_LIFE_SUPPORT
    assert versions_in_production(governed) == ["b1"]

    # when a P1 makes the Deployment Manager roll it back, on the fast path
    rollback = redeploy.deployment_roll_back_release(deployment=release, actor=governed.dm, reason="P1: checkout")
    rollback = wait_for(rollback, *FINISHED, worker=worker)

    # then 1.9 was deployed to every target once, without a health gate, and what runs where shows it again
    assert rollback.state == "succeeded", rollback.outcome
    names = [target.ci.name for target in governed.targets]
    counts = target_server.effect_counts()
    assert {path: counts[path] for path in counts if path.endswith("/1.9")} == {f"/effects/{n}/1.9": 1 for n in names}
    assert {path: counts[path] for path in counts if path.endswith("/b1")} == {f"/effects/{n}/b1": 1 for n in names}
    assert versions_in_production(governed) == ["1.9"]

    # and the release is rolled back, its change backed out, its early life support over
    assert governed.world.reload().state == ReleaseState.ROLLED_BACK
    governed.change.refresh_from_db()
    assert governed.change.state == ChangeState.BACKED_OUT
    assert release.early_life_support.state == "exited"


def test_rolling_back_a_blue_green_release_on_the_worker_cuts_traffic_back_once(
    worker_factory, target_server, local_outbound
):
    # given green serves b1 after a parallel deployment, and blue, on standby, still runs 1.9
    governed, release = blue_green_release(target_server, blue_runs="1.9")
    before = target_server.effect_counts()
    worker = worker_factory(concurrency=2, **LOCAL)

    # when b1 is rolled back on the worker
    rollback = redeploy.deployment_roll_back_release(deployment=release, actor=governed.dm, reason="P1: checkout")
    rollback = wait_for(rollback, *FINISHED, worker=worker)

    # then the only call was the one cutting traffic back to blue, and the CMDB says blue serves 1.9 again
    assert rollback.state == "succeeded", rollback.outcome
    after = target_server.effect_counts()
    assert {path: after[path] - before.get(path, 0) for path in after if after[path] != before.get(path)} == {
        "/effects/to-blue": 1
    }
    assert traffic_and_versions(governed) == [("live", "1.9")] * 2 + [("standby", "b1")] * 2
    assert governed.world.reload().state == ReleaseState.ROLLED_BACK


def test_a_scheduled_deployment_starts_when_its_window_opens_and_logs_its_wait_once(
    worker_factory, process_log_dir, transactional_db
):
    # given a deployment scheduled for now, in a window that then moves to open in eight seconds
    land = make_landscape(targets=2)
    manager = UserFactory(roles=[Role.DEPLOYMENT_MANAGER])
    window = window_opening_at(timezone.now() - timedelta(minutes=5), land.environment)
    deployment = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    services.deployment_schedule(deployment=deployment, actor=manager, scheduled_for=timezone.now())
    opening = timezone.now().replace(microsecond=0) + timedelta(seconds=8)
    window_opening_at(opening, land.environment)
    window.delete()

    # when Celery beat runs the reconciler every second on a real worker
    every_second = {**LOCAL, "RDM_RECONCILE_SECONDS": "1"}
    worker = worker_factory(concurrency=2, **every_second)
    beat = start_beat(process_log_dir, **every_second)
    try:
        wait_until(
            lambda: Deployment.objects.get(pk=deployment.pk).start_wait,
            timeout=20,
            what=f"the wait to be recorded\n{worker.log()}",
        )
        assert state_of(deployment) == DeploymentState.SCHEDULED
        wait_until(
            lambda: state_of(deployment) in FINISHED, timeout=40, interval=0.3, what=f"{worker.log()}\n{beat.log()}"
        )
    finally:
        beat.stop()

    # then it said once what it waited for, though the reconciler looked every second, and started within one
    # period of the opening (and a little for the worker to pick the task up)
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.SUCCEEDED
    waits = AuditEvent.objects.filter(action="deployment.wait", object_id=str(deployment.pk))
    assert waits.count() == 1
    assert waits.get().reason.startswith("waits for the window opening at ")
    assert waits.get().reason.endswith(" Europe/Paris")
    assert DeploymentEvent.objects.filter(deployment=deployment, message=waits.get().reason).count() == 1
    assert worker.log().count("deployments_reconcile_task") >= 4, "the reconciler looked while it waited"
    start = AuditEvent.objects.get(action="deployment.start", object_id=str(deployment.pk))
    assert opening <= start.occurred_at < opening + timedelta(seconds=3)
