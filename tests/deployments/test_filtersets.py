"""The deployments FilterSets: times with any offset ISO 8601 allows are compared in UTC, and a time UTC cannot
hold is bad input, not a database error."""

from datetime import UTC, datetime

import pytest

from deployments.filtersets import DeploymentFilterSet, ElsFilterSet, IncidentFilterSet
from deployments.incidents import incident_open
from deployments.models import Deployment, EarlyLifeSupport, Incident
from tests.deployments.factories import CiFactory

pytestmark = pytest.mark.django_db


def test_an_offset_the_database_refuses_is_compared_in_utc():
    # given an incident opened at noon UTC
    incident, _ = incident_open(actor=None, title="slow", severity="p3", ci=CiFactory())
    Incident.objects.filter(pk=incident.pk).update(opened_at=datetime(2030, 1, 1, 12, tzinfo=UTC))

    # when it is looked for with offsets of +19:24 (ISO 8601 allows them; PostgreSQL stops at 15:59)
    def found(**times) -> list[Incident]:
        filters = IncidentFilterSet(times, queryset=Incident.objects.all())
        assert filters.is_valid(), filters.errors
        return list(filters.qs)

    # then the times are the same moments, in UTC
    assert found(opened_after="2030-01-02T07:23:00+19:24") == [incident]  # 11:59 UTC
    assert found(opened_after="2030-01-02T07:25:00+19:24") == []  # 12:01 UTC
    assert found(opened_before="2030-01-02T07:25:00+19:24") == [incident]


@pytest.mark.parametrize(
    ("filterset", "model", "name"),
    [
        (IncidentFilterSet, Incident, "opened_after"),
        (DeploymentFilterSet, Deployment, "created_before"),
        (DeploymentFilterSet, Deployment, "finished_after"),
        (ElsFilterSet, EarlyLifeSupport, "planned_end_before"),
    ],
)
def test_a_time_before_the_first_year_in_utc_is_refused(filterset, model, name):
    filters = filterset({name: "0001-01-01T02:00:00+05:00"}, queryset=model.objects.all())
    assert not filters.is_valid()
    assert "between the years 1 and 9999" in str(filters.errors)
