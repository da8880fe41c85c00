"""factory_boy factories for the CMDB."""

import factory

from cmdb.choices import CiState, CiType, EnvironmentTier, RelationshipKind
from cmdb.models import ConfigurationItem, Environment, Relationship, Service
from tests.factories import UserFactory


class EnvironmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Environment
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"env-{n}")
    slug = factory.LazyAttribute(lambda environment: environment.name)
    tier = EnvironmentTier.TEST
    promotion_order = factory.Sequence(lambda n: 100 + n)


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Service {n}")
    slug = factory.Sequence(lambda n: f"service-{n}")
    owner = factory.SubFactory(UserFactory)


class ConfigurationItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ConfigurationItem

    name = factory.Sequence(lambda n: f"ci-{n}")
    ci_type = CiType.APPLICATION
    state = CiState.LIVE
    environment = factory.SubFactory(EnvironmentFactory)
    service = factory.SubFactory(ServiceFactory)


class RelationshipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Relationship

    source = factory.SubFactory(ConfigurationItemFactory)
    target = factory.SubFactory(ConfigurationItemFactory)
    kind = RelationshipKind.DEPENDS_ON
