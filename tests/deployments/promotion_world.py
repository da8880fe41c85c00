"""A pipeline's world for continuous promotion tests: Shop in dev, test, staging and production, a release
under a policy a pipeline can satisfy alone, a pre-approved change template and a built, tested package."""

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from cmdb.choices import EnvironmentTier
from cmdb.models import Environment
from deployments import promotions
from deployments.choices import PromotionStageState
from deployments.models import DeploymentProcess, Promotion
from releases import services as release_services
from releases.choices import GateCode
from tests.deployments.conftest import drive
from tests.deployments.factories import CiFactory, StepTemplateFactory, TargetFactory
from tests.releases.conftest import SHA, World, make_world
from tests.releases.factories import ChangeTemplateFactory, EnvironmentFactory, WindowFactory

# What a pipeline can satisfy alone: tests it posts, the standard change's pre-approval, ELS policy defaults.
CONTINUOUS_GATES = {
    EnvironmentTier.DEVELOPMENT: [],
    EnvironmentTier.TEST: [GateCode.TESTS_PASSED],
    EnvironmentTier.STAGING: [GateCode.TESTS_PASSED],
    EnvironmentTier.PRODUCTION: [GateCode.PLAN_APPROVED, GateCode.TESTS_PASSED, GateCode.ELS_SCHEDULED],
}


@dataclass
class Pipeline:
    """Shop with a live target in dev, test, staging and production (in that promotion order), a release
    planned under a policy for continuous delivery, a pre-approved template, a production window open now,
    and a package the pipeline (the Build/CI Engineer) registered, built and tested."""

    world: World
    environments: list[Environment]
    process: DeploymentProcess
    template: object
    package: object

    @property
    def ci(self):
        return self.world.people.ci

    def request(self, **fields):
        return promotions.promotion_create(actor=self.ci, package=self.package, template=self.template, **fields)


def make_pipeline(*, gates=None, steps=None) -> Pipeline:
    world = make_world()
    people, now = world.people, timezone.now()
    world.policy.gates_required = {
        str(tier): [str(g) for g in codes] for tier, codes in (gates or CONTINUOUS_GATES).items()
    }
    world.policy.save()
    Environment.objects.filter(pk=world.production.pk).update(promotion_order=400)
    Environment.objects.filter(pk=world.staging.pk).update(promotion_order=300)
    dev = EnvironmentFactory(name="dev", tier=EnvironmentTier.DEVELOPMENT, promotion_order=100)
    test = EnvironmentFactory(name="test", tier=EnvironmentTier.TEST, promotion_order=200)
    environments = [
        dev,
        test,
        Environment.objects.get(pk=world.staging.pk),
        Environment.objects.get(pk=world.production.pk),
    ]
    for environment in environments:
        TargetFactory(ci=CiFactory(name=f"shop-{environment.name}", environment=environment, service=world.service))
    WindowFactory(
        name="always-now",
        first_date=(now - timedelta(days=2)).date(),
        start_time=(now - timedelta(hours=1)).time().replace(microsecond=0),
        rrule="FREQ=DAILY",
        duration=timedelta(hours=6),
        time_zone="UTC",
        environments=[world.production],
    )
    process = DeploymentProcess.objects.create(service=world.service, name="shop")
    for position, fields in enumerate(steps or [{"name": "deploy", "executor": "simulator"}]):
        StepTemplateFactory(process=process, position=position, **fields)
    template = ChangeTemplateFactory(name="Shop continuous delivery", services=[world.service])
    release_services.release_plan(release=world.release, actor=people.rm)
    package = release_services.package_register(
        release=world.release,
        actor=people.ci,
        version="2.0.1",
        artifacts=[{"name": "shop.tar.gz", "uri": "https://artifacts.example/shop.tar.gz", "sha256": SHA}],
    )
    release_services.package_mark_built(package=package, actor=people.ci)
    release_services.test_run_record(package=package, actor=people.ci, suite="regression", passed=120)
    # a production deployment takes a validated package: a Deployment Manager vouches for the build
    release_services.package_validate(package=package, actor=people.dm)
    package.refresh_from_db()
    return Pipeline(world, environments, process, template, package)


def drive_promotion(promotion: Promotion) -> Promotion:
    """Drive each stage's deployment to its end, then follow it as the task queued at its end does."""
    for _ in range(10):
        running = promotion.stages.filter(state=PromotionStageState.RUNNING).select_related("deployment").first()
        if running is None:
            break
        drive(running.deployment)
        promotions.promotion_deployment_ended(deployment_id=running.deployment_id)
    promotion.refresh_from_db()
    return promotion
