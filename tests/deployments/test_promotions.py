"""Continuous promotion run in this process (``drive``): dev → test → staging → production under a standard
change, each stage starting by itself; and a promotion that stops at the stage whose gate fails."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from cmdb.choices import EnvironmentTier
from deployments import promotions, reconciler
from deployments.choices import DeploymentNotice, PromotionStageState, PromotionState
from deployments.models import Deployment, Promotion
from rdm_site.exceptions import InvalidInput, NotAllowed
from rdm_site.models import AuditEvent, Notification
from releases.choices import ChangeState, ChangeType, GateCode, ReleaseState
from tests.deployments.conftest import drive
from tests.deployments.promotion_world import CONTINUOUS_GATES, drive_promotion, make_pipeline
from tests.releases.factories import ChangeTemplateFactory


def test_a_promotion_goes_through_every_environment_in_order_with_only_automated_evidence(db):
    # given a package the pipeline built and tested
    pipeline = make_pipeline()

    # when the pipeline requests its promotion through every environment
    promotion = drive_promotion(pipeline.request())

    # then each stage started when the one before it succeeded, in promotion order, and the promotion succeeded
    assert promotion.state == PromotionState.SUCCEEDED
    stages = list(promotion.stages.select_related("environment", "deployment"))
    assert [stage.environment.name for stage in stages] == ["dev", "test", "staging", "production"]
    assert {stage.state for stage in stages} == {PromotionStageState.SUCCEEDED}
    assert all(stage.deployment.continuous and stage.deployment.requested_by == pipeline.ci for stage in stages)
    assert stages[0].deployment.finished_at <= stages[1].deployment.started_at

    # and production ran under a standard change from the template, which the release's plan approval counted
    change = promotion.change
    assert (change.change_type, change.template, change.state) == (
        ChangeType.STANDARD,
        pipeline.template,
        ChangeState.IMPLEMENTED,
    )
    assert stages[3].deployment.change == change
    assert [s.deployment.change_id for s in stages[:3]] == [None, None, None]
    release = pipeline.world.reload()
    assert release.state == ReleaseState.EARLY_LIFE_SUPPORT
    actions = list(
        AuditEvent.objects.filter(object_id=str(promotion.pk), action__startswith="promotion.").values_list(
            "action", flat=True
        )
    )
    assert actions == ["promotion.create", "promotion.succeed"]


def test_a_promotion_stops_at_the_stage_whose_gate_fails_saying_why_and_telling_people(db):
    # given staging also wants verified backups, which nobody posted
    gates = {**CONTINUOUS_GATES, EnvironmentTier.STAGING: [GateCode.TESTS_PASSED, GateCode.BACKUPS_VERIFIED]}
    pipeline = make_pipeline(gates=gates)

    # when the pipeline requests the promotion
    promotion = drive_promotion(pipeline.request())

    # then dev and test succeeded, staging stopped with the unmet gate, production never started
    assert promotion.state == PromotionState.STOPPED
    states = list(promotion.stages.values_list("environment__name", "state"))
    assert states == [("dev", "succeeded"), ("test", "succeeded"), ("staging", "stopped"), ("production", "pending")]
    staging = promotion.stages.get(environment__name="staging")
    assert staging.deployment is None
    assert "Backups taken and verified: no backup evidence posted" in staging.reason
    assert promotion.reason == f"stopped at staging: {staging.reason}"
    assert promotion.change is None

    # and the requester and the Deployment Managers were told, with the reason
    told = Notification.objects.filter(kind=DeploymentNotice.PROMOTION_STOPPED)
    people = pipeline.world.people
    assert {n.recipient.username for n in told} == {people.ci.username, people.dm.username, people.dm2.username}
    assert all("no backup evidence posted" in n.body for n in told)


def test_a_failed_deployment_stops_the_promotion_at_its_stage(db):
    pipeline = make_pipeline(
        steps=[{"name": "deploy", "executor": "simulator", "parameters": {"fail_on_target": "shop-test"}}]
    )

    promotion = drive_promotion(pipeline.request())

    assert promotion.state == PromotionState.STOPPED
    test = promotion.stages.get(environment__name="test")
    assert test.state == PromotionStageState.STOPPED
    assert test.reason.startswith(f"deployment #{test.deployment_id} rolled back")
    assert promotion.stages.get(environment__name="staging").state == PromotionStageState.PENDING


def test_chosen_environments_run_in_promotion_order(db):
    pipeline = make_pipeline()
    dev, _, staging, _ = pipeline.environments

    promotion = drive_promotion(pipeline.request(environments=[staging, dev]))

    assert list(promotion.stages.values_list("environment__name", flat=True)) == ["dev", "staging"]
    assert promotion.state == PromotionState.SUCCEEDED
    assert promotion.change is None, "no production stage, no change"


def test_a_request_names_every_problem_and_needs_the_right_to_deploy(db):
    pipeline = make_pipeline()
    dev = pipeline.environments[0]
    unapproved = ChangeTemplateFactory(services=[pipeline.world.service], approved_by=None, approved_at=None)

    with pytest.raises(InvalidInput) as refused:
        promotions.promotion_create(
            actor=pipeline.ci, package=pipeline.package, template=unapproved, environments=[dev, dev]
        )
    assert refused.value.errors == [
        "an environment is named twice",
        f"template {unapproved} is not active and pre-approved",
    ]
    with pytest.raises(InvalidInput, match="is not active and pre-approved"):
        promotions.promotion_create(actor=pipeline.ci, package=pipeline.package, template=unapproved)
    with pytest.raises(NotAllowed):
        promotions.promotion_create(
            actor=pipeline.world.people.viewer, package=pipeline.package, template=pipeline.template
        )
    assert not Promotion.objects.exists()


def test_a_stage_whose_follow_message_was_lost_is_moved_on_by_the_reconciler_once(db):
    # given the dev stage's deployment succeeded and its follow message never came (this test commits nothing)
    pipeline = make_pipeline()
    promotion = pipeline.request()
    dev = promotion.stages.get(environment__name="dev")
    ended = drive(dev.deployment).finished_at

    # when the reconciler looks within the grace, nothing moves: the message may still be on its way
    assert reconciler.deployments_reconcile(now=ended + promotions.FOLLOW_GRACE / 2)["promoted"] == 0
    assert promotion.stages.get(environment__name="test").state == PromotionStageState.PENDING

    # when it looks after the grace, then the test stage starts
    after = ended + promotions.FOLLOW_GRACE
    assert reconciler.deployments_reconcile(now=after)["promoted"] == 1
    dev.refresh_from_db()
    test = promotion.stages.get(environment__name="test")
    assert (dev.state, test.state) == (PromotionStageState.SUCCEEDED, PromotionStageState.RUNNING)

    # and a second look, or the original message arriving late, starts nothing more
    assert reconciler.deployments_reconcile(now=after)["promoted"] == 0
    assert promotions.promotion_deployment_ended(deployment_id=dev.deployment_id) is False
    assert Deployment.objects.filter(environment__name="test").get() == test.deployment
    assert AuditEvent.objects.filter(action="promotionstage.start", reason__contains="started").count() == 2

    # and the promotion goes on from there as usual
    assert drive_promotion(promotion).state == PromotionState.SUCCEEDED


def test_the_reconciler_and_the_late_message_racing_move_the_stage_on_once(transactional_db):
    # given the dev stage's deployment ended long enough ago for the reconciler to take its message as lost
    pipeline = make_pipeline()
    promotion = pipeline.request()
    dev = promotion.stages.get(environment__name="dev")
    ended = drive(dev.deployment).finished_at
    barrier = threading.Barrier(2)

    def reconcile():
        barrier.wait()
        return promotions.promotions_follow_lost(ended + promotions.FOLLOW_GRACE)

    def late_message():
        barrier.wait()
        return int(promotions.promotion_deployment_ended(deployment_id=dev.deployment_id))

    # when both drive the stage at the same moment, each in its own transaction
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(close_connection_after, call) for call in (reconcile, late_message)]
        moved = sorted(future.result() for future in futures)

    # then exactly one of them moved it, and the test stage has one deployment
    assert moved == [0, 1]
    assert Deployment.objects.filter(environment__name="test").count() == 1
    assert promotion.stages.get(environment__name="test").state == PromotionStageState.RUNNING


def close_connection_after(call):
    try:
        return call()
    finally:
        connections.close_all()
