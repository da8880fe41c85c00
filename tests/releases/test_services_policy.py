"""The rules (policies, windows, freezes) are written through services that audit the values they set."""

from datetime import date, time, timedelta

import pytest
from django.utils import timezone

from rdm_site.models import OutboxEvent
from rdm_site.selectors import audit_events_for
from releases import services
from releases.exceptions import InvalidInput, NotAllowed
from tests.releases.factories import EnvironmentFactory, PolicyFactory

pytestmark = pytest.mark.django_db


def test_a_window_is_created_with_its_services_and_environments_recorded_by_name(world):
    # given a Release Manager and two environments
    p = world.people
    # when they open a window for the shop in production and staging
    window = services.window_create(
        actor=p.rm,
        data={
            "name": "Tuesday nights",
            "first_date": date(2026, 1, 6),
            "start_time": time(22, 0),
            "rrule": "FREQ=WEEKLY;BYDAY=TU",
            "duration": timedelta(hours=3),
            "time_zone": "Europe/London",
            "services": [world.service],
            "environments": [world.production, world.staging],
        },
    )
    # then it is saved with its sets, and the trail (and outbox) read the names, not a query's text
    assert set(window.environments.all()) == {world.production, world.staging}
    event = audit_events_for(window).get(action="releasewindow.create")
    assert event.changes["services"] == [None, ["Shop"]]
    assert event.changes["environments"] == [None, ["production", "staging"]]
    assert "QuerySet" not in str(event.changes)
    assert OutboxEvent.objects.filter(audit_event=event, event_type="releasewindow.create").exists()


def test_a_freeze_is_authored_by_whoever_declares_it_and_only_by_a_release_manager(world):
    p = world.people
    data = {"name": "Sale", "start": timezone.now(), "end": timezone.now() + timedelta(days=2), "reason": "Peak."}
    with pytest.raises(NotAllowed, match=r"releases\.add_freezeperiod"):
        services.freeze_create(actor=p.dm, data=data)
    freeze = services.freeze_create(actor=p.rm, data={**data, "services": [world.service]})
    assert (freeze.created_by, list(freeze.services.all())) == (p.rm, [world.service])


def test_a_policy_edit_records_old_and_new_values_and_refuses_fields_that_are_not_editable(world):
    p = world.people
    policy = PolicyFactory(name="patch", approvals_required=1)
    services.policy_update(policy=policy, actor=p.rm, data={"approvals_required": 2, "lead_time_days": 0})
    event = audit_events_for(policy).get(action="releasepolicy.update")
    assert event.changes == {"approvals_required": [1, 2]}
    with pytest.raises(InvalidInput, match="cannot be edited: id"):
        services.policy_update(policy=policy, actor=p.rm, data={"id": 99})


def test_an_environment_of_a_window_is_edited_through_the_service(world):
    p = world.people
    window = services.window_create(
        actor=p.rm,
        data={
            "name": "Nights",
            "first_date": date(2026, 1, 6),
            "start_time": time(22, 0),
            "rrule": "FREQ=DAILY",
            "duration": timedelta(hours=1),
            "environments": [world.production],
        },
    )
    test = EnvironmentFactory(name="test")
    services.window_update(window=window, actor=p.rm, data={"environments": [test]})
    assert audit_events_for(window).get(action="releasewindow.update").changes == {
        "environments": [["production"], ["test"]]
    }
