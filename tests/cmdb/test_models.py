"""The CMDB models: the CI lifecycle, the constraints, concurrent transitions."""

import pytest
from django.db import IntegrityError, transaction
from django_fsm import ConcurrentTransition, can_proceed

from cmdb.choices import CiState, CiTransition, RelationshipKind
from cmdb.models import ConfigurationItem
from tests.cmdb.factories import ConfigurationItemFactory, EnvironmentFactory, RelationshipFactory

# (state, transition) → the state it leads to; every pair not listed is refused.
LIFECYCLE = {
    (CiState.PLANNED, CiTransition.BUILD): CiState.IN_BUILD,
    (CiState.IN_BUILD, CiTransition.GO_LIVE): CiState.LIVE,
    (CiState.LIVE, CiTransition.START_MAINTENANCE): CiState.MAINTENANCE,
    (CiState.MAINTENANCE, CiTransition.END_MAINTENANCE): CiState.LIVE,
    (CiState.PLANNED, CiTransition.RETIRE): CiState.RETIRED,
    (CiState.IN_BUILD, CiTransition.RETIRE): CiState.RETIRED,
    (CiState.LIVE, CiTransition.RETIRE): CiState.RETIRED,
    (CiState.MAINTENANCE, CiTransition.RETIRE): CiState.RETIRED,
}
EVERY_PAIR = [(state, transition) for state in CiState for transition in CiTransition]


@pytest.mark.parametrize(("state", "transition"), EVERY_PAIR)
def test_every_state_and_transition_pair_is_allowed_or_refused_as_the_lifecycle_says(state, transition):
    # given a CI in the state
    ci = ConfigurationItem(state=state)
    method = getattr(ci, transition.value)
    # when the transition is asked for / then it moves exactly as the table says, or is refused
    expected = LIFECYCLE.get((state, transition))
    assert can_proceed(method) == (expected is not None)
    if expected:
        method()
        assert ci.state == expected


def test_the_state_machine_answers_which_transition_leads_where():
    assert ConfigurationItem.transition_between(CiState.LIVE, CiState.MAINTENANCE) == CiTransition.START_MAINTENANCE
    assert ConfigurationItem.transition_between(CiState.PLANNED, CiState.LIVE) is None


def test_nobody_assigns_the_state_by_hand():
    ci = ConfigurationItem(state=CiState.LIVE)
    with pytest.raises(AttributeError):
        ci.state = CiState.RETIRED


@pytest.mark.django_db
def test_a_ci_name_is_unique_within_its_environment_only():
    # given orders-db in staging
    staging = EnvironmentFactory(name="staging")
    ConfigurationItemFactory(name="orders-db", environment=staging)
    # when the same name is used in production / then that is a different CI
    ConfigurationItemFactory(name="orders-db", environment=EnvironmentFactory(name="production"))
    # when it is used again in staging / then the database refuses it
    with pytest.raises(IntegrityError):
        ConfigurationItemFactory(name="orders-db", environment=staging)


@pytest.mark.django_db
def test_a_ci_cannot_relate_to_itself_and_a_relationship_exists_once():
    ci, other = ConfigurationItemFactory(), ConfigurationItemFactory()
    RelationshipFactory(source=ci, target=other, kind=RelationshipKind.DEPENDS_ON)
    RelationshipFactory(source=ci, target=other, kind=RelationshipKind.CONNECTS_TO)
    with pytest.raises(IntegrityError):
        RelationshipFactory(source=ci, target=other, kind=RelationshipKind.DEPENDS_ON)


@pytest.mark.django_db
def test_a_relationship_from_a_ci_to_itself_is_refused_by_the_database():
    ci = ConfigurationItemFactory()
    with pytest.raises(IntegrityError):
        RelationshipFactory(source=ci, target=ci)


@pytest.mark.django_db
def test_a_transition_saved_from_a_stale_copy_is_refused():
    # given two copies of the same live CI
    ci = ConfigurationItemFactory(state=CiState.LIVE)
    first, second = ConfigurationItem.objects.get(pk=ci.pk), ConfigurationItem.objects.get(pk=ci.pk)
    # when one copy retires it and the other then starts maintenance
    first.retire()
    first.save()
    second.start_maintenance()
    # then the second save fails instead of undoing the retirement
    with pytest.raises(ConcurrentTransition), transaction.atomic():
        second.save()
    assert ConfigurationItem.objects.get(pk=ci.pk).state == CiState.RETIRED
