"""Continuous promotion with a real Celery worker: each stage's deployment runs on the worker and the next stage
starts by itself from its success, dev → test → staging → production, with only automated evidence; and a
promotion that stops at the stage whose gate fails; and a stage whose follow message was lost, moved on by beat."""

import itertools
from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from deployments import promotions, reconciler
from deployments.choices import DeploymentNotice, DeploymentState, PromotionState
from deployments.effects import PROMOTION_FOLLOW
from deployments.models import Deployment, Promotion
from rdm_site.celery import app
from rdm_site.models import AuditEvent, Notification
from releases.choices import ChangeState, GateCode
from tests.deployments.conftest import drive
from tests.deployments.promotion_world import CONTINUOUS_GATES, make_pipeline
from tests.deployments.test_rollouts import LOCAL
from tests.harness.processes import start_beat, wait_until

ENDED = (PromotionState.SUCCEEDED, PromotionState.STOPPED)


def wait_for_promotion(promotion: Promotion, worker) -> Promotion:
    def ended():
        reconciler.deployments_reconcile()  # as beat would
        return Promotion.objects.values_list("state", flat=True).get(pk=promotion.pk) in ENDED

    wait_until(ended, timeout=60, interval=0.3, what=f"promotion #{promotion.pk} to end\n{worker.log()}")
    promotion.refresh_from_db()
    return promotion


def test_a_promotion_reaches_production_on_the_worker(worker_factory):
    pipeline = make_pipeline()
    worker = worker_factory(concurrency=2, **LOCAL)

    promotion = wait_for_promotion(pipeline.request(), worker)

    assert promotion.state == PromotionState.SUCCEEDED, promotion.reason
    stages = list(promotion.stages.select_related("environment", "deployment"))
    assert [(s.environment.name, s.state, s.deployment.state) for s in stages] == [
        (name, "succeeded", "succeeded") for name in ("dev", "test", "staging", "production")
    ]
    for before, after in itertools.pairwise(stages):
        assert before.deployment.finished_at <= after.deployment.started_at
    assert promotion.change.state == ChangeState.IMPLEMENTED


def test_a_promotion_stops_at_the_failing_gate_on_the_worker(worker_factory):
    gates = {**CONTINUOUS_GATES, "staging": [GateCode.TESTS_PASSED, GateCode.BACKUPS_VERIFIED]}
    pipeline = make_pipeline(gates=gates)
    worker = worker_factory(concurrency=2, **LOCAL)

    promotion = wait_for_promotion(pipeline.request(), worker)

    assert promotion.state == PromotionState.STOPPED
    assert list(promotion.stages.values_list("environment__name", "state")) == [
        ("dev", "succeeded"),
        ("test", "succeeded"),
        ("staging", "stopped"),
        ("production", "pending"),
    ]
    assert "no backup evidence posted" in promotion.reason
    told = Notification.objects.filter(kind=DeploymentNotice.PROMOTION_STOPPED, recipient=pipeline.ci)
    assert told.get().body == promotion.reason


def test_a_lost_follow_message_is_made_good_by_beat_and_a_late_duplicate_does_nothing(worker_factory, process_log_dir):
    # given the dev stage's deployment succeeded with no worker running, and its follow message was then lost
    # (the queue purged, as a broker restart without persistence would), long enough ago for the grace to pass
    pipeline = make_pipeline()
    promotion = pipeline.request()
    dev = promotion.stages.get(environment__name="dev")
    assert drive(dev.deployment).state == DeploymentState.SUCCEEDED
    queue_purge()
    Deployment.objects.filter(pk=dev.deployment_id).update(
        finished_at=timezone.now() - promotions.FOLLOW_GRACE - timedelta(seconds=1)
    )

    # when a worker and beat run (nobody calls the reconciler here)
    fast = {**LOCAL, "RDM_RECONCILE_SECONDS": "1"}
    worker = worker_factory(concurrency=2, **fast)
    beat = start_beat(process_log_dir, **fast)
    try:
        wait_until(
            lambda: Promotion.objects.values_list("state", flat=True).get(pk=promotion.pk) in ENDED,
            timeout=90,
            interval=0.3,
            what=f"promotion #{promotion.pk} to end\n{worker.log()}\n{beat.log()}",
        )
    finally:
        beat.stop()

    # then the promotion went on from dev to production, each stage with one deployment
    promotion.refresh_from_db()
    assert promotion.state == PromotionState.SUCCEEDED, promotion.reason
    per_environment = Deployment.objects.values_list("environment__name").annotate(count=Count("id"))
    assert sorted(per_environment) == [("dev", 1), ("production", 1), ("staging", 1), ("test", 1)]
    trail = AuditEvent.objects.filter(action__startswith="promotionstage.")
    assert trail.count() == 8, "each stage started and succeeded once"

    # when the lost message arrives after all, then it does nothing
    late = app.send_task(PROMOTION_FOLLOW, args=[dev.deployment_id])
    wait_until(lambda: f"{late.id}] succeeded" in worker.log(), timeout=30, what=worker.log())
    assert AuditEvent.objects.filter(action__startswith="promotionstage.").count() == 8
    assert Deployment.objects.count() == 4


def queue_purge() -> None:
    """Drop every message waiting in this session's queue."""
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(settings.CELERY_TASK_DEFAULT_QUEUE)
