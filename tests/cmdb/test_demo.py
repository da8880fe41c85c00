"""The demo CMDB loads, makes sense, and loads again without changing anything."""

import pytest
from django.core.management import call_command

from cmdb.choices import CiState
from cmdb.models import Baseline, BaselineItem, ConfigurationItem, Environment, Relationship, Service
from cmdb.selectors import ci_impact, version_matrix


def counts() -> list[int]:
    return [model.objects.count() for model in (Environment, Service, ConfigurationItem, Relationship, BaselineItem)]


@pytest.mark.django_db
def test_the_demo_cmdb_loads_twice_to_the_same_data(demo_users):
    # when the demo data is loaded twice (the command loads users, then the CMDB)
    call_command("demo_load")
    first = counts()
    call_command("demo_load")
    # then nothing is duplicated, and there is one "initial" baseline of every CI
    assert counts() == first
    assert Baseline.objects.get(name="initial").items.count() == ConfigurationItem.objects.count()
    # and the shared orders database hurts the shop, the portal and payments in production when it breaks
    orders_db = ConfigurationItem.objects.get(name="orders-db", environment__name="production")
    hurt = {impacted.service.name for impacted in ci_impact(orders_db).services}
    assert {"Payments", "Web Shop", "Customer Portal", "Notifications"} <= hurt
    # and the version matrix shows what runs where
    shop = next(row for row in version_matrix().rows if row.service.name == "Web Shop")
    assert [cell.versions for cell in shop.cells] == [["5.1.0"], ["5.0.2"], ["5.0.2"], ["5.0.1"]]
    assert ConfigurationItem.objects.get(name="search-index", environment__name="test").state == CiState.MAINTENANCE
