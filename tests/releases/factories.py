"""factory_boy factories for release governance (and the few CMDB rows its tests stand on)."""

from datetime import date, time, timedelta

import factory
from django.utils import timezone

from cmdb.choices import CiState, EnvironmentTier
from rdm_site.roles import Role
from releases.choices import ChangeType, PackageState, ReleaseState, ReleaseType, Risk, UnitKind
from releases.models import (
    ChangeRecord,
    ChangeTemplate,
    FreezePeriod,
    PackageArtifact,
    Release,
    ReleasePackage,
    ReleasePolicy,
    ReleaseUnit,
    ReleaseWindow,
    TestRun,
)
from tests.cmdb import factories as cmdb_factories
from tests.factories import UserFactory, many_to_many

SHA = "a" * 64


class EnvironmentFactory(cmdb_factories.EnvironmentFactory):
    name = factory.Sequence(lambda n: f"rel-env-{n}")
    tier = EnvironmentTier.PRODUCTION
    promotion_order = factory.Sequence(lambda n: 1000 + n)


class ServiceFactory(cmdb_factories.ServiceFactory):
    class Meta:
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Rel Service {n}")
    slug = factory.Sequence(lambda n: f"rel-service-{n}")
    owner = factory.SubFactory(UserFactory, roles=[Role.SERVICE_OWNER])
    stakeholders = many_to_many("stakeholders")


class ConfigurationItemFactory(cmdb_factories.ConfigurationItemFactory):
    name = factory.Sequence(lambda n: f"rel-ci-{n}")
    state = CiState.PLANNED
    environment = factory.SubFactory(EnvironmentFactory)
    service = factory.SubFactory(ServiceFactory)


class PolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReleasePolicy

    name = factory.Sequence(lambda n: f"policy-{n}")
    release_type = ReleaseType.MINOR
    approvals_required = 1
    lead_time_days = 0


class ReleaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Release
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Release {n}")
    version = "1.0"
    release_type = factory.LazyAttribute(lambda release: release.policy.release_type)
    policy = factory.SubFactory(PolicyFactory)
    planned_start = factory.LazyFunction(lambda: timezone.now() + timedelta(days=10))
    planned_end = factory.LazyAttribute(lambda release: release.planned_start + timedelta(hours=2))
    release_manager = factory.SubFactory(UserFactory, roles=[Role.RELEASE_MANAGER])
    requested_by = factory.SelfAttribute("release_manager")
    description = "What it brings."
    state = ReleaseState.DRAFT

    @factory.post_generation
    def services(self, create, extracted, **kwargs):
        if create:
            self.services.set(extracted if extracted is not None else [ServiceFactory()])


class PackageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReleasePackage

    release = factory.SubFactory(ReleaseFactory)
    version = factory.Sequence(lambda n: f"build-{n}")
    built_by = factory.SubFactory(UserFactory, roles=[Role.BUILD_ENGINEER])
    state = PackageState.ASSEMBLING


class ArtifactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PackageArtifact

    package = factory.SubFactory(PackageFactory)
    name = factory.Sequence(lambda n: f"artifact-{n}.tar.gz")
    uri = factory.LazyAttribute(lambda artifact: f"https://artifacts.example/{artifact.name}")
    sha256 = SHA


class TestRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TestRun

    __test__ = False

    package = factory.SubFactory(PackageFactory)
    suite = "regression"
    passed = 100


class UnitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReleaseUnit

    release = factory.SubFactory(ReleaseFactory)
    name = factory.Sequence(lambda n: f"unit-{n}")
    kind = UnitKind.APPLICATION_ARTIFACT


class ChangeTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChangeTemplate
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Template {n}")
    description = "A routine, low-risk change."
    risk = Risk.LOW
    approved_by = factory.SubFactory(UserFactory, roles=[Role.CHANGE_APPROVER])
    approved_at = factory.LazyFunction(timezone.now)

    services = many_to_many("services")


class ChangeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChangeRecord
        skip_postgeneration_save = True

    number = factory.Sequence(lambda n: f"CHG-T{n:04d}")
    change_type = ChangeType.NORMAL
    title = factory.Sequence(lambda n: f"Change {n}")
    planned_start = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))
    planned_end = factory.LazyAttribute(lambda change: change.planned_start + timedelta(hours=2))
    requested_by = factory.SubFactory(UserFactory, roles=[Role.RELEASE_MANAGER])
    state = "draft"

    services = many_to_many("services")

    configuration_items = many_to_many("configuration_items")


class WindowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReleaseWindow
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"window-{n}")
    first_date = date(2025, 1, 7)
    start_time = time(22, 0)
    rrule = "FREQ=WEEKLY;BYDAY=TU,TH"
    duration = timedelta(hours=4)
    time_zone = "Europe/London"

    environments = many_to_many("environments")

    services = many_to_many("services")


class FreezeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FreezePeriod
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"freeze-{n}")
    start = factory.LazyFunction(timezone.now)
    end = factory.LazyAttribute(lambda freeze: freeze.start + timedelta(days=1))
    reason = "Peak trading."

    environments = many_to_many("environments")

    services = many_to_many("services")
