"""The iCalendar feed (RFC 5545) a calendar application subscribes to: release windows, freezes and planned
deployments, for one user, as Outlook and Google Calendar import them.

A window is one recurring event: DTSTART on the local wall clock with its zone (TZID), the window's RRULE and
its DURATION, and a VTIMEZONE for the zone, so that the application keeps it at the same local hour across
daylight saving changes, exactly as ``releases.recurrence`` evaluates it. Freezes and deployments are single
events in UTC. UIDs are stable (``window-<id>@rdm``), so a refresh updates events instead of adding copies.
"""

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, time, timedelta

from django.contrib.auth.models import User
from django.utils import timezone
from icalendar import Calendar, Event, vDuration, vRecur

from deployments.choices import DeploymentState
from deployments.models import Deployment
from rdm_site.web import view_permission
from releases import recurrence
from releases.models import FreezePeriod, ReleaseWindow

PRODUCT_ID = "-//RDM//Release and deployment calendar//EN"
# How often applications are asked to read the feed again (REFRESH-INTERVAL, and Outlook's X-PUBLISHED-TTL).
REFRESH_INTERVAL = timedelta(hours=1)
# Freezes that ended longer ago than this are left out; what lies ahead always stays in.
PAST_SHOWN = timedelta(days=90)
PLANNED_STATES = (DeploymentState.PLANNED, DeploymentState.SCHEDULED)

AbsoluteUrl = Callable[[str], str]


def calendar_feed_ics(*, user: User, absolute_url: AbsoluteUrl) -> bytes:
    """The feed of ``user``: what they may view of windows (active ones), freezes and planned deployments.

    ``absolute_url`` turns a record's path into the address its event links to (the request's host).
    """
    now = timezone.now()
    calendar = Calendar.new(
        name="RDM releases",
        description="Release windows, freezes and planned deployments from RDM.",
        prodid=PRODUCT_ID,
        uid=f"calendar-{user.pk}@rdm",
        refresh_interval=REFRESH_INTERVAL,
    )
    calendar.add("x-published-ttl", vDuration(REFRESH_INTERVAL))
    for section in (_window_events, _freeze_events, _deployment_events):
        for event in section(user, now, absolute_url):
            calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical()


def _may_view(user: User, model) -> bool:
    """Every role reads everything today; the feed still shows only what its user may open."""
    return user.has_perm(view_permission(model))


def _event(*, uid: str, summary: str, category: str, lines: Iterable[str], url: str, now: datetime, **times) -> Event:
    """One VEVENT; its description ends with the address of the record it is about."""
    return Event.new(
        uid=uid,
        summary=summary,
        categories=[category],
        description="\n".join([*(line for line in lines if line), "", url]),
        url=url,
        stamp=now,
        transparency="TRANSPARENT",  # information, not a meeting: it does not make anyone busy
        **times,
    )


def _names(records) -> str:
    return ", ".join(record.name for record in records) or "all"


# --- release windows -------------------------------------------------------------------------------------------


def _window_events(user: User, now: datetime, absolute_url: AbsoluteUrl) -> list[Event]:
    if not _may_view(user, ReleaseWindow):
        return []
    windows = ReleaseWindow.objects.filter(active=True).prefetch_related("services", "environments").order_by("pk")
    events = []
    for window in windows:
        first_start, rule = _window_recurrence(window)
        event = _event(
            uid=f"window-{window.pk}@rdm",
            summary=f"Release window: {window.name}",
            category="Release window",
            lines=[
                window.description,
                f"Environments: {_names(window.environments.all())}",
                f"Services: {_names(window.services.all())}",
                f"Opens at {window.start_time:%H:%M} {window.time_zone} for {_duration_text(window.duration)}.",
            ],
            url=absolute_url(window.get_absolute_url()),
            now=now,
            start=first_start,
        )
        event.add("rrule", rule)
        event.DURATION = window.duration
        events.append(event)
    return events


def _window_recurrence(window: ReleaseWindow) -> tuple[datetime, vRecur]:
    """The window's DTSTART (its first occurrence, local time in its zone) and RRULE as RFC 5545 wants them.

    DTSTART is moved to the first date the rule yields: RFC 5545 counts DTSTART as an occurrence, RDM (as
    dateutil) only when the rule yields it. UNTIL, which RDM reads on the local wall clock, is written in UTC,
    as RFC 5545 requires beside a DTSTART with a zone.
    """
    zone = recurrence.zone(window.time_zone)
    rule = recurrence.build_rule(window.first_date, window.start_time, window.rrule)
    first_local = rule.after(datetime.combine(window.first_date, window.start_time.replace(tzinfo=None)), inc=True)
    written = vRecur.from_ical(recurrence.normalise_rrule(window.rrule))
    if "UNTIL" in written:
        until = written["UNTIL"][0]
        local_until = until if isinstance(until, datetime) else datetime.combine(until, time())
        written["UNTIL"] = [local_until.replace(tzinfo=zone, fold=0).astimezone(UTC)]
    return first_local.replace(tzinfo=zone, fold=0), written


def _duration_text(duration: timedelta) -> str:
    hours, seconds = divmod(int(duration.total_seconds()), 3600)
    minutes = seconds // 60
    return " ".join(part for part in (f"{hours} h" if hours else "", f"{minutes} min" if minutes else "") if part)


# --- freezes ---------------------------------------------------------------------------------------------------


def _freeze_events(user: User, now: datetime, absolute_url: AbsoluteUrl) -> list[Event]:
    if not _may_view(user, FreezePeriod):
        return []
    freezes = (
        FreezePeriod.objects.filter(end__gt=now - PAST_SHOWN)
        .prefetch_related("services", "environments")
        .order_by("start", "pk")
    )
    return [
        _event(
            uid=f"freeze-{freeze.pk}@rdm",
            summary=f"Freeze: {freeze.name}",
            category="Freeze",
            lines=[
                freeze.reason,
                f"Environments: {_names(freeze.environments.all())}",
                f"Services: {_names(freeze.services.all())}",
                "No deployment to these starts during the freeze unless an emergency approver overrides it.",
            ],
            url=absolute_url(freeze.get_absolute_url()),
            now=now,
            start=freeze.start.astimezone(UTC),
            end=freeze.end.astimezone(UTC),
        )
        for freeze in freezes
    ]


# --- planned deployments ---------------------------------------------------------------------------------------


def _deployment_events(user: User, now: datetime, absolute_url: AbsoluteUrl) -> list[Event]:
    """Planned and scheduled deployments with a time; each lasts until its change's planned end, when it has one."""
    if not _may_view(user, Deployment):
        return []
    deployments = (
        Deployment.objects.filter(state__in=PLANNED_STATES, scheduled_for__isnull=False)
        .select_related("service", "environment", "change")
        .order_by("scheduled_for", "pk")
    )
    events = []
    for deployment in deployments:
        change = deployment.change
        end = change.planned_end if change and change.planned_end > deployment.scheduled_for else None
        title = " ".join(part for part in (deployment.service.name, deployment.version) if part)
        events.append(
            _event(
                uid=f"deployment-{deployment.pk}@rdm",
                summary=f"Deployment: {title} to {deployment.environment.name}",
                category="Deployment",
                lines=[
                    f"Deployment #{deployment.pk}, {deployment.get_state_display().lower()}.",
                    f"Change {change}." if change else "",
                ],
                url=absolute_url(deployment.get_absolute_url()),
                now=now,
                start=deployment.scheduled_for.astimezone(UTC),
                end=end.astimezone(UTC) if end else None,
            )
        )
    return events
