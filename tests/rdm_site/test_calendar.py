"""The calendar feed: a secret address per user (made, rotated, revoked, audited) answering an iCalendar document
that ``icalendar`` parses, with each release window one recurring event that keeps its local hour across daylight
saving changes exactly as ``releases.recurrence`` evaluates it, and freezes and planned deployments at their times.
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from icalendar import Calendar

from deployments.choices import DeploymentModel, DeploymentState
from deployments.models import Deployment
from rdm_site.calendar_feeds import calendar_feed_authenticate, calendar_feed_create, calendar_feed_revoke
from rdm_site.crypto import secret_digest
from rdm_site.exceptions import NotAllowed
from rdm_site.models import Actor, AuditEvent, CalendarFeed, OutboxEvent
from rdm_site.roles import Role
from rdm_site.tokens import token_create
from tests.deployments.factories import ProcessFactory
from tests.factories import UserFactory
from tests.releases.factories import ChangeFactory, EnvironmentFactory, FreezeFactory, ServiceFactory, WindowFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def dan():
    return UserFactory(username="dan", roles=[Role.DEPLOYMENT_MANAGER])


@pytest.fixture
def vera():
    return UserFactory(username="vera", roles=[Role.VIEWER])


@pytest.fixture
def production():
    return EnvironmentFactory(name="production")


@pytest.fixture
def shop():
    return ServiceFactory(name="Shop")


def _feed_path(secret: str) -> str:
    return f"/calendar/{secret}.ics"


def _fetch(client, secret: str) -> Calendar:
    response = client.get(_feed_path(secret))
    assert response.status_code == 200
    return Calendar.from_ical(response.content)


def _event(calendar: Calendar, uid: str):
    found = [event for event in calendar.events if str(event["UID"]) == uid]
    assert len(found) == 1, [str(event["UID"]) for event in calendar.events]
    return found[0]


def _expanded(event, start: datetime, end: datetime) -> list[datetime]:
    """The event's starts in [start, end), expanded by dateutil from the parsed DTSTART and RRULE alone."""
    rule = rrulestr(event["RRULE"].to_ical().decode(), dtstart=event.start)
    return rule.between(start, end, inc=True)


# --- release windows -------------------------------------------------------------------------------------------


def test_a_weekly_window_keeps_its_local_hour_across_both_daylight_saving_changes(client, dan, production):
    # given a window on Tuesdays at 22:00 London time for four hours, from March to November 2025
    window = WindowFactory(
        name="Tuesday nights",
        first_date=date(2025, 3, 4),
        start_time=time(22, 0),
        rrule="FREQ=WEEKLY;BYDAY=TU",
        duration=timedelta(hours=4),
        time_zone="Europe/London",
        environments=[production],
    )
    _, secret = calendar_feed_create(actor=dan)

    # when the feed is read and parsed by icalendar
    calendar = _fetch(client, secret)

    # then the window is one recurring event, zoned, with its rule, its duration and the zone's definition
    event = _event(calendar, f"window-{window.pk}@rdm")
    assert event["DTSTART"].params["TZID"] == "Europe/London"
    assert event.start == datetime(2025, 3, 4, 22, 0, tzinfo=ZoneInfo("Europe/London"))
    assert event["RRULE"].to_ical() == b"FREQ=WEEKLY;BYDAY=TU"
    assert event.duration == timedelta(hours=4)
    assert "Europe/London" in {str(zone["TZID"]) for zone in calendar.timezones}
    # and its occurrences, expanded from the feed, stay at 22:00 local: 22:00 UTC in winter, 21:00 UTC in summer
    span = (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 12, 1, tzinfo=UTC))
    starts = _expanded(event, *span)
    assert {start.astimezone(event.start.tzinfo).time() for start in starts} == {time(22, 0)}
    by_day = {start.date(): start.astimezone(UTC).time() for start in starts}
    assert by_day[date(2025, 3, 25)] == time(22, 0)  # GMT, the last Tuesday before the clocks go forward
    assert by_day[date(2025, 4, 1)] == time(21, 0)  # BST
    assert by_day[date(2025, 10, 21)] == time(21, 0)  # BST, the last Tuesday before the clocks go back
    assert by_day[date(2025, 10, 28)] == time(22, 0)  # GMT
    # and they are exactly the occurrences RDM evaluates deployments against
    assert [(start, start + event.duration) for start in starts] == [
        (occurrence.start, occurrence.end) for occurrence in window.occurrences_between(*span)
    ]


def test_a_window_that_ends_or_starts_off_its_rule_gives_the_occurrences_rdm_gives(client, dan):
    # given a window whose first date (a Monday) is not one of its days, ending on a local UNTIL in summer time
    window = WindowFactory(
        first_date=date(2025, 3, 3),
        start_time=time(22, 0),
        rrule="FREQ=WEEKLY;BYDAY=TU;UNTIL=20250408T220000",
        time_zone="Europe/London",
    )
    _, secret = calendar_feed_create(actor=dan)

    # when the feed is read
    event = _event(_fetch(client, secret), f"window-{window.pk}@rdm")

    # then DTSTART is the first occurrence, UNTIL is in UTC (22:00 BST is 21:00Z), and the set is RDM's
    assert event.start.replace(tzinfo=None) == datetime(2025, 3, 4, 22, 0)
    assert b"UNTIL=20250408T210000Z" in event["RRULE"].to_ical()
    span = (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC))
    starts = _expanded(event, *span)
    assert starts == [occurrence.start for occurrence in window.occurrences_between(*span)]
    assert starts[-1] == datetime(2025, 4, 8, 21, 0, tzinfo=UTC)
    assert len(starts) == 6


def test_freezes_and_planned_deployments_are_events_at_their_times(client, dan, production, shop):
    # given a freeze, a scheduled deployment under a change, a planned one without, and records the feed leaves out
    soon = timezone.now().replace(second=0, microsecond=0) + timedelta(days=3)
    freeze = FreezeFactory(name="Black Friday", start=soon, end=soon + timedelta(days=4), environments=[production])
    change = ChangeFactory(planned_start=soon - timedelta(days=1), planned_end=soon - timedelta(days=1, hours=-3))
    scheduled = _deployment(shop, production, DeploymentState.SCHEDULED, soon - timedelta(days=1), change=change)
    planned = _deployment(shop, production, DeploymentState.PLANNED, soon + timedelta(days=7))
    running = _deployment(shop, production, DeploymentState.RUNNING, soon)
    old_freeze = FreezeFactory(start=soon - timedelta(days=400), end=soon - timedelta(days=399))
    retired_window = WindowFactory(active=False)
    _, secret = calendar_feed_create(actor=dan)

    # when the feed is read
    calendar = _fetch(client, secret)

    # then the freeze covers its whole range, in UTC, and links to its page
    event = _event(calendar, f"freeze-{freeze.pk}@rdm")
    assert (event.start, event.end) == (freeze.start, freeze.end)
    assert str(event["SUMMARY"]) == "Freeze: Black Friday"
    assert event.categories == ["Freeze"]
    assert f"http://testserver/freezes/{freeze.pk}/" in str(event["DESCRIPTION"])
    assert "Environments: production" in str(event["DESCRIPTION"])
    assert event["DTSTAMP"].dt.tzinfo is not None
    # and the scheduled deployment lasts until its change's planned end; the planned one is an instant
    event = _event(calendar, f"deployment-{scheduled.pk}@rdm")
    assert (event.start, event.end) == (scheduled.scheduled_for, change.planned_end)
    assert str(event["SUMMARY"]) == "Deployment: Shop 2.0 to production"
    assert event.categories == ["Deployment"]
    assert str(event["URL"]) == f"http://testserver/deployments/{scheduled.pk}/"
    assert change.number in str(event["DESCRIPTION"])
    event = _event(calendar, f"deployment-{planned.pk}@rdm")
    assert event.start == planned.scheduled_for
    assert "DTEND" not in event
    # and what is under way, long over or retired is not there
    uids = {str(event["UID"]) for event in calendar.events}
    assert not uids & {
        f"deployment-{running.pk}@rdm",
        f"freeze-{old_freeze.pk}@rdm",
        f"window-{retired_window.pk}@rdm",
    }


def _deployment(service, environment, state: str, scheduled_for: datetime, **fields) -> Deployment:
    return Deployment.objects.create(
        service=service,
        environment=environment,
        process=ProcessFactory(service=service),
        model=DeploymentModel.BIG_BANG,
        version="2.0",
        state=state,
        scheduled_for=scheduled_for,
        **fields,
    )


def test_the_feed_shows_only_what_its_user_may_view(client, vera, production, shop):
    # given a window, a freeze and a planned deployment, and a signed-in user who holds no role
    WindowFactory(environments=[production])
    FreezeFactory(start=timezone.now() + timedelta(days=1))
    _deployment(shop, production, DeploymentState.SCHEDULED, timezone.now() + timedelta(days=1))
    nobody = UserFactory(username="nobody")
    _, viewer_secret = calendar_feed_create(actor=vera)
    _, nobody_secret = calendar_feed_create(actor=nobody)

    # when each reads their feed, then the Viewer sees all three and the user without a role none
    assert {event.categories[0] for event in _fetch(client, viewer_secret).events} == {
        "Release window",
        "Freeze",
        "Deployment",
    }
    assert _fetch(client, nobody_secret).events == []


def test_the_feed_costs_the_same_queries_for_many_records(client, dan, production, shop):
    _, secret = calendar_feed_create(actor=dan)

    def grow(count: int) -> int:
        for _ in range(count):
            WindowFactory(environments=[production], services=[shop])
            FreezeFactory(start=timezone.now() + timedelta(days=1), environments=[production], services=[shop])
            change = ChangeFactory()
            _deployment(shop, production, DeploymentState.SCHEDULED, change.planned_start, change=change)
        with CaptureQueriesContext(connection) as queries:
            _fetch(client, secret)
        return len(queries)

    assert grow(1) == grow(10)


# --- the address: no session, 404 unless active, headers ------------------------------------------------------


def test_the_address_is_the_only_credential_and_its_answer_is_a_private_calendar(client, dan):
    feed, secret = calendar_feed_create(actor=dan)

    response = client.get(_feed_path(secret))  # no session

    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert response["Cache-Control"] == "private, max-age=300"
    assert client.head(_feed_path(secret)).status_code == 200
    assert client.post(_feed_path(secret)).status_code == 405
    feed.refresh_from_db()
    assert feed.last_fetched_at is not None


def test_an_unknown_revoked_or_deactivated_address_answers_404(client, dan, vera):
    _, revoked = calendar_feed_create(actor=dan)
    calendar_feed_revoke(actor=dan, feed=CalendarFeed.objects.get(owner=dan))
    _, deactivated = calendar_feed_create(actor=vera)
    vera.is_active = False
    vera.save(update_fields=["is_active"])

    for secret in (revoked, deactivated, "not-a-feed-address"):
        assert client.get(_feed_path(secret)).status_code == 404, secret


# --- the services: made, rotated, revoked, audited, only one's own --------------------------------------------


def test_only_the_digest_of_the_address_is_kept(dan):
    feed, secret = calendar_feed_create(actor=dan)

    stored = CalendarFeed.objects.filter(pk=feed.pk).values().get()
    assert stored["secret_hash"] == secret_digest(secret)
    assert not any(secret in str(value) for value in stored.values())
    assert calendar_feed_authenticate(secret) == feed


def test_a_new_address_replaces_the_old_one_and_the_trail_says_so(client, dan):
    # given Dan's feed
    first, old = calendar_feed_create(actor=dan)

    # when he makes a new address
    second, new = calendar_feed_create(actor=dan)

    # then the old address is dead, the new one answers, and only one feed is active
    assert client.get(_feed_path(old)).status_code == 404
    assert client.get(_feed_path(new)).status_code == 200
    assert list(CalendarFeed.objects.filter(owner=dan, revoked_at=None)) == [second]
    # and the trail (and the outbox) hold the making, the replacement and the rotation
    events = AuditEvent.objects.filter(object_type="rdm_site.calendarfeed").order_by("id")
    assert [(event.action, event.object_id, event.from_state, event.to_state) for event in events] == [
        ("calendar_feed.create", str(first.pk), "", "active"),
        ("calendar_feed.revoke", str(first.pk), "active", "revoked"),
        ("calendar_feed.rotate", str(second.pk), "", "active"),
    ]
    assert events.last().changes == {"replaces": first.pk}
    assert all(event.actor_label == "dan" for event in events)
    assert OutboxEvent.objects.filter(audit_event__in=events).count() == 3


def test_revoking_is_audited_once_and_only_ones_own(dan, vera):
    feed, _ = calendar_feed_create(actor=dan)

    with pytest.raises(NotAllowed, match="may not revoke the calendar feed of another user"):
        calendar_feed_revoke(actor=vera, feed=feed)
    calendar_feed_revoke(actor=dan, feed=feed)
    calendar_feed_revoke(actor=dan, feed=feed)

    feed.refresh_from_db()
    assert feed.revoked_at is not None
    assert list(AuditEvent.objects.filter(action="calendar_feed.revoke").values_list("actor_label", flat=True)) == [
        "dan"
    ]


def test_an_api_token_may_not_make_a_feed(dan):
    token, _ = token_create(actor=dan, name="jenkins", scopes=["read"])

    with pytest.raises(NotAllowed, match="sign in"):
        calendar_feed_create(actor=Actor.for_token(token))
    assert not CalendarFeed.objects.exists()


# --- the tokens page ------------------------------------------------------------------------------------------


def test_the_tokens_page_makes_shows_once_and_revokes_the_feed(client, vera):
    # given a Viewer on the tokens page, who has no feed yet
    client.force_login(vera)
    assert "Make calendar feed" in client.get("/tokens/").content.decode()

    # when she makes one, then its address is shown in the answer, and works
    page = client.post("/tokens/calendar-feed/")
    assert page.status_code == 200
    url = page.context["calendar_feed_url"]
    assert url.startswith("http://testserver/calendar/")
    assert url in page.content.decode()
    assert client.get(url).status_code == 200
    # and the page never shows it again, but says the feed is active and was read
    again = client.get("/tokens/").content.decode()
    assert url not in again
    assert "Make a new address" in again
    assert "never" not in again.split('id="calendar-feed"')[1]

    # when she revokes it, then the address is dead
    assert client.post("/tokens/calendar-feed/revoke/").status_code == 302
    assert client.get(url).status_code == 404
    assert "Make calendar feed" in client.get("/tokens/").content.decode()
    assert client.get("/tokens/calendar-feed/").status_code == 405


def test_the_tokens_page_costs_the_same_with_a_feed(client, dan):
    client.force_login(dan)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/tokens/").status_code == 200
        return len(captured)

    without = queries()
    calendar_feed_create(actor=dan)
    assert queries() == without


# --- the API --------------------------------------------------------------------------------------------------


def test_the_api_makes_reads_and_revokes_ones_feed(client, vera):
    client.force_login(vera)
    assert client.get("/api/v1/calendar-feed/").status_code == 404

    made = client.post("/api/v1/calendar-feed/")
    assert made.status_code == 201
    url = made.json()["url"]
    assert client.get(url).status_code == 200
    read = client.get("/api/v1/calendar-feed/")
    assert read.status_code == 200
    assert "url" not in read.json()
    assert read.json()["last_fetched_at"] is not None

    assert client.delete("/api/v1/calendar-feed/").status_code == 204
    assert client.get(url).status_code == 404
    assert client.delete("/api/v1/calendar-feed/").status_code == 404


def test_the_api_refuses_a_token_making_a_feed_and_the_anonymous(client, dan):
    _, raw = token_create(actor=dan, name="jenkins", scopes=["read"])

    refused = client.post("/api/v1/calendar-feed/", headers={"Authorization": f"Bearer {raw}"})

    assert refused.status_code == 403
    assert "sign in" in refused.json()["detail"]
    assert client.post("/api/v1/calendar-feed/").status_code == 401
