"""DORA's per-deployment facts (``deployments.dora_facts``): stored by the end of each deployment, or filled for
existing rows, they give exactly the figures the metrics computed before from every deployment joined with its
package, release and policy (``dora_reference``), on a varied world; and the engine's end stores them."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from cmdb.choices import EnvironmentTier
from deployments import services
from deployments.choices import DeploymentState
from deployments.dora_facts import dora_facts_backfill, dora_facts_record
from deployments.metrics import DoraScope, Period, dora_keys, dora_report, dora_series
from deployments.models import Deployment, Incident
from releases.choices import PackageState, ReleaseType
from tests.deployments.dora_reference import reference_keys, reference_series
from tests.deployments.factories import EnvironmentFactory, ProcessFactory, ServiceFactory
from tests.factories import UserFactory
from tests.releases.factories import PackageFactory, PolicyFactory, ReleaseFactory

pytestmark = pytest.mark.django_db

BEGINNING = datetime(2025, 1, 6, tzinfo=UTC)
PERIOD = DoraScope(start=BEGINNING + timedelta(days=60), end=BEGINNING + timedelta(days=120))
ENDINGS = [
    (DeploymentState.SUCCEEDED, True),
    (DeploymentState.SUCCEEDED, True),
    (DeploymentState.SUCCEEDED, True),
    (DeploymentState.FAILED, True),
    (DeploymentState.ROLLED_BACK, True),
    (DeploymentState.ABORTED, True),
    (DeploymentState.ABORTED, False),  # before it started: not a deployment
    (DeploymentState.RUNNING, True),  # not ended yet
]


def varied_world(seed: int) -> dict:
    """Three services deploying to two production environments and staging over 150 days, with releases of
    every type under policies of different hotfix windows (a release deployed more than once, packages with and
    without a commit time, deployments without a package), every ending, redeployments and incidents; each
    deployment's facts recorded as it ends, in the order they end, as the engine's end hook does."""
    rng = random.Random(seed)  # noqa: S311 - a world, not a secret
    services_ = [ServiceFactory(name=f"service-{n}") for n in range(3)]
    environments = [
        EnvironmentFactory(name="production-eu", tier=EnvironmentTier.PRODUCTION),
        EnvironmentFactory(name="production-us", tier=EnvironmentTier.PRODUCTION),
        EnvironmentFactory(name="staging", tier=EnvironmentTier.STAGING),
    ]
    policies = [
        PolicyFactory(release_type=ReleaseType.MAJOR, hotfix_window_days=20),
        PolicyFactory(release_type=ReleaseType.MINOR, hotfix_window_days=10),
        PolicyFactory(release_type=ReleaseType.PATCH, hotfix_window_days=5),
        PolicyFactory(release_type=ReleaseType.PATCH, hotfix_window_days=12),
        PolicyFactory(release_type=ReleaseType.EMERGENCY, hotfix_window_days=2),
    ]
    manager = UserFactory()
    processes = {service: ProcessFactory(service=service) for service in services_}
    packages = {service: [] for service in services_}
    for service in services_:
        for _release in range(12):
            release = ReleaseFactory(policy=rng.choice(policies), services=[service], release_manager=manager)
            for built in range(rng.choice((1, 1, 2)), 0, -1):  # the last one current, any other superseded
                commit = BEGINNING + timedelta(hours=rng.randrange(0, 150 * 24)) if rng.random() < 0.7 else None
                packages[service].append(
                    PackageFactory(
                        release=release,
                        built_by=manager,
                        state=PackageState.BUILT if built == 1 else PackageState.SUPERSEDED,
                        first_commit_at=commit,
                        registered_at=BEGINNING + timedelta(hours=rng.randrange(-240, 150 * 24)),
                    )
                )
    plans = []
    for _ in range(260):
        finished = BEGINNING + timedelta(minutes=rng.randrange(0, 150 * 24 * 60))
        if rng.random() < 0.05 and plans:  # two ending at the same moment
            finished = rng.choice(plans)[2]
        plans.append((rng.choice(services_), rng.choice(environments), finished, *rng.choice(ENDINGS)))
    plans.sort(key=lambda plan: plan[2])
    ended = []
    for service, environment, finished, state, started in plans:
        replaced = [d for d in ended if d.service == service and d.environment == environment]
        deployment = Deployment.objects.create(
            service=service,
            environment=environment,
            process=processes[service],
            model="big_bang",
            state=state,
            package=rng.choice(packages[service]) if rng.random() < 0.85 else None,
            replaces=rng.choice(replaced) if replaced and rng.random() < 0.08 else None,
            started_at=finished - timedelta(hours=1) if started else None,
            finished_at=None if state == DeploymentState.RUNNING else finished,
        )
        dora_facts_record(deployment)
        ended.append(deployment)
    for deployment in rng.sample(ended, 40):
        opened = (deployment.finished_at or BEGINNING) + timedelta(hours=rng.randrange(1, 48))
        resolved = opened + timedelta(minutes=rng.randrange(10, 3000)) if rng.random() < 0.8 else None
        Incident.objects.create(
            title="trouble", severity="p2", opened_at=opened, resolved_at=resolved, deployment=deployment
        )
    return {"services": services_, "environments": environments}


def scopes_of(world: dict) -> list[DoraScope]:
    production_eu, _, staging = world["environments"]
    service = world["services"][0]
    scopes = [PERIOD, PERIOD.previous(), DoraScope(start=BEGINNING, end=BEGINNING + timedelta(days=150))]
    scopes += [DoraScope(start=PERIOD.start, end=PERIOD.end, service_id=s.pk) for s in world["services"]]
    scopes += [
        DoraScope(start=PERIOD.start, end=PERIOD.end, environment_id=environment.pk)
        for environment in (production_eu, staging)
    ]
    scopes.append(DoraScope(start=PERIOD.start, end=PERIOD.end, service_id=service.pk, environment_id=staging.pk))
    return scopes


def figures(keys) -> tuple:
    return (
        keys.deployments,
        keys.failed_deployments,
        keys.changes_measured,
        keys.lead_time_median_hours,
        keys.lead_time_p90_hours,
        keys.restorations,
        keys.time_to_restore_median_hours,
    )


def points(series) -> list[tuple]:
    return [
        (
            point.starts,
            point.deployments,
            point.failed_deployments,
            point.lead_time_median_hours,
            point.lead_time_p90_hours,
            point.restorations,
            point.time_to_restore_median_hours,
        )
        for point in series
    ]


def assert_as_before(world: dict) -> None:
    """Every figure equal, not merely close: both are PostgreSQL's percentiles of the same values."""
    for scope in scopes_of(world):
        [keys] = dora_keys(scope)
        assert figures(keys) == reference_keys(scope), scope
    report = dora_report(PERIOD, Period.WEEK)
    assert figures(report.current) == reference_keys(PERIOD)
    assert figures(report.previous) == reference_keys(PERIOD.previous())
    assert points(report.series) == reference_series(PERIOD, Period.WEEK)
    for period in Period:
        for scope in scopes_of(world)[2:5]:
            assert points(dora_series(scope, period)) == reference_series(scope, period), (scope, period)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_facts_recorded_at_each_end_give_the_figures_computed_before(seed):
    world = varied_world(seed)
    assert Deployment.objects.filter(followed_by_hotfix=True).exists()  # the world has hotfixes to find
    assert_as_before(world)


def test_the_backfill_fills_the_facts_of_existing_deployments():
    world = varied_world(4)
    recorded = set(Deployment.objects.values_list("id", "change_started_at", "followed_by_hotfix"))
    Deployment.objects.update(change_started_at=None, followed_by_hotfix=False)

    changed = dora_facts_backfill()

    assert changed > 0
    assert set(Deployment.objects.values_list("id", "change_started_at", "followed_by_hotfix")) == recorded
    assert_as_before(world)
    assert dora_facts_backfill() == 0  # a second run changes nothing


def test_without_the_facts_the_figures_would_differ():
    """The control: the comparison above can fail."""
    world = varied_world(5)
    Deployment.objects.update(change_started_at=None, followed_by_hotfix=False)

    with pytest.raises(AssertionError):
        assert_as_before(world)


def test_the_end_of_a_hotfix_marks_the_deployment_it_followed(landscape, manager):
    # given a deployment of a minor release that ended an hour ago, and a patch release (3-day window) being deployed
    land = landscape(targets=2)
    now = datetime.now(UTC)

    def deployment(package, state, finished=None):
        return Deployment.objects.create(
            service=land.service,
            environment=land.environment,
            process=land.process,
            model="big_bang",
            state=state,
            package=package,
            started_at=now - timedelta(hours=2),
            finished_at=finished,
        )

    earlier = deployment(
        PackageFactory(release=ReleaseFactory(services=[land.service])), DeploymentState.SUCCEEDED, now
    )
    patch = ReleaseFactory(policy=PolicyFactory(release_type=ReleaseType.PATCH, hotfix_window_days=3))
    first_commit = datetime(2025, 5, 1, tzinfo=UTC)
    hotfix = deployment(PackageFactory(release=patch, first_commit_at=first_commit), DeploymentState.RUNNING)

    # when the hotfix's deployment ends (aborted mid-rollout: it still changed production)
    services.deployment_abort(deployment=hotfix, actor=manager, reason="half done")

    # then the earlier deployment was followed by a hotfix, and the hotfix's change started at its first commit
    earlier.refresh_from_db()
    hotfix.refresh_from_db()
    assert hotfix.state == DeploymentState.ABORTED
    assert earlier.followed_by_hotfix
    assert (hotfix.change_started_at, hotfix.followed_by_hotfix) == (first_commit, False)
