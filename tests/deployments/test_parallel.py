"""Parallel (blue/green) deployments run in this process (``drive``) against a local HTTP target server: the
plan, the cutover, the cut-back and the live set in the CMDB. Real-worker runs are in test_rollouts_parallel.py."""

import pytest
from django.utils import timezone

from cmdb.choices import EnvironmentTier
from cmdb.models import ConfigurationItem
from deployments import services
from deployments.choices import DeploymentState, StepKind, StepState, WaveState
from deployments.models import Wave
from deployments.planning import phase_plan_problems
from rdm_site.exceptions import InvalidInput
from rdm_site.models import AuditEvent
from releases.choices import PackageState
from tests.deployments.conftest import drive, make_landscape
from tests.releases.factories import PackageFactory, ReleaseFactory, UnitFactory

pytestmark = pytest.mark.usefixtures("local_outbound")


def blue_green(target_server, *, health: str = "/health", **process):
    """Two blue and two green targets, each deploy an HTTP effect, the health gate per target."""
    steps = [
        {
            "name": "deploy",
            "executor": "http_call",
            "parameters": {
                "url": target_server.url("/effects/#{Target.Name}"),
                "rollback_url": target_server.url("/effects/undo-#{Target.Name}"),
            },
        }
    ]
    gate = {"executor": "http_health", "parameters": {"url": target_server.url(health)}, "per_target": True}
    return make_landscape(
        targets=4, rings=["blue", "blue", "green", "green"], steps=steps, health_checks=[gate], **process
    )


def parallel_plan(target_server, **extra):
    return {
        "live": "blue",
        "parallel": "green",
        "cutover": {
            "url": target_server.url("/effects/cutover?to=green"),
            "body": {"version": "#{Deployment.Version}"},
            "rollback_url": target_server.url("/effects/cutback"),
        },
        **extra,
    }


def planned(land, actor, plan):
    return services.deployment_create(
        actor=actor,
        process=land.process,
        environment=land.environment,
        model="parallel",
        version="2.0",
        phase_plan=plan,
    )


def test_the_plan_deploys_the_parallel_set_then_cuts_over_and_never_names_the_live_set(
    landscape, manager, target_server
):
    land = blue_green(target_server)
    deployment = planned(land, manager, parallel_plan(target_server, bake_seconds=0))

    waves = list(deployment.waves.order_by("index"))
    assert [(wave.name, wave.target_count) for wave in waves] == [("parallel set green", 2), ("cutover to green", 2)]
    touched = set(deployment.steps.exclude(target=None).values_list("target__ci__name", flat=True))
    assert touched == {land.targets[2].ci.name, land.targets[3].ci.name}
    cutover = deployment.steps.get(wave=waves[1], kind=StepKind.DEPLOY)
    assert (cutover.name, cutover.target_id, cutover.executor) == ("cut over to green", None, "http_call")
    assert cutover.parameters["body"] == {"version": "2.0"}
    assert waves[1].steps.filter(kind=StepKind.GATE).count() == 2, "verified again under traffic"


def test_a_parallel_rollout_cuts_over_once_and_the_cmdb_records_the_live_set(landscape, manager, target_server):
    # given blue serving and green idle
    land = blue_green(target_server)
    deployment = planned(land, manager, parallel_plan(target_server))

    # when the parallel rollout runs
    services.deployment_start(deployment=deployment, actor=manager)
    deployment = drive(deployment)

    # then green got the new version, traffic was cut over once, and blue was not touched
    assert deployment.state == DeploymentState.SUCCEEDED
    green, blue = land.targets[2:], land.targets[:2]
    assert target_server.effect_counts() == {
        **{f"/effects/{t.ci.name}": 1 for t in green},
        "/effects/cutover": 1,
    }
    assert target_server.requests_to("/effects/cutover")[0].body == b'{"version": "2.0"}'

    # and the CMDB says green is live, blue on standby, with the versions where they run, audited
    for target in land.targets:
        target.ci.refresh_from_db()
    assert [t.ci.attributes.get("traffic") for t in land.targets] == ["standby", "standby", "live", "live"]
    assert [t.ci.version for t in blue] != ["2.0", "2.0"]
    assert [t.ci.version for t in green] == ["2.0", "2.0"]
    assert AuditEvent.objects.filter(action="ci.update", reason=f"cut over to green by deployment #{deployment.pk}")


def test_a_release_unit_naming_both_sets_moves_only_the_set_that_got_the_version(landscape, manager, target_server):
    # given blue at 1.9 and a package whose release's unit names all four CIs, blue and green (in development,
    # where a built package may go without test evidence)
    land = blue_green(target_server, tier=EnvironmentTier.DEVELOPMENT)
    for target in land.targets:
        ConfigurationItem.objects.filter(pk=target.ci.pk).update(version="1.9")
    release = ReleaseFactory(services=[land.service])
    UnitFactory(release=release, name="shop-app").configuration_items.set([t.ci for t in land.targets])
    package = PackageFactory(release=release, version="2.0", state=PackageState.VALIDATED)
    deployment = services.deployment_create(
        actor=manager,
        process=land.process,
        environment=land.environment,
        model="parallel",
        package=package,
        phase_plan=parallel_plan(target_server),
    )

    # when the blue/green rollout of it succeeds
    services.deployment_start(deployment=deployment, actor=manager)
    assert drive(deployment).state == DeploymentState.SUCCEEDED

    # then green runs 2.0 and blue, which nothing touched, still 1.9 (a later rollback may only cut back to it)
    versions = dict(
        ConfigurationItem.objects.filter(pk__in=[t.ci.pk for t in land.targets]).values_list("pk", "version")
    )
    assert [versions[t.ci.pk] for t in land.targets] == ["1.9", "1.9", "2.0", "2.0"]


def test_a_failed_verification_after_cutover_cuts_back_and_leaves_both_sets_alone(landscape, manager, target_server):
    # given a rollout that bakes before each verification: the parallel set passes its gate, then traffic is cut
    # over and the wave bakes under traffic
    land = blue_green(target_server, health="/health")
    deployment = planned(land, manager, parallel_plan(target_server, bake_seconds=600))
    services.deployment_start(deployment=deployment, actor=manager)
    drive(deployment)
    drive_past_bake(deployment)
    assert target_server.effect_count("/effects/cutover") == 1
    assert deployment.waves.get(index=1).state == WaveState.VERIFYING

    # when the service turns unhealthy under traffic, and the gate judges it after the bake
    target_server.health_status = 503
    deployment = drive_past_bake(deployment)

    # then the rollback is the cut-back alone: no deploy step was undone, blue never touched
    assert deployment.state == DeploymentState.ROLLED_BACK
    assert "health gate of wave 2: cutover to green" in deployment.outcome
    rollback = list(deployment.steps.filter(kind=StepKind.ROLLBACK).values_list("name", "state"))
    assert rollback == [("roll back: cut over to green", StepState.SUCCEEDED)]
    assert target_server.effect_count("/effects/cutover") == 1
    assert target_server.effect_count("/effects/cutback") == 1
    assert not any(path.startswith("/effects/undo-") for path in target_server.effect_counts())
    assert not any(t.ci.name in path for t in land.targets[:2] for path in target_server.effect_counts())
    for target in land.targets:
        target.ci.refresh_from_db()
    assert all("traffic" not in t.ci.attributes for t in land.targets), "the live set did not change"


def drive_past_bake(deployment):
    """The bake time of the wave verifying is over now: drive the engine on from there."""
    Wave.objects.filter(deployment=deployment, state=WaveState.VERIFYING).update(verify_due_at=timezone.now())
    return drive(deployment)


def test_a_failed_parallel_set_is_not_cut_over_and_nothing_is_undone(landscape, manager, target_server):
    land = blue_green(target_server, health="/status/503")
    deployment = planned(land, manager, parallel_plan(target_server))
    services.deployment_start(deployment=deployment, actor=manager)

    deployment = drive(deployment)

    assert deployment.state == DeploymentState.ROLLED_BACK
    assert "health gate of wave 1: parallel set green" in deployment.outcome
    assert not deployment.steps.filter(kind=StepKind.ROLLBACK).exists()
    assert target_server.effect_count("/effects/cutover") == 0


def test_the_set_the_cmdb_says_is_live_cannot_be_the_parallel_set(landscape, manager, target_server):
    # given green serving, by the CMDB
    land = blue_green(target_server)
    for target in land.targets[2:]:
        target.ci.attributes = {"traffic": "live"}
        target.ci.save()

    # when a plan names green as the parallel set, it is refused, naming why
    with pytest.raises(InvalidInput) as refused:
        planned(land, manager, parallel_plan(target_server))
    assert "the parallel set 'green' (by ring) is live in the CMDB" in str(refused.value)

    # and the other way round is planned
    assert planned(land, manager, {**parallel_plan(target_server), "live": "green", "parallel": "blue"}).pk


def test_sets_may_be_named_by_group_or_by_a_ci_attribute(landscape, manager, target_server):
    land = blue_green(target_server)
    for n, target in enumerate(land.targets):
        target.ci.attributes = {"slot": "a" if n % 2 else "b"}
        target.ci.save()
    by_attribute = planned(land, manager, parallel_plan(target_server, set_by="attribute:slot", live="a", parallel="b"))
    names = set(by_attribute.steps.exclude(target=None).values_list("target__ci__name", flat=True))
    assert names == {land.targets[0].ci.name, land.targets[2].ci.name}

    with pytest.raises(InvalidInput, match="has no enabled target"):
        planned(land, manager, parallel_plan(target_server, set_by="group"))


def test_every_problem_of_a_parallel_plan_is_reported_at_once():
    problems = phase_plan_problems("parallel", {"set_by": "colour", "live": "x", "parallel": "x", "rings": []})
    assert problems == [
        "'rings' is not used by a parallel deployment",
        'set_by must be "ring", "group" or "attribute:<CI attribute>"',
        "the live and the parallel sets must differ",
        "cutover must give the url of the call that switches traffic (http_call parameters)",
    ]
    plan = {"live": "a", "parallel": "b", "cutover": {"url": "http://lb/x"}, "cutover_only": "yes"}
    assert phase_plan_problems("parallel", plan) == [
        "cutover must give the rollback_url that cuts back: it is the rollback",
        "cutover_only must be true or false",
    ]


def test_a_cutover_with_bad_parameters_is_refused_at_planning(landscape, manager, target_server):
    land = blue_green(target_server)
    plan = parallel_plan(target_server)
    plan["cutover"] = {**plan["cutover"], "url": "ftp://lb/switch", "body": {"v": "#{Nope}"}}
    with pytest.raises(InvalidInput, match="cutover: unknown variables: Nope"):
        planned(land, manager, plan)
