"""Rollouts run by real Celery worker subprocesses, against a local HTTP target server.

The test process plays Celery beat by calling the reconciler while it waits (``Rollout.wait``); the test of a
killed worker runs the real beat instead.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from deployments import reconciler, services
from deployments.choices import DeploymentState, PauseKind, StepKind, StepState
from deployments.models import Deployment, DeploymentEvent, Step, StepLog, Target
from rdm_site.exceptions import UnmetConditions
from rdm_site.models import AuditEvent
from releases.choices import ChangeState, ReleaseState
from tests.deployments.conftest import make_landscape
from tests.deployments.factories import CiFactory
from tests.deployments.governed import Governed
from tests.factories import UserFactory
from tests.harness.processes import start_beat, wait_until
from tests.releases.factories import FreezeFactory

LOCAL = {"OUTBOUND_ALLOWED_HOSTS": "localhost,127.0.0.1", "OUTBOUND_ALLOW_PRIVATE_NETWORKS": "true"}


@pytest.fixture
def worker(worker_factory):
    return worker_factory(concurrency=2, **LOCAL)


@pytest.fixture
def manager(transactional_db):
    from rdm_site.roles import Role

    return UserFactory(username="dm", roles=[Role.DEPLOYMENT_MANAGER])


def state_of(deployment: Deployment) -> str:
    return Deployment.objects.values_list("state", flat=True).get(pk=deployment.pk)


def wait_for(deployment: Deployment, *states: str, worker=None, timeout: float = 30) -> Deployment:
    """Wait until the deployment reaches one of ``states``, running the reconciler (as beat would) meanwhile."""

    def reached():
        reconciler.deployments_reconcile()
        return state_of(deployment) in states

    log = (lambda: worker.log()) if worker else (lambda: "")
    try:
        wait_until(reached, timeout=timeout, interval=0.3, what=f"deployment #{deployment.pk} to be {states}")
    except AssertionError as error:
        raise AssertionError(f"{error}; it is {state_of(deployment)}\n{log()}") from None
    deployment.refresh_from_db()
    return deployment


def effect_steps(target_server, **template):
    return [
        {
            "name": "deploy",
            "executor": "http_call",
            "parameters": {
                "url": target_server.url("/effects/#{Target.Name}"),
                "rollback_url": target_server.url("/effects/undo-#{Target.Name}"),
            },
            **template,
        }
    ]


def test_big_bang_and_phased_rollouts_complete_with_each_effect_once(worker, manager, target_server):
    # given six targets that each get one HTTP call
    land = make_landscape(targets=6, steps=effect_steps(target_server))
    names = [target.ci.name for target in land.targets]

    # when a big bang and then a phased rollout run on the worker
    big_bang = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    services.deployment_start(deployment=big_bang, actor=manager)
    assert wait_for(big_bang, "succeeded", "failed", "rolled_back", worker=worker).state == "succeeded"
    phased = services.deployment_create(
        actor=manager,
        process=land.process,
        environment=land.environment,
        model="phased",
        phase_plan={"canary": 1, "percentages": [50, 100]},
    )
    services.deployment_start(deployment=phased, actor=manager)
    phased = wait_for(phased, "succeeded", "failed", "rolled_back", worker=worker)

    # then both succeeded, wave after wave, and each call reached its target once per deployment
    assert phased.state == "succeeded"
    assert list(phased.waves.values_list("state", flat=True)) == ["passed", "passed", "passed"]
    assert target_server.effect_counts() == {f"/effects/{name}": 2 for name in names}
    seqs = list(DeploymentEvent.objects.filter(deployment=phased).values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))


def test_a_rollout_outside_production_updates_the_versions_of_the_cis_it_deployed(worker, manager, target_server):
    # given two CIs of a test environment at 1.0.0, and a third of the same service elsewhere
    land = make_landscape(targets=2, steps=effect_steps(target_server))
    elsewhere = CiFactory(name="elsewhere", service=land.service, version="1.0.0")

    # when 2.0.0 is deployed to the test environment by the worker
    deployment = services.deployment_create(
        actor=manager, process=land.process, environment=land.environment, version="2.0.0"
    )
    services.deployment_start(deployment=deployment, actor=manager)
    assert wait_for(deployment, "succeeded", "failed", "rolled_back", worker=worker).state == "succeeded"

    # then what runs where is true in that environment, and only there
    versions = {target.ci.name: target.ci.version for target in Target.objects.select_related("ci")}
    assert versions == {target.ci.name: "2.0.0" for target in land.targets}
    elsewhere.refresh_from_db()
    assert elsewhere.version == "1.0.0"
    edits = AuditEvent.objects.filter(action="ci.update", reason=f"deployed by deployment #{deployment.pk}")
    assert edits.count() == 2


def test_a_failed_health_gate_in_wave_two_rolls_back_waves_two_and_one(worker_factory, target_server):
    # given a governed production rollout in waves of 1, 1 and 2, whose targets' health endpoints are named
    # by a CI attribute: the second target is unhealthy
    health = {"executor": "http_health", "parameters": {"url": target_server.url("#{Target.health}")}}
    governed = Governed(steps=effect_steps(target_server), health_checks=[{**health, "per_target": True}])
    for n, target in enumerate(governed.targets):
        target.ci.attributes = {"health": "/status/503" if n == 1 else "/health"}
        target.ci.save()
    worker = worker_factory(concurrency=2, **LOCAL)
    deployment = governed.plan(model="phased", phase_plan={"canary": 1, "percentages": [50, 100]})
    services.deployment_start(deployment=deployment, actor=governed.dm)

    # when it runs
    deployment = wait_for(deployment, "succeeded", "failed", "rolled_back", worker=worker)

    # then wave 2's gate failed, wave 3 never ran, and waves 2 then 1 were rolled back
    assert deployment.state == DeploymentState.ROLLED_BACK
    assert "health gate of wave 2" in deployment.outcome
    assert list(deployment.waves.values_list("state", flat=True)) == ["passed", "failed", "pending"]
    undone = [request.path for request in target_server.requests if request.path.startswith("/effects/undo-")]
    assert undone == ["/effects/undo-shop-1", "/effects/undo-shop-0"], "the last wave first"
    assert target_server.effect_count("/effects/shop-2") == 0

    # and the change and the release record it
    governed.change.refresh_from_db()
    assert governed.change.state == ChangeState.BACKED_OUT
    release = governed.world.reload()
    assert release.state == ReleaseState.ROLLED_BACK
    assert "health gate" in release.end_reason


def test_a_metric_gate_reads_prometheus(worker, manager, target_server):
    # given a wave gate on an error-rate query against the target server's Prometheus API
    gate = {
        "executor": "prometheus_gate",
        "parameters": {
            "prometheus_url": target_server.url(""),
            "query": 'sum(rate(http_errors_total{service="#{Service.Name}"}[5m]))',
            "operator": "<",
            "threshold": 0.5,
        },
    }
    land = make_landscape(targets=2, health_checks=[gate])

    # when the metric is low, the rollout passes its gate
    target_server.metric_value = 0.1
    first = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    services.deployment_start(deployment=first, actor=manager)
    assert wait_for(first, "succeeded", "rolled_back", worker=worker).state == "succeeded"
    queries = target_server.requests_to("/api/v1/query")
    assert len(queries) == 1
    assert f"http_errors_total%7Bservice%3D%22{land.service.name}%22%7D" in queries[0].path

    # and when it is high, the gate fails and the rollout is rolled back
    target_server.metric_value = 3.0
    second = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    services.deployment_start(deployment=second, actor=manager)
    second = wait_for(second, "succeeded", "rolled_back", worker=worker)
    assert second.state == "rolled_back"
    gate_step = second.steps.get(kind=StepKind.GATE)
    assert gate_step.message == "3 is not < 0.5"
    assert gate_step.output["value"] == 3.0


INTERVENTION = {
    "name": "confirm",
    "executor": "manual_intervention",
    "run_once": True,
    "parameters": {"instructions": "Look at the dashboard", "deadline_minutes": 30},
}


def test_a_manual_intervention_pauses_is_answered_and_resumes(worker, manager):
    land = make_landscape(targets=2, steps=[{"name": "deploy", "executor": "simulator"}, INTERVENTION])
    deployment = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    services.deployment_start(deployment=deployment, actor=manager)

    deployment = wait_for(deployment, "paused", worker=worker)
    assert deployment.pause_kind == PauseKind.INTERVENTION
    assert "Look at the dashboard" in deployment.pause_reason

    step = deployment.steps.get(executor="manual_intervention")
    services.step_answer(step=step, actor=manager, answer="proceed", reason="graphs are flat")
    deployment = wait_for(deployment, "succeeded", "rolled_back", worker=worker)
    assert deployment.state == "succeeded"
    actions = list(
        AuditEvent.objects.filter(object_id=str(deployment.pk)).values_list("action", "actor_label", "to_state")
    )
    assert ("deployment.pause", "system", "paused") in actions
    assert AuditEvent.objects.get(action="step.answer", object_id=str(step.pk)).actor_label == "dm"
    assert ("deployment.resume", "dm", "running") in actions


def test_an_intervention_whose_deadline_passes_fails_its_step(worker, manager):
    land = make_landscape(targets=1, steps=[{"name": "deploy", "executor": "simulator"}, INTERVENTION])
    deployment = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    services.deployment_start(deployment=deployment, actor=manager)
    deployment = wait_for(deployment, "paused", worker=worker)
    step = deployment.steps.get(executor="manual_intervention")

    # when 31 minutes have passed since it started (its due time is its deadline)
    past = timezone.now() - timedelta(minutes=31)
    Step.objects.filter(pk=step.pk).update(started_at=past, deadline=past + timedelta(minutes=30), due_at=past)

    # then nobody may answer any more, and the reconciler has the step fail and the rollout roll back
    with pytest.raises(UnmetConditions, match="deadline passed"):
        services.step_answer(step=step, actor=manager, answer="proceed")
    deployment = wait_for(deployment, "rolled_back", "failed", worker=worker)
    step.refresh_from_db()
    assert step.state == StepState.FAILED
    assert "deadline passed" in step.message


def test_abort_lets_only_the_steps_under_way_finish(worker_factory, manager):
    # given 40 targets whose step takes 0.1 s, at most four of them at once, on two worker processes
    worker = worker_factory(concurrency=2, RDM_DEPLOYMENT_STEP_CONCURRENCY="4", **LOCAL)
    land = make_landscape(
        targets=40, steps=[{"name": "deploy", "executor": "simulator", "parameters": {"latency_ms": 100}}]
    )
    deployment = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    services.deployment_start(deployment=deployment, actor=manager)
    wait_until(lambda: deployment.steps.filter(state=StepState.SUCCEEDED).count() >= 4, timeout=30, what=worker.log())

    # when it is aborted mid-way
    services.deployment_abort(deployment=deployment, actor=manager, reason="wrong build")
    aborted_at = timezone.now()

    # then at most the four steps under way finish; no other step starts
    def settled():
        return not deployment.steps.filter(state__in=[StepState.PENDING, StepState.RUNNING]).exists()

    wait_until(settled, timeout=30, what="every step to be finished or skipped")
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.ABORTED
    after = deployment.steps.filter(state=StepState.SUCCEEDED, finished_at__gt=aborted_at).count()
    assert after <= 4
    skipped = deployment.steps.filter(state=StepState.SKIPPED).count()
    assert skipped >= 40 - 4 - deployment.steps.filter(state=StepState.SUCCEEDED).count()
    assert skipped > 20


def test_a_freeze_beginning_mid_rollout_pauses_it_before_the_next_wave(worker_factory):
    governed = Governed()
    worker = worker_factory(concurrency=2, **LOCAL)
    deployment = governed.plan(model="phased", phase_plan={"canary": 1, "percentages": [100], "bake_seconds": 2})
    services.deployment_start(deployment=deployment, actor=governed.dm)
    wait_until(lambda: deployment.waves.get(index=0).state == "verifying", timeout=30, what=worker.log())

    # when a freeze begins while the first wave bakes
    FreezeFactory(name="payments incident", start=timezone.now(), environments=[governed.world.production])

    # then the rollout pauses before the second wave, saying why
    deployment = wait_for(deployment, "paused", "succeeded", worker=worker)
    assert deployment.state == "paused"
    assert deployment.pause_kind == PauseKind.FREEZE
    assert "inside freeze payments incident" in deployment.pause_reason
    assert list(deployment.waves.values_list("state", flat=True)) == ["passed", "pending"]


def test_a_worker_killed_during_concurrent_steps_loses_nothing_and_applies_each_effect_once(
    worker_factory, process_log_dir, manager, target_server
):
    # given 48 targets whose call takes 0.3 s to answer (after its effect), one worker process running eight
    # of them at once, short leases, and Celery beat running the reconciler every second
    fast = {
        **LOCAL,
        "RDM_STEP_LEASE_SECONDS": "2",
        "RDM_RECONCILE_SECONDS": "1",
        "RDM_STEP_CONCURRENCY": "8",
        "RDM_DEPLOYMENT_STEP_CONCURRENCY": "8",
    }
    steps = [
        {
            "name": "deploy",
            "executor": "http_call",
            "parameters": {"url": target_server.url("/effects/#{Target.Name}?delay=0.3")},
        }
    ]
    land = make_landscape(targets=48, steps=steps)
    first = worker_factory(name="doomed", concurrency=1, **fast)
    beat = start_beat(process_log_dir, **fast)
    try:
        deployment = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
        services.deployment_start(deployment=deployment, actor=manager)

        # when the worker is killed (SIGKILL) while several calls are under way, then a new one is started
        wait_until(lambda: sum(target_server.effect_counts().values()) >= 6, timeout=30, what=first.log())
        first.kill()
        applied_when_killed = sum(target_server.effect_counts().values())
        assert applied_when_killed < 48, "killed mid-rollout"
        under_way = deployment.steps.filter(state=StepState.RUNNING).exclude(lease_owner__in=["", "queued"])
        assert under_way.count() > 1, "several steps were under way at once"
        second = worker_factory(name="rescuer", concurrency=1, **fast)

        def finished():
            return state_of(deployment) in ("succeeded", "failed", "rolled_back")

        wait_until(finished, timeout=60, interval=0.3, what=f"{second.log()}\n{beat.log()}")
    finally:
        beat.stop()

    # then the rollout finished, every step succeeded, and every target got its effect exactly once
    deployment.refresh_from_db()
    assert deployment.state == "succeeded"
    assert set(deployment.steps.values_list("state", flat=True)) == {StepState.SUCCEEDED}
    assert target_server.effect_counts() == {f"/effects/{t.ci.name}": 1 for t in land.targets}
    # (the steps caught under way ran again, with the same keys, and the target replayed their effects)
    rerun = deployment.steps.filter(attempt__gt=1)
    assert rerun.count() > 1
    assert StepLog.objects.filter(step__in=rerun, message__contains="worker was lost").count() == rerun.count()


def test_a_secret_never_appears_in_logs_outputs_audit_or_admin_pages(worker, manager, target_server, client):
    secret = "s3cr3t-deploy-token"
    land = make_landscape(
        targets=2,
        steps=[
            {
                "name": "deploy",
                "executor": "http_call",
                "parameters": {
                    "url": target_server.url("/effects/#{Target.Name}?token=#{Token}"),
                    "headers": {"Authorization": "Bearer #{Token}"},
                    "body": {"token": "#{Token}"},
                },
            }
        ],
    )
    services.variable_set(actor=manager, service=land.service, name="Token", value=secret, is_secret=True)
    deployment = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    services.deployment_start(deployment=deployment, actor=manager)
    assert wait_for(deployment, "succeeded", "rolled_back", worker=worker).state == "succeeded"
    assert all(request.headers["Authorization"] == f"Bearer {secret}" for request in target_server.requests)

    written = [
        *(str(row) for row in Step.objects.values_list("parameters", "output", "message")),
        *StepLog.objects.values_list("message", flat=True),
        *DeploymentEvent.objects.values_list("message", flat=True),
        *(str(row) for row in AuditEvent.objects.values_list("reason", "changes", "object_repr")),
    ]
    assert not [text for text in written if secret in text]
    assert any("token=********" in text for text in StepLog.objects.values_list("message", flat=True))

    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    for name in ("step", "steplog", "variable", "deployment", "deploymentevent"):
        page = client.get(reverse(f"admin:deployments_{name}_changelist"))
        assert page.status_code == 200
        assert secret not in page.content.decode()
    step = deployment.steps.first()
    page = client.get(reverse("admin:deployments_step_change", args=[step.pk]))
    assert secret not in page.content.decode()
