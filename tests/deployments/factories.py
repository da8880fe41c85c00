"""Factories for deployment tests: a service with live CIs in an environment, targets and a process."""

import factory

from cmdb.choices import CiType
from deployments.models import DeploymentProcess, StepTemplate, Target
from tests.cmdb import factories as cmdb_factories


class EnvironmentFactory(cmdb_factories.EnvironmentFactory):
    name = factory.Sequence(lambda n: f"env{n}")
    promotion_order = factory.Sequence(lambda n: n + 10)


class ServiceFactory(cmdb_factories.ServiceFactory):
    name = factory.Sequence(lambda n: f"service{n}")
    slug = factory.LazyAttribute(lambda service: service.name)


class CiFactory(cmdb_factories.ConfigurationItemFactory):
    name = factory.Sequence(lambda n: f"node-{n:04}")
    ci_type = CiType.SERVER
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
