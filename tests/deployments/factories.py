"""Factories for deployment tests: a service with live CIs in an environment, targets and a process."""

import factory

from cmdb.choices import CiState, CiType, EnvironmentTier
from cmdb.models import ConfigurationItem, Environment, Service
from deployments.models import DeploymentProcess, StepTemplate, Target
from tests.factories import UserFactory


class EnvironmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Environment
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"env{n}")
    slug = factory.LazyAttribute(lambda env: env.name)
    tier = EnvironmentTier.TEST
    promotion_order = factory.Sequence(lambda n: n + 10)


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"service{n}")
    slug = factory.LazyAttribute(lambda service: service.name)
    owner = factory.SubFactory(UserFactory)


class CiFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ConfigurationItem

    name = factory.Sequence(lambda n: f"node-{n:04}")
    ci_type = CiType.SERVER
    state = CiState.LIVE
    environment = factory.SubFactory(EnvironmentFactory)
    service = factory.SubFactory(ServiceFactory)
    version = "1.0.0"


class TargetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Target

    ci = factory.SubFactory(CiFactory)


class ProcessFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeploymentProcess

    service = factory.SubFactory(ServiceFactory)
    name = factory.Sequence(lambda n: f"process{n}")


class StepTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StepTemplate

    process = factory.SubFactory(ProcessFactory)
    name = factory.Sequence(lambda n: f"step{n}")
    position = factory.Sequence(lambda n: n)
    executor = "simulator"
    parameters = factory.LazyFunction(dict)
