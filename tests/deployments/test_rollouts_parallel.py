"""Parallel (blue/green) rollouts run by real Celery worker subprocesses against a local HTTP target server:
a cutover, a cut-back after a failed verification, and a worker killed during the cutover."""

from __future__ import annotations

from deployments import reconciler, services
from deployments.choices import DeploymentState, StepKind, StepState
from deployments.models import StepLog
from tests.deployments.test_parallel import blue_green, parallel_plan, planned
from tests.deployments.test_rollouts import LOCAL, manager, state_of, wait_for, worker  # noqa: F401 - fixtures
from tests.harness.processes import start_beat, wait_until

ENDED = ("succeeded", "failed", "rolled_back")


def blue_effects(land, target_server) -> dict[str, int]:
    return {
        path: n for path, n in target_server.effect_counts().items() if any(t.ci.name in path for t in land.targets[:2])
    }


def test_a_parallel_rollout_cuts_over_on_the_worker(worker, manager, target_server):  # noqa: F811
    land = blue_green(target_server)
    deployment = planned(land, manager, parallel_plan(target_server))

    services.deployment_start(deployment=deployment, actor=manager)
    deployment = wait_for(deployment, *ENDED, worker=worker)

    assert deployment.state == DeploymentState.SUCCEEDED
    assert target_server.effect_counts() == {
        **{f"/effects/{t.ci.name}": 1 for t in land.targets[2:]},
        "/effects/cutover": 1,
    }
    assert blue_effects(land, target_server) == {}
    for target in land.targets:
        target.ci.refresh_from_db()
    assert [t.ci.attributes["traffic"] for t in land.targets] == ["standby", "standby", "live", "live"]


def test_a_failed_verification_under_traffic_cuts_back_on_the_worker(worker, manager, target_server):  # noqa: F811
    # given a rollout that bakes two seconds before each verification
    land = blue_green(target_server)
    deployment = planned(land, manager, parallel_plan(target_server, bake_seconds=2))
    services.deployment_start(deployment=deployment, actor=manager)

    # when the service turns unhealthy once traffic is cut over
    def cut_over():
        reconciler.deployments_reconcile()  # as beat would: the bake ends
        return target_server.effect_count("/effects/cutover") == 1

    wait_until(cut_over, timeout=30, interval=0.2, what=worker.log())
    target_server.health_status = 503
    deployment = wait_for(deployment, *ENDED, worker=worker)

    # then it was cut back, once, and neither set was redeployed or undone
    assert deployment.state == DeploymentState.ROLLED_BACK
    assert "cutover to green failed" in deployment.outcome
    assert target_server.effect_counts() == {
        **{f"/effects/{t.ci.name}": 1 for t in land.targets[2:]},
        "/effects/cutover": 1,
        "/effects/cutback": 1,
    }
    assert blue_effects(land, target_server) == {}
    assert list(deployment.steps.filter(kind=StepKind.ROLLBACK).values_list("state", flat=True)) == ["succeeded"]


def test_a_worker_killed_during_the_cutover_applies_it_exactly_once(
    worker_factory,
    process_log_dir,
    manager,  # noqa: F811
    target_server,
):
    # given a cutover whose call answers three seconds after switching, short leases, and beat every second
    fast = {**LOCAL, "RDM_STEP_LEASE_SECONDS": "2", "RDM_RECONCILE_SECONDS": "1"}
    land = blue_green(target_server)
    plan = parallel_plan(target_server)
    plan["cutover"]["url"] = target_server.url("/effects/cutover?delay=3")
    deployment = planned(land, manager, plan)
    first = worker_factory(name="doomed", concurrency=1, **fast)
    beat = start_beat(process_log_dir, **fast)
    try:
        services.deployment_start(deployment=deployment, actor=manager)

        # when the worker is killed (SIGKILL) while the cutover call is under way, and a new one starts
        wait_until(lambda: target_server.effect_count("/effects/cutover") == 1, timeout=30, what=first.log())
        first.kill()
        second = worker_factory(name="rescuer", concurrency=1, **fast)
        wait_until(
            lambda: state_of(deployment) in ENDED, timeout=60, interval=0.3, what=f"{second.log()}\n{beat.log()}"
        )
    finally:
        beat.stop()

    # then the rollout succeeded and traffic was switched exactly once: the retry replayed the same key
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.SUCCEEDED
    assert target_server.effect_count("/effects/cutover") == 1
    cutover = deployment.steps.get(name="cut over to green")
    assert cutover.state == StepState.SUCCEEDED
    assert cutover.attempt > 1
    assert StepLog.objects.filter(step=cutover, message__contains="worker was lost").exists()
    assert len(target_server.requests_to("/effects/cutover")) == 2
