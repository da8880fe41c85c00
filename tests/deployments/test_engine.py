"""The engine, run in this process (``drive``): waves, gates, failures, rollback, retries, interventions,
abort, lost workers and secrets. Real-worker rollouts are in test_rollouts.py."""

import itertools
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from deployments import engine, reconciler, services
from deployments.choices import DeploymentState, StepKind, StepState, WaveState
from deployments.engine import leases, runner
from deployments.executors.base import Executor
from deployments.executors.registry import registry
from deployments.models import DeploymentEvent, DeploymentLock, Step, StepLog
from rdm_site.exceptions import IllegalTransition, UnmetConditions
from rdm_site.models import AuditEvent
from tests.deployments.conftest import drive

SIMULATE = {"name": "deploy", "executor": "simulator"}


def plan(land, actor, **fields):
    return services.deployment_create(actor=actor, process=land.process, environment=land.environment, **fields)


def started(land, actor, **fields):
    deployment = plan(land, actor, **fields)
    services.deployment_start(deployment=deployment, actor=actor)
    return deployment


def test_a_big_bang_rollout_runs_every_target_and_ends_succeeded(landscape, manager):
    # given three targets and a one-step process
    land = landscape(targets=3)

    # when a big bang deployment is started and driven to the end
    deployment = drive(started(land, manager, version="2.0.0"))

    # then every step succeeded, the lock is released, and every change was numbered without a gap
    assert deployment.state == DeploymentState.SUCCEEDED
    assert set(deployment.steps.values_list("state", flat=True)) == {StepState.SUCCEEDED}
    assert not DeploymentLock.objects.exists()
    seqs = list(DeploymentEvent.objects.filter(deployment=deployment).values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert deployment.last_event_seq == len(seqs)
    transitions = list(
        AuditEvent.objects.filter(object_id=str(deployment.pk), action__startswith="deployment.").values_list(
            "action", "to_state"
        )
    )
    assert transitions == [
        ("deployment.create", "planned"),
        ("deployment.start", "queued"),
        ("deployment.run", "running"),
        ("deployment.succeed", "succeeded"),
    ]


def test_a_phased_rollout_runs_wave_after_wave(landscape, manager):
    land = landscape(targets=10)
    deployment = drive(started(land, manager, model="phased", phase_plan={"canary": 1, "percentages": [50, 100]}))

    assert deployment.state == DeploymentState.SUCCEEDED
    waves = list(deployment.waves.order_by("index"))
    assert [(wave.target_count, wave.state) for wave in waves] == [(1, "passed"), (4, "passed"), (5, "passed")]
    for before, after in itertools.pairwise(waves):
        last_of_before = max(before.steps.values_list("finished_at", flat=True))
        first_of_after = min(after.steps.values_list("started_at", flat=True))
        assert last_of_before <= first_of_after, "a wave starts only after the one before passed"


def test_too_many_failures_in_a_wave_roll_back_the_waves_done_last_first(landscape, manager):
    # given 6 targets in waves of 1, 2 and 3, and a step that fails on the second wave's first target
    land = landscape(targets=6)
    failing = land.targets[1].ci.name
    land.process.step_templates.update(parameters={"fail_on_target": failing})

    # when the phased rollout runs
    deployment = drive(started(land, manager, model="phased", phase_plan={"canary": 1, "percentages": [50, 100]}))

    # then wave 2 failed, wave 3 never ran, and waves 2 then 1 were rolled back
    assert deployment.state == DeploymentState.ROLLED_BACK
    assert failing in deployment.outcome
    assert list(deployment.waves.order_by("index").values_list("state", flat=True)) == ["passed", "failed", "pending"]
    assert set(deployment.steps.filter(wave__index=2).values_list("state", flat=True)) == {StepState.SKIPPED}
    rollbacks = list(deployment.steps.filter(kind=StepKind.ROLLBACK).order_by("finished_at", "id"))
    assert [step.wave.index for step in rollbacks] == [1, 1, 0]
    assert all(step.state == StepState.SUCCEEDED for step in rollbacks)
    assert {step.rolls_back.target_id for step in rollbacks} == {t.pk for t in land.targets[:3]}
    assert not DeploymentLock.objects.exists()


def test_failures_within_the_threshold_skip_the_target_and_carry_on(landscape, manager):
    # given a second step after the deploy step, a threshold of half the targets, and one failing target
    land = landscape(targets=4, steps=[SIMULATE, {"name": "verify", "executor": "simulator"}])
    failing = land.targets[2].ci.name
    land.process.step_templates.filter(name="deploy").update(parameters={"fail_on_target": failing})

    deployment = drive(started(land, manager, rollback_threshold=0.5))

    # then the failed target's next step is skipped, and the rollout still succeeds
    assert deployment.state == DeploymentState.SUCCEEDED
    on_failed = dict(deployment.steps.filter(target__ci__name=failing).values_list("name", "state"))
    assert on_failed == {"deploy": StepState.FAILED, "verify": StepState.SKIPPED}


class Exploding(Executor):
    name = "test_exploding"
    display_name = "Explodes"

    def run(self, context):
        raise RuntimeError("boom")


class Forgetful(Executor):
    name = "test_forgetful"
    display_name = "Returns nothing"

    def run(self, context):
        return None


@pytest.fixture
def broken_executors():
    for executor in (Exploding, Forgetful):
        registry._classes[executor.name] = executor
    yield
    for executor in (Exploding, Forgetful):
        registry._classes.pop(executor.name)


@pytest.mark.parametrize(
    ("executor", "message"),
    [("test_exploding", "the executor raised RuntimeError: boom"), ("test_forgetful", "not a StepOutcome")],
)
def test_an_executor_that_breaks_fails_its_step_not_the_engine(landscape, manager, broken_executors, executor, message):
    land = landscape(targets=1, steps=[{"name": "broken", "executor": executor}])
    deployment = drive(started(land, manager))
    step = deployment.steps.get(kind=StepKind.DEPLOY)
    assert step.state == StepState.FAILED
    assert message in step.message
    assert deployment.state == DeploymentState.ROLLED_BACK


def make_due(deployment):
    """Let time pass: every wait of the deployment's steps is over."""
    Step.objects.filter(deployment=deployment, state=StepState.RUNNING).update(due_at=timezone.now())


def test_a_transient_failure_is_retried_with_the_same_key_and_counts_its_attempts(
    landscape, manager, target_server, local_outbound
):
    # given a target that fails the first call with a 503
    land = landscape(
        targets=1,
        steps=[{"name": "call", "executor": "http_call", "parameters": {"url": target_server.url("/effects/a")}}],
    )
    target_server.fail_next(1, status=503)

    # when the rollout runs, the failure is a retry due later
    deployment = drive(started(land, manager))
    step = deployment.steps.get()
    assert (step.state, step.attempt, deployment.state) == (StepState.RUNNING, 2, DeploymentState.RUNNING)
    assert step.due_at > timezone.now() + timedelta(seconds=3), "backoff, not at once"

    # and once that time came, it runs again and the effect happens once
    make_due(deployment)
    deployment = drive(deployment)
    assert deployment.state == DeploymentState.SUCCEEDED
    assert target_server.effect_count("/effects/a") == 1
    keys = {request.headers["Idempotency-Key"] for request in target_server.requests_to("/effects/a")}
    assert keys == {step.idempotency_key}


def test_retries_are_bounded(landscape, manager, target_server, local_outbound):
    land = landscape(
        targets=1,
        steps=[
            {
                "name": "call",
                "executor": "http_call",
                "retries": 1,
                "parameters": {"url": target_server.url("/effects/x")},
            }
        ],
    )
    target_server.fail_next(5, status=503)
    deployment = drive(started(land, manager))
    make_due(deployment)
    deployment = drive(deployment)
    step = deployment.steps.get(kind=StepKind.DEPLOY)
    assert (step.state, step.attempt) == (StepState.FAILED, 2)
    assert len(target_server.requests_to("/effects/x")) == 2


INTERVENTION = {
    "name": "confirm",
    "executor": "manual_intervention",
    "run_once": True,
    "parameters": {"instructions": "Check the canary dashboard", "deadline_minutes": 30},
}


def test_a_manual_intervention_pauses_the_rollout_until_answered(landscape, manager):
    # given a process that asks for confirmation after deploying
    land = landscape(targets=2, steps=[SIMULATE, INTERVENTION])

    # when it runs, it pauses at the intervention with its instructions
    deployment = drive(started(land, manager))
    assert deployment.state == DeploymentState.PAUSED
    assert deployment.pause_kind == "intervention"
    assert "Check the canary dashboard" in deployment.pause_reason
    step = deployment.steps.get(executor="manual_intervention")
    assert step.deadline == step.started_at + timedelta(minutes=30)

    # and a Deployment Manager's answer resumes it to the end
    services.step_answer(step=step, actor=manager, answer="proceed")
    deployment = drive(deployment)
    assert deployment.state == DeploymentState.SUCCEEDED
    step.refresh_from_db()
    assert (step.manual_answer, step.answered_by) == ("proceed", manager)


def test_an_intervention_answered_abort_fails_its_step_and_rolls_back(landscape, manager):
    land = landscape(targets=1, steps=[SIMULATE, INTERVENTION])
    deployment = drive(started(land, manager))
    services.step_answer(step=deployment.steps.get(executor="manual_intervention"), actor=manager, answer="abort")
    deployment = drive(deployment)
    assert deployment.state == DeploymentState.ROLLED_BACK
    assert deployment.steps.get(executor="manual_intervention").message == "answered: abort"


def test_an_intervention_past_its_deadline_fails_and_cannot_be_answered(landscape, manager):
    # given a rollout waiting at an intervention
    land = landscape(targets=1, steps=[SIMULATE, INTERVENTION])
    deployment = drive(started(land, manager))
    step = deployment.steps.get(executor="manual_intervention")

    # when its deadline has passed (it started 31 minutes ago)
    past = timezone.now() - timedelta(minutes=31)
    Step.objects.filter(pk=step.pk).update(started_at=past, deadline=past + timedelta(minutes=30))

    # then an answer is refused
    with pytest.raises(UnmetConditions, match="its deadline passed"):
        services.step_answer(step=step, actor=manager, answer="proceed")

    # and when the reconciler calls it again, the step fails and the rollout rolls back
    make_due(deployment)
    deployment = drive(deployment)
    step.refresh_from_db()
    assert step.state == StepState.FAILED
    assert "deadline passed" in step.message
    assert deployment.state == DeploymentState.ROLLED_BACK


def test_abort_stops_within_one_step(landscape, manager):
    # given ten targets run one after another by one batch
    land = landscape(targets=10)
    deployment = started(land, manager)
    engine.deployment_advance(deployment_id=deployment.pk)
    queued = list(deployment.steps.filter(lease_owner=engine.QUEUED).values_list("id", flat=True))
    real_execute = runner._execute
    executed = []

    def execute_then_abort(step, *args):
        executed.append(step.pk)
        result = real_execute(step, *args)
        if len(executed) == 3:  # the operator aborts while the third step runs
            services.deployment_abort(deployment=deployment, actor=manager, reason="wrong version")
        return result

    # when the batch runs and is aborted during its third step
    with mock.patch.object(runner, "_execute", execute_then_abort):
        engine.steps_run(deployment_id=deployment.pk, step_ids=queued, owner="w")

    # then the step under way finished, and no other step started
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.ABORTED
    assert len(executed) == 3
    states = list(deployment.steps.order_by("id").values_list("state", flat=True))
    assert states == [StepState.SUCCEEDED] * 3 + [StepState.SKIPPED] * 7
    assert deployment.waves.get().state == WaveState.FAILED
    assert not DeploymentLock.objects.exists()


def test_pause_stops_new_steps_and_resume_continues(landscape, manager):
    land = landscape(targets=4)
    deployment = started(land, manager)
    engine.deployment_advance(deployment_id=deployment.pk)
    services.deployment_pause(deployment=deployment, actor=manager, reason="looking at a graph")
    deployment = drive(deployment)
    assert deployment.state == DeploymentState.PAUSED
    assert not deployment.steps.filter(state=StepState.SUCCEEDED).exists()

    services.deployment_resume(deployment=deployment, actor=manager)
    deployment = drive(deployment)
    assert deployment.state == DeploymentState.SUCCEEDED


def test_one_active_deployment_per_service_and_environment(landscape, manager):
    land = landscape(targets=1)
    first = started(land, manager)
    second = plan(land, manager)
    with pytest.raises(UnmetConditions, match=f"deployment #{first.pk} of .* is already active"):
        services.deployment_start(deployment=second, actor=manager)
    drive(first)
    services.deployment_start(deployment=second, actor=manager)
    assert drive(second).state == DeploymentState.SUCCEEDED


def test_a_succeeded_deployment_is_not_rolled_back_in_place(landscape, manager):
    deployment = drive(started(landscape(targets=1), manager))
    assert deployment.state == DeploymentState.SUCCEEDED
    with pytest.raises(IllegalTransition):
        services.deployment_rollback(deployment=deployment, actor=manager, reason="that is a new deployment (ELS)")


def test_roll_back_now_skips_the_rest_and_undoes_what_ran(landscape, manager):
    # given a rollout waiting at an intervention after deploying to 4 targets
    land = landscape(targets=4, steps=[SIMULATE, INTERVENTION])
    deployment = drive(started(land, manager))
    assert deployment.state == DeploymentState.PAUSED

    # when the Deployment Manager rolls back now
    services.deployment_rollback(deployment=deployment, actor=manager, reason="the canary looks wrong")
    deployment = drive(deployment)

    # then the intervention is skipped, the four deploy steps are undone, and who and why is audited
    assert deployment.state == DeploymentState.ROLLED_BACK
    assert deployment.outcome == "the canary looks wrong"
    assert deployment.steps.get(executor="manual_intervention").state == StepState.SKIPPED
    assert deployment.steps.filter(kind=StepKind.ROLLBACK, state=StepState.SUCCEEDED).count() == 4
    audit = AuditEvent.objects.get(object_id=str(deployment.pk), action="deployment.roll_back")
    assert (audit.actor_label, audit.reason) == ("dm", "the canary looks wrong")


def test_a_step_whose_worker_was_lost_runs_again_with_the_same_key(
    landscape, manager, django_capture_on_commit_callbacks
):
    # given a step claimed by a worker that then died (its lease ran out)
    land = landscape(targets=1)
    deployment = started(land, manager)
    engine.deployment_advance(deployment_id=deployment.pk)
    step = deployment.steps.get()
    runner._claim(deployment.pk, [step.pk], "dead-worker")
    Step.objects.filter(pk=step.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    # when the reconciler looks, it has the deployment advanced, which dispatches the step again
    with django_capture_on_commit_callbacks() as queued:
        assert reconciler.deployments_reconcile() == {"started": 0, "advanced": 1}
    assert len(queued) == 1
    deployment = drive(deployment)

    # then it ran again (second attempt, same key) and the rollout finished
    step.refresh_from_db()
    assert (step.state, step.attempt, deployment.state) == (StepState.SUCCEEDED, 2, DeploymentState.SUCCEEDED)
    assert StepLog.objects.filter(step=step, message__contains="worker was lost").exists()


def test_a_scheduled_deployment_starts_by_itself_when_its_time_comes(landscape, manager):
    land = landscape(targets=1)
    deployment = plan(land, manager)
    services.deployment_schedule(
        deployment=deployment, actor=manager, scheduled_for=timezone.now() - timedelta(seconds=1)
    )
    assert reconciler.deployments_reconcile()["started"] == 1
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.QUEUED
    assert AuditEvent.objects.get(object_id=str(deployment.pk), action="deployment.start").actor_label == "system"


def test_secrets_are_masked_in_logs_outputs_events_and_audit(landscape, manager, target_server, local_outbound):
    # given a secret variable used in a URL and a header
    secret = "hunter2-secret"
    land = landscape(
        targets=1,
        steps=[
            {
                "name": "call",
                "executor": "http_call",
                "parameters": {
                    "url": target_server.url("/effects/x?token=#{Token}"),
                    "headers": {"Authorization": "Bearer #{Token}"},
                },
            }
        ],
    )
    services.variable_set(actor=manager, service=land.service, name="Token", value=secret, is_secret=True)

    # when the rollout runs
    deployment = drive(started(land, manager))

    # then the target got the secret, and nothing RDM wrote holds it
    assert deployment.state == DeploymentState.SUCCEEDED
    assert target_server.requests_to("/effects/x")[0].headers["Authorization"] == f"Bearer {secret}"
    step = deployment.steps.get()
    written = [
        str(step.parameters),
        str(step.output),
        step.message,
        *StepLog.objects.values_list("message", flat=True),
        *DeploymentEvent.objects.values_list("message", flat=True),
        *(str(row) for row in AuditEvent.objects.values_list("reason", "changes", "object_repr")),
    ]
    assert not [text for text in written if secret in text]
    assert any("token=********" in text for text in written)


def test_a_step_that_runs_longer_than_its_lease_keeps_it_by_heartbeat(
    transactional_db, settings, target_server, local_outbound
):
    import threading

    from django.db import connection

    from rdm_site.roles import Role
    from tests.deployments.conftest import make_landscape
    from tests.factories import UserFactory
    from tests.harness.processes import wait_until

    # given leases of 0.9 s, and a call that takes 1.2 s to answer
    settings.RDM_STEP_LEASE_SECONDS = 0.9
    leases.LeaseKeeper._instance = None  # a keeper that renews at this lease's pace
    manager = UserFactory(username="dm", roles=[Role.DEPLOYMENT_MANAGER])
    land = make_landscape(
        targets=1,
        steps=[
            {"name": "slow", "executor": "http_call", "parameters": {"url": target_server.url("/effects/a?delay=1.2")}}
        ],
    )
    deployment = started(land, manager)
    engine.deployment_advance(deployment_id=deployment.pk)
    step = deployment.steps.get()

    def work():
        try:
            engine.steps_run(deployment_id=deployment.pk, step_ids=[step.pk], owner="busy-worker")
        finally:
            connection.close()

    # when it runs past its first lease
    worker = threading.Thread(target=work)
    worker.start()
    claimed = wait_until(lambda: Step.objects.filter(pk=step.pk, lease_owner="busy-worker").first(), what="a claim")

    # then the lease is renewed (nobody would take the step over) while the call goes on, and the step ran once
    renewed = wait_until(
        lambda: Step.objects.filter(
            pk=step.pk, lease_expires_at__gt=claimed.lease_expires_at, state=StepState.RUNNING
        ).first(),
        timeout=1.5,
        what="the lease to be renewed",
    )
    assert renewed.lease_owner == "busy-worker"
    worker.join(timeout=10)
    step.refresh_from_db()
    assert (step.state, step.attempt) == (StepState.SUCCEEDED, 1)
    assert target_server.effect_count("/effects/a") == 1
