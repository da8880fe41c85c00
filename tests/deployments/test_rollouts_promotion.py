"""Continuous promotion with a real Celery worker: each stage's deployment runs on the worker and the next stage
starts by itself from its success, dev → test → staging → production, with only automated evidence; and a
promotion that stops at the stage whose gate fails."""

import itertools

from deployments import reconciler
from deployments.choices import DeploymentNotice, PromotionState
from deployments.models import Promotion
from rdm_site.models import Notification
from releases.choices import ChangeState, GateCode
from tests.deployments.promotion_world import CONTINUOUS_GATES, make_pipeline
from tests.deployments.test_rollouts import LOCAL
from tests.harness.processes import wait_until

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
