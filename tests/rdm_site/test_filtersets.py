"""Filters that narrow a list without DISTINCT (``rdm_site.filtersets``): a choice of a row's own values, and a choice
of records through a to-many relation as a semi-join; each lists every matching row once."""

import pytest

from cmdb.choices import CiState
from cmdb.filtersets import ConfigurationItemFilterSet
from releases.filtersets import ChangeRecordFilterSet, ReleaseFilterSet
from tests.cmdb.factories import ConfigurationItemFactory
from tests.releases.factories import ChangeFactory, ReleaseFactory, ServiceFactory

pytestmark = pytest.mark.django_db


def test_a_choice_of_values_lists_the_matching_rows_without_distinct():
    live = ConfigurationItemFactory.create_batch(2, state=CiState.LIVE)
    retired = ConfigurationItemFactory(state=CiState.RETIRED)
    ConfigurationItemFactory(state=CiState.PLANNED)

    narrowed = ConfigurationItemFilterSet({"state": ["live", "retired"]}).qs

    assert sorted(ci.pk for ci in narrowed) == sorted(ci.pk for ci in [*live, retired])
    assert "DISTINCT" not in str(narrowed.query)


def test_a_record_related_to_several_chosen_ones_is_listed_once():
    shop, search, other = ServiceFactory(), ServiceFactory(), ServiceFactory()
    both = ReleaseFactory(services=[shop, search])
    one = ReleaseFactory(services=[search])
    ReleaseFactory(services=[other])

    narrowed = ReleaseFilterSet({"services": [shop.pk, search.pk]}).qs

    assert sorted(release.pk for release in narrowed) == sorted([both.pk, one.pk])
    assert "DISTINCT" not in str(narrowed.query)


def test_filters_on_two_relations_and_a_value_combine():
    shop, search = ServiceFactory(), ServiceFactory()
    wanted = ChangeFactory(services=[shop, search], state="submitted")
    ChangeFactory(services=[shop], state="draft")
    ChangeFactory(services=[search], state="submitted")

    narrowed = ChangeRecordFilterSet({"services": [shop.pk], "state": ["submitted"]}).qs

    assert list(narrowed) == [wanted]


def test_no_choice_leaves_the_list_whole():
    ReleaseFactory.create_batch(2, services=[ServiceFactory()])

    assert ReleaseFilterSet({"services": []}).qs.count() == 2
