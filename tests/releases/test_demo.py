"""The demo governance data loads through the services, shows releases at several points, and loads again unchanged."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from cmdb.choices import EnvironmentTier
from cmdb.models import Environment
from releases.checklist import checklist_evaluate
from releases.choices import GateCode, ReleaseState
from releases.demo import TEMPLATES, year_end_freeze
from releases.models import (
    Approval,
    ChangeRecord,
    ChangeTemplate,
    FreezePeriod,
    Release,
    ReleasePackage,
    ReleasePolicy,
    ReleaseWindow,
)
from releases.scheduling import deployment_permitted, production_deployment_eligible

MODELS = (ReleasePolicy, ReleaseWindow, FreezePeriod, ChangeTemplate, Release, ReleasePackage, ChangeRecord, Approval)


def counts() -> list[int]:
    return [model.objects.count() for model in MODELS]


@pytest.fixture
def demo(demo_users):
    call_command("demo_load")


# The releases this loader drives, by name; the demo of life after go-live adds other versions of them.
GOVERNED = {"Customer Portal": "1.9", "Search": "2.8", "Web Shop": "5.1", "Payments": "2.4", "Notifications": "0.9"}


def _release(name) -> Release:
    return Release.objects.get(name=name, version=GOVERNED[name])


@pytest.mark.django_db
def test_the_demo_loads_twice_to_the_same_data(demo):
    first = counts()
    call_command("demo_load")
    assert counts() == first
    assert set(ReleasePolicy.objects.values_list("release_type", flat=True)) == {"major", "minor", "patch", "emergency"}
    templates = ChangeTemplate.objects.filter(name__in=[name for name, *_ in TEMPLATES])
    assert templates.exclude(approved_at=None).count() == 2


@pytest.mark.django_db
def test_the_demo_shows_releases_at_several_points(demo):
    production = Environment.objects.get(name="production")
    states = {name: _release(name).state for name in GOVERNED}
    assert states == {
        "Customer Portal": ReleaseState.DRAFT,
        "Search": ReleaseState.SUBMITTED,
        "Web Shop": ReleaseState.READY,
        "Payments": ReleaseState.APPROVED,
        "Notifications": ReleaseState.SUBMITTED,
    }
    # the ready release is green and eligible inside its change's schedule, which sits in the window
    shop = _release("Web Shop")
    assert checklist_evaluate(shop, EnvironmentTier.PRODUCTION).green
    change = shop.changes.get()
    assert production_deployment_eligible(shop, production, change.planned_start + timedelta(minutes=5)) == []
    # the blocked one fails its tests gate, because of critical failures
    unmet = checklist_evaluate(_release("Payments"), EnvironmentTier.PRODUCTION).unmet
    assert [gate.code for gate in unmet] == [GateCode.TESTS_PASSED]
    assert "2 critical" in unmet[0].status
    # and the frozen one is planned inside the year-end freeze
    frozen = _release("Notifications")
    answer = deployment_permitted(frozen.services.all(), production, frozen.planned_start)
    assert any(reason.startswith("inside freeze Year-end freeze") for reason in answer.reasons)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("today", "freeze_from", "freeze_until"),
    [
        (
            datetime(2026, 12, 10, 9, 0, tzinfo=UTC),
            datetime(2026, 12, 19, tzinfo=UTC),
            datetime(2027, 1, 5, tzinfo=UTC),
        ),
        (
            datetime(2026, 12, 24, 9, 0, tzinfo=UTC),
            datetime(2026, 12, 19, tzinfo=UTC),
            datetime(2027, 1, 5, tzinfo=UTC),
        ),
        (datetime(2027, 1, 3, 9, 0, tzinfo=UTC), datetime(2026, 12, 19, tzinfo=UTC), datetime(2027, 1, 5, tzinfo=UTC)),
        (datetime(2027, 3, 1, 9, 0, tzinfo=UTC), datetime(2027, 12, 19, tzinfo=UTC), datetime(2028, 1, 5, tzinfo=UTC)),
    ],
    ids=["december-before", "december-during", "january-during", "spring"],
)
def test_the_demo_year_end_freeze_is_the_one_in_force_or_next_from_today(today, freeze_from, freeze_until):
    freeze = year_end_freeze(today)
    assert (freeze.start, freeze.end) == (freeze_from, freeze_until)
