"""Deployments under release governance: production needs an eligible release and an approved change; the
change and release follow the rollout; windows and freezes are checked before every wave."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cmdb.models import Baseline
from deployments import services
from deployments.choices import DeploymentState, PauseKind, StepKind
from deployments.effects import FOLLOW_UP_NOTICE
from rdm_site.exceptions import NotAllowed, UnmetConditions
from rdm_site.models import AuditEvent, Notification
from rdm_site.roles import Role
from releases.choices import ChangeState, ChangeType, ReleaseState
from releases.models import ReleaseBaseline
from tests.deployments.conftest import drive
from tests.deployments.factories import CiFactory, TargetFactory
from tests.deployments.governed import Governed
from tests.factories import UserFactory
from tests.releases.factories import FreezeFactory, WindowFactory


def test_a_production_rollout_moves_the_change_and_release_and_updates_the_cmdb(db):
    # given a green release with an approved change, scheduled and started in production
    governed = Governed()
    deployment = governed.plan()
    services.deployment_schedule(deployment=deployment, actor=governed.dm, scheduled_for=timezone.now())
    governed.change.refresh_from_db()
    assert governed.change.state == ChangeState.SCHEDULED
    services.deployment_start(deployment=deployment, actor=governed.dm)
    governed.change.refresh_from_db()
    assert governed.change.state == ChangeState.IMPLEMENTING
    assert governed.world.reload().state == ReleaseState.DEPLOYING

    # when it runs to the end
    deployment = drive(deployment)

    # then the change is implemented, the release deployed and in early life support, the CIs run the package
    # version, and a post-release baseline is linked to the release
    assert deployment.state == DeploymentState.SUCCEEDED
    assert deployment.version == governed.package.version
    governed.change.refresh_from_db()
    assert governed.change.state == ChangeState.IMPLEMENTED
    assert governed.world.reload().state == ReleaseState.EARLY_LIFE_SUPPORT
    for target in governed.targets:
        target.ci.refresh_from_db()
        assert target.ci.version == governed.package.version
    assert ReleaseBaseline.objects.filter(release=governed.release, kind="post_release").exists()
    governed.world.ci.refresh_from_db()
    assert governed.world.ci.version == governed.package.version, "the release unit's CI too"
    edits = AuditEvent.objects.filter(action="ci.update", reason=f"deployed by deployment #{deployment.pk}")
    assert edits.count() == 5


def test_a_rolled_back_production_rollout_backs_out_the_change_and_rolls_back_the_release(db):
    governed = Governed(fail_on_target=True)
    deployment = governed.plan(model="phased", phase_plan={"canary": 1, "percentages": [100]})
    services.deployment_start(deployment=deployment, actor=governed.dm)
    deployment = drive(deployment)

    assert deployment.state == DeploymentState.ROLLED_BACK
    governed.change.refresh_from_db()
    assert governed.change.state == ChangeState.BACKED_OUT
    release = governed.world.reload()
    assert release.state == ReleaseState.ROLLED_BACK
    assert "shop-1" in release.end_reason
    assert not Baseline.objects.filter(name__startswith="after deployment").exists()


def test_production_without_a_package_or_change_lists_every_unmet_condition(db):
    governed = Governed()
    deployment = services.deployment_create(
        actor=governed.dm, process=governed.process, environment=governed.world.production
    )
    with pytest.raises(UnmetConditions) as raised:
        services.deployment_start(deployment=deployment, actor=governed.dm)
    assert raised.value.conditions[:2] == [
        "a production deployment deploys a release package: name one",
        "a production deployment names the approved change it implements",
    ]


def test_a_release_that_is_not_eligible_cannot_start_in_production(db):
    governed = Governed()
    deployment = governed.plan()
    FreezeFactory(name="peak", start=timezone.now() - timedelta(minutes=1), environments=[governed.world.production])
    with pytest.raises(UnmetConditions, match="inside freeze peak"):
        services.deployment_start(deployment=deployment, actor=governed.dm)
    with pytest.raises(UnmetConditions, match="inside freeze peak"):
        services.deployment_schedule(deployment=deployment, actor=governed.dm, scheduled_for=timezone.now())


def test_a_freeze_beginning_mid_rollout_pauses_before_the_next_wave(db):
    # given a phased production rollout whose first wave is baking
    governed = Governed()
    deployment = governed.plan(model="phased", phase_plan={"canary": 1, "percentages": [100], "bake_seconds": 600})
    services.deployment_start(deployment=deployment, actor=governed.dm)
    deployment = drive(deployment)
    assert deployment.waves.get(index=0).state == "verifying"

    # when a freeze begins, and the bake time is over
    freeze = FreezeFactory(name="incident", start=timezone.now(), environments=[governed.world.production])
    deployment.waves.filter(index=0).update(verify_due_at=timezone.now())
    deployment = drive(deployment)

    # then the first wave passed, and the rollout paused before the second, saying why
    assert deployment.state == DeploymentState.PAUSED
    assert deployment.pause_kind == PauseKind.FREEZE
    assert "inside freeze incident" in deployment.pause_reason
    assert list(deployment.waves.values_list("state", flat=True)) == ["passed", "pending"]

    # and it cannot resume while the freeze lasts; once it is over, it resumes and finishes
    with pytest.raises(UnmetConditions, match="inside freeze incident"):
        services.deployment_resume(deployment=deployment, actor=governed.dm)
    freeze.end = timezone.now()
    freeze.save()
    services.deployment_resume(deployment=deployment, actor=governed.dm)
    deployment = drive(deployment)
    assert deployment.waves.get(index=1).state == "verifying"
    deployment.waves.filter(index=1).update(verify_due_at=timezone.now())
    assert drive(deployment).state == DeploymentState.SUCCEEDED


def test_an_irreversible_unit_pauses_a_failed_rollout_for_a_decision(db):
    # given a release with a database migration that cannot be reversed, and a failing target
    governed = Governed(fail_on_target=True)
    governed.release.units.update(reversible=False)
    deployment = governed.plan()
    services.deployment_start(deployment=deployment, actor=governed.dm)

    # when the rollout fails, it pauses for a decision instead of rolling back
    deployment = drive(deployment)
    assert deployment.state == DeploymentState.PAUSED
    assert deployment.pause_kind == PauseKind.DECISION
    assert "shop-app cannot be reversed" in deployment.pause_reason
    assert not deployment.steps.filter(kind=StepKind.ROLLBACK).exists()
    with pytest.raises(UnmetConditions, match="roll it back or mark it failed"):
        services.deployment_resume(deployment=deployment, actor=governed.dm)

    # and the Deployment Manager decides to fix forward: it fails, and so do the change and release
    services.deployment_fail(deployment=deployment, actor=governed.dm, reason="fix forward with 2.0.1")
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.FAILED
    governed.change.refresh_from_db()
    assert governed.change.state == ChangeState.FAILED
    assert governed.world.reload().state == ReleaseState.FAILED


def test_a_build_engineer_runs_only_continuous_deployments_under_a_standard_change(db):
    governed = Governed()
    engineer = UserFactory(username="pipeline", roles=[Role.BUILD_ENGINEER])

    # a deployment a person planned is not the pipeline's to start
    deployment = governed.plan()
    with pytest.raises(NotAllowed, match="only continuous deployments under a standard change"):
        services.deployment_start(deployment=deployment, actor=engineer)

    # nor is a continuous one under a normal change
    continuous = governed.plan(continuous=True)
    assert governed.change.change_type == ChangeType.NORMAL
    with pytest.raises(NotAllowed, match="only continuous deployments under a standard change"):
        services.deployment_start(deployment=continuous, actor=engineer)
    services.deployment_abort(deployment=continuous, actor=governed.dm, reason="not the pipeline's")

    # but the pipeline plans and runs continuous deployments to lower tiers, where no change is needed
    world = governed.world
    TargetFactory(ci=CiFactory(name="shop-staging", environment=world.staging, service=world.service))
    staging = services.deployment_create(
        actor=engineer, process=governed.process, environment=world.staging, package=governed.package, continuous=True
    )
    services.deployment_start(deployment=staging, actor=engineer)
    assert drive(staging).state == DeploymentState.SUCCEEDED


def test_a_lower_tier_deployment_does_not_move_the_release(db):
    governed = Governed()
    world = governed.world
    TargetFactory(ci=CiFactory(name="shop-staging", environment=world.staging, service=world.service))
    deployment = services.deployment_create(
        actor=governed.dm, process=governed.process, environment=world.staging, package=governed.package
    )
    services.deployment_start(deployment=deployment, actor=governed.dm)
    assert drive(deployment).state == DeploymentState.SUCCEEDED
    assert governed.world.reload().state == ReleaseState.READY
    governed.change.refresh_from_db()
    assert governed.change.state == ChangeState.APPROVED, "the change is for production"


def test_a_lower_tier_window_listing_the_environment_is_respected(db):
    governed = Governed()
    world = governed.world
    TargetFactory(ci=CiFactory(name="shop-staging", environment=world.staging, service=world.service))
    now = timezone.now()
    WindowFactory(
        name="staging-later",
        first_date=(now - timedelta(days=2)).date(),
        start_time=(now + timedelta(hours=2)).time().replace(microsecond=0),
        rrule="FREQ=DAILY",
        duration=timedelta(hours=1),
        time_zone="UTC",
        environments=[world.staging],
    )
    deployment = services.deployment_create(
        actor=governed.dm, process=governed.process, environment=world.staging, package=governed.package
    )
    with pytest.raises(UnmetConditions, match="no release window is open for Shop in staging"):
        services.deployment_start(deployment=deployment, actor=governed.dm)


def _change_service_refuses(monkeypatch) -> None:
    """The change service refuses to record the outcome (as it would for paperwork moved meanwhile by hand):
    what is tested is how the deployment copes, not why releases refuses."""
    from releases import services as release_services

    def refuse(**kwargs):
        raise UnmetConditions("The change cannot be completed", ["its record was closed by hand meanwhile"])

    monkeypatch.setattr(release_services, "change_complete", refuse)


def test_a_refused_follow_up_is_recorded_on_the_deployment_and_sent_to_its_requester_and_release_manager(
    db, monkeypatch
):
    # given a production deployment under way, whose change service will refuse to record the outcome
    governed = Governed()
    deployment = governed.plan()
    services.deployment_start(deployment=deployment, actor=governed.dm)
    _change_service_refuses(monkeypatch)

    # when it is aborted
    services.deployment_abort(deployment=deployment, actor=governed.dm, reason="the target is unreachable")

    # then the rollout's outcome stands, the refusal is on the deployment, and both people are told
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.ABORTED
    governed.change.refresh_from_db()
    assert governed.change.state == ChangeState.IMPLEMENTING
    assert f"could not record change {governed.change.number} failed" in deployment.follow_up_problem
    assert "closed by hand meanwhile" in deployment.follow_up_problem
    notices = Notification.objects.filter(kind=FOLLOW_UP_NOTICE, object_id=str(deployment.pk))
    assert {notice.recipient for notice in notices} == {governed.dm, governed.release.release_manager}
    assert all("records did not follow" in notice.subject for notice in notices)


def test_a_long_outcome_is_shortened_for_the_change_rather_than_refused(db):
    # given a production deployment under way
    governed = Governed()
    deployment = governed.plan()
    services.deployment_start(deployment=deployment, actor=governed.dm)

    # when it is aborted with a reason as long as an operator may give
    services.deployment_abort(deployment=deployment, actor=governed.dm, reason="r" * 1990)

    # then the change records the failure, its reason shortened to fit, and nothing needs putting right
    deployment.refresh_from_db()
    assert deployment.follow_up_problem == ""
    governed.change.refresh_from_db()
    assert governed.change.state == ChangeState.FAILED


def test_a_follow_up_problem_is_shown_in_the_admin(client, db, monkeypatch):
    governed = Governed()
    deployment = governed.plan()
    services.deployment_start(deployment=deployment, actor=governed.dm)
    _change_service_refuses(monkeypatch)
    services.deployment_abort(deployment=deployment, actor=governed.dm, reason="the target is unreachable")
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    page = client.get(reverse("admin:deployments_deployment_change", args=[deployment.pk]))

    assert "follow-up problem" in page.content.decode().lower()
    assert f"could not record change {governed.change.number} failed" in page.content.decode()


def test_a_build_engineer_is_offered_no_action_on_a_production_deployment_under_a_normal_change(db):
    governed = Governed()
    engineer = UserFactory(username="pipeline", roles=[Role.BUILD_ENGINEER])
    continuous = governed.plan(continuous=True)
    assert governed.change.change_type == ChangeType.NORMAL

    assert services.deployment_available_actions(continuous, engineer) == []
    assert services.deployment_available_actions(continuous, governed.dm) == ["schedule", "start", "abort", "delete"]


def test_starting_a_production_deployment_evaluates_the_checklist_once_within_a_query_bound(db):
    # given a green release scheduled for production
    governed = Governed()
    deployment = governed.plan()
    services.deployment_schedule(deployment=deployment, actor=governed.dm, scheduled_for=timezone.now())

    # when it starts (the change starts implementing and the release starts deploying in the same transaction)
    with CaptureQueriesContext(connection) as queries:
        services.deployment_start(deployment=deployment, actor=governed.dm)

    # then the go/no-go checklist was read once, and the whole start stays within its bound (81 before; 65 plus
    # the notification of the start to its requester, the release manager and the service owner)
    checklist_reads = [query for query in queries.captured_queries if 'FROM "releases_rollbackplan"' in query["sql"]]
    assert len(checklist_reads) == 1
    assert len(queries.captured_queries) <= 75
    assert governed.world.reload().state == ReleaseState.DEPLOYING
