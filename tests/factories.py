"""factory_boy factories shared across the suite."""

import factory
from django.contrib.auth.models import Group, User

from rdm_site.demo import DEMO_PASSWORD


def many_to_many(field: str) -> factory.PostGeneration:
    """``Factory(field=[...])`` sets that many-to-many field once the row exists."""

    def assign(obj, create, extracted, **kwargs):
        if create and extracted:
            getattr(obj, field).set(extracted)

    return factory.PostGeneration(assign)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@rdm.example")
    password = factory.PostGenerationMethodCall("set_password", DEMO_PASSWORD)

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        """``UserFactory(roles=[Role.VIEWER])`` puts the user in those role groups."""
        if create and extracted:
            self.groups.set(Group.objects.filter(name__in=[str(role) for role in extracted]))
        if create:
            self.save()
