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


def blast_radius(root: ConfigurationItem, near: int, behind_each: int, services: list[Service]) -> None:
    """``near`` CIs depending on ``root`` and ``behind_each`` more depending on each of them (depth 2), in
    ``root``'s environment, their services taken in turn: a large blast radius in four bulk inserts."""

    def cis(names: list[str]) -> list[ConfigurationItem]:
        made = [
            ConfigurationItem(
                name=name,
                ci_type=CiType.APPLICATION,
                state=CiState.LIVE,
                environment=root.environment,
                service=services[number % len(services)],
            )
            for number, name in enumerate(names)
        ]
        return ConfigurationItem.objects.bulk_create(made)

    first = cis([f"near-{number:05d}" for number in range(near)])
    Relationship.objects.bulk_create(
        Relationship(source=ci, target=root, kind=RelationshipKind.DEPENDS_ON) for ci in first
    )
    second = cis([f"far-{number:05d}" for number in range(near * behind_each)])
    Relationship.objects.bulk_create(
        Relationship(source=ci, target=first[number // behind_each], kind=RelationshipKind.DEPENDS_ON)
        for number, ci in enumerate(second)
    )
