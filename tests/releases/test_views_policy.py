"""Policies, windows and freezes in the browser: readable by all, written by Release Managers through the
services, a window's rule in words with its next openings in its own zone and in UTC.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from releases.models import FreezeOverride, FreezePeriod, ReleaseWindow
from releases.views.policy import next_occurrences, rrule_in_words
from tests.releases.factories import ChangeFactory, FreezeFactory, PolicyFactory, WindowFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ("FREQ=WEEKLY;BYDAY=TU,TH", "every week on Tuesday and Thursday"),
        ("RRULE:FREQ=MONTHLY;BYDAY=-1FR", "every month on the last Friday"),
        ("FREQ=DAILY;INTERVAL=2;COUNT=10", "every 2 days 10 times"),
        ("FREQ=YEARLY;BYMONTH=1,7;BYMONTHDAY=15", "every year on day 15 of the month in January and July"),
        ("FREQ=WEEKLY;WKST=SU", "every week WKST=SU"),
    ],
)
def test_a_recurrence_reads_as_a_sentence(rule, words):
    assert rrule_in_words(rule) == words


def test_the_next_openings_are_given_in_the_windows_zone_and_in_utc():
    window = WindowFactory.build(time_zone="Europe/London")  # Tuesdays and Thursdays 22:00 London, four hours
    openings = next_occurrences(window, datetime(2026, 3, 24, 12, 0, tzinfo=UTC))  # the clocks change on the 29th
    assert len(openings) == 5
    assert [o["local_start"].strftime("%a %H:%M") for o in openings] == ["Tue 22:00", "Thu 22:00"] * 2 + ["Tue 22:00"]
    assert [o["start"].strftime("%m-%d %H:%M") for o in openings] == [
        "03-24 22:00",
        "03-26 22:00",
        "03-31 21:00",  # summer time: 22:00 BST is 21:00 UTC
        "04-02 21:00",
        "04-07 21:00",
    ]
    assert openings[0]["local_start"].tzinfo == ZoneInfo("Europe/London")


def test_a_viewer_reads_every_rule_page_without_an_edit_button(client, world):
    window = WindowFactory(environments=[world.production])  # Europe/London
    freeze = FreezeFactory(services=[world.service])
    client.force_login(world.people.viewer)
    pages = [
        reverse("releases:policy_list"),
        world.policy.get_absolute_url(),
        reverse("releases:window_list"),
        window.get_absolute_url(),
        reverse("releases:freeze_list"),
        freeze.get_absolute_url(),
        reverse("releases:freezeoverride_list"),
    ]
    for page in pages:
        answer = client.get(page)
        assert answer.status_code == 200, page
        assert b">Edit<" not in answer.content, page
        assert b"/new/" not in answer.content, page
    window_page = client.get(window.get_absolute_url()).content.decode()
    assert "every week on Tuesday and Thursday" in window_page
    assert "Opens (Europe/London)" in window_page
    assert "GMT" in window_page or "BST" in window_page  # the openings in the window's zone, not the site's
    assert window_page.count("<tr>") == 1 + 5  # the header and the next five openings
    for form in ("releases:policy_create", "releases:window_create", "releases:freeze_create"):
        assert client.get(reverse(form)).status_code == 403


def test_a_forged_freeze_by_a_viewer_is_refused_and_creates_nothing(client, world):
    client.force_login(world.people.viewer)
    start = timezone.now() + timedelta(days=1)
    answer = client.post(
        reverse("releases:freeze_create"),
        {"name": "sneaky", "start": f"{start:%Y-%m-%dT%H:%M}", "end": f"{start + timedelta(days=1):%Y-%m-%dT%H:%M}"},
    )
    assert answer.status_code == 403
    assert not FreezePeriod.objects.exists()


def test_a_release_manager_declares_a_freeze_and_edits_it(client, world):
    client.force_login(world.people.rm)
    start = (timezone.now() + timedelta(days=10)).replace(second=0, microsecond=0)
    form = {
        "name": "Black Friday",
        "start": f"{start:%Y-%m-%dT%H:%M}",
        "end": f"{start + timedelta(days=3):%Y-%m-%dT%H:%M}",
        "reason": "Peak trading.",
        "services": [world.service.pk],
    }
    answer = client.post(reverse("releases:freeze_create"), form)
    freeze = FreezePeriod.objects.get(name="Black Friday")
    assert answer.url == freeze.get_absolute_url()
    assert (freeze.created_by, list(freeze.services.all())) == (world.people.rm, [world.service])
    answer = client.post(reverse("releases:freeze_update", args=[freeze.pk]), {**form, "reason": "Peak trading week."})
    freeze.refresh_from_db()
    assert freeze.reason == "Peak trading week."


def test_a_window_with_a_bad_rule_is_explained_next_to_the_field_and_kept(client, world):
    client.force_login(world.people.rm)
    form = {
        "name": "Nightly",
        "first_date": "2026-01-05",
        "start_time": "22:00",
        "rrule": "FREQ=SOMETIMES",
        "duration": "04:00:00",
        "time_zone": "Europe/London",
        "active": "on",
    }
    answer = client.post(reverse("releases:window_create"), form)
    page = answer.content.decode()
    assert answer.status_code == 422
    assert 'id="id_rrule_errors"' in page
    assert 'value="FREQ=SOMETIMES"' in page
    assert not ReleaseWindow.objects.exists()


def policy_form(policy, **fields) -> dict:
    """The policy form as posted, with ``fields`` changed."""
    return {
        "name": policy.name,
        "release_type": policy.release_type,
        "approvals_required": 2,
        "approver_roles": ["Release Manager"],
        "lead_time_days": 3,
        "required_test_suites": '["regression"]',
        "els_duration_days": 7,
        "els_min_duration_days": 3,
        "els_exit_criteria": '{"max_incidents": 3}',
        "hotfix_window_days": 14,
        "incident_correlation_hours": 72,
        "pir_due_days": 5,
        "active": "on",
        "gates_production": ["plan_approved", "tests_passed"],
        **fields,
    }


def test_a_release_manager_ticks_the_gates_of_a_policy_per_tier(client, world):
    client.force_login(world.people.rm)
    page = client.get(reverse("releases:policy_update", args=[world.policy.pk])).content.decode()
    assert "Gates required before production" in page
    answer = client.post(reverse("releases:policy_update", args=[world.policy.pk]), policy_form(world.policy))
    assert answer.status_code == 302
    world.policy.refresh_from_db()
    assert world.policy.approvals_required == 2
    assert world.policy.gates_required["production"] == ["plan_approved", "tests_passed"]
    assert world.policy.gates_required["staging"] == []


def test_a_release_manager_sets_the_incident_correlation_window_of_a_policy(client, world):
    client.force_login(world.people.rm)
    edit = reverse("releases:policy_update", args=[world.policy.pk])
    page = client.get(edit).content.decode()
    assert "Incident correlation window (hours)" in page
    assert 'name="incident_correlation_hours" value="72"' in page

    answer = client.post(edit, policy_form(world.policy, incident_correlation_hours=96))
    assert answer.status_code == 302
    world.policy.refresh_from_db()
    assert world.policy.incident_correlation_hours == 96
    assert "96 hours" in client.get(world.policy.get_absolute_url()).content.decode()

    answer = client.post(edit, policy_form(world.policy, incident_correlation_hours=0))
    page = answer.content.decode()
    assert answer.status_code == 422
    assert 'id="id_incident_correlation_hours_errors"' in page
    assert "The correlation window is at least one hour." in page
    world.policy.refresh_from_db()
    assert world.policy.incident_correlation_hours == 96


def _grow_rules(world, count: int) -> None:
    """``count`` more of each: policies, windows, freezes and freeze overrides."""
    for _ in range(count):
        PolicyFactory()
        WindowFactory(services=[world.service], environments=[world.production])
        freeze = FreezeFactory(services=[world.service], environments=[world.production])
        change = ChangeFactory(services=[world.service])
        FreezeOverride.objects.create(
            change=change,
            freeze=freeze,
            reason="Outage",
            granted_by=world.people.ea,
            valid_from=change.planned_start,
            valid_until=change.planned_end,
        )


@pytest.mark.parametrize(
    "url_name",
    ["releases:policy_list", "releases:window_list", "releases:freeze_list", "releases:freezeoverride_list"],
)
def test_the_rule_lists_make_the_same_queries_for_ten_times_the_rows(client, world, url_name):
    client.force_login(world.people.viewer)

    def queries_with(count: int) -> int:
        _grow_rules(world, count)
        client.get(reverse(url_name))  # warm the permission caches of the session
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse(url_name)).status_code == 200
        return len(captured)

    assert queries_with(2) == queries_with(18)


def test_a_release_manager_sets_when_a_policys_reviews_fall_due(client, world):
    client.force_login(world.people.rm)
    edit = reverse("releases:policy_update", args=[world.policy.pk])
    assert 'name="pir_due_days"' in client.get(edit).content.decode()

    answer = client.post(edit, policy_form(world.policy, pir_due_days=10))

    assert answer.status_code == 302
    world.policy.refresh_from_db()
    assert world.policy.pir_due_days == 10
    assert "10 days after early life support" in client.get(world.policy.get_absolute_url()).content.decode()
