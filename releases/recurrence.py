"""Recurring release windows (RFC 5545 DTSTART + RRULE), evaluated in the window's own time zone.

No database here: pure functions the models and ``releases.scheduling`` call.

Occurrences are computed on the *local wall clock* (a naive DTSTART in the window's zone), then each
one is placed in the zone. So a window at 22:00 Europe/London starts at 22:00 local all year round:
21:00 UTC in summer (BST) and 22:00 UTC in winter (GMT). The duration is elapsed time from the
start: a four-hour window that spans the night the clocks change lasts four real hours.

A start that falls in the spring-forward gap (e.g. 01:30 on the last Sunday of March in London) is
read with the offset before the change (so it begins at 02:30 BST); a start in the autumn overlap is
read as the first of the two moments (fold=0).
"""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr

# How far before ``at`` to look for an occurrence that is still open, beyond the window's duration.
# One day covers any UTC offset difference between the wall clock and the search bounds.
_SEARCH_SLACK = timedelta(days=1)


class RecurrenceError(ValueError):
    """The recurrence, zone or duration of a window cannot be evaluated; the message says what to fix."""


@dataclass(frozen=True)
class Occurrence:
    """One opening of a window, as aware datetimes (UTC); ``end`` is exclusive."""

    start: datetime
    end: datetime

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end

    def covers(self, start: datetime, end: datetime) -> bool:
        """Whether the span [start, end) lies wholly inside this occurrence."""
        return self.start <= start and end <= self.end


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RecurrenceError(
            f"{name!r} is not a known time zone (use an IANA name such as 'Europe/London')."
        ) from None


def normalise_rrule(text: str) -> str:
    """The RRULE value without an ``RRULE:`` prefix or surrounding blanks, upper-cased."""
    text = text.strip()
    if text.upper().startswith("RRULE:"):
        text = text[len("RRULE:") :]
    return text.strip().upper()


def build_rule(first_date: date, start_time: time, rule: str) -> rrule:
    """The recurrence on the local wall clock, refusing what RDM cannot evaluate (DTSTART inside the rule,
    several rules, a UTC ``UNTIL`` with a local DTSTART, or a rule that never occurs).
    """
    value = normalise_rrule(rule)
    if not value:
        raise RecurrenceError("The recurrence rule is empty; write one such as 'FREQ=WEEKLY;BYDAY=TU,TH'.")
    if "\n" in value or "DTSTART" in value or "RRULE" in value:
        raise RecurrenceError("Write one RRULE value only; the first date and start time give DTSTART.")
    if re.search(r"UNTIL=[0-9T]+Z", value):
        raise RecurrenceError("Write UNTIL as a local date-time without 'Z' (the window's zone applies).")
    dtstart = datetime.combine(first_date, start_time.replace(tzinfo=None))
    try:
        parsed = rrulestr(f"RRULE:{value}", dtstart=dtstart)
    except (ValueError, TypeError) as error:
        raise RecurrenceError(f"The recurrence rule {value!r} is not valid RFC 5545: {error}.") from None
    if not isinstance(parsed, rrule):
        raise RecurrenceError("Write one RRULE value only.")
    if parsed.after(dtstart, inc=True) is None:
        raise RecurrenceError(f"The recurrence rule {value!r} never occurs on or after {first_date.isoformat()}.")
    return parsed


def _place(local: datetime, tz: ZoneInfo, duration: timedelta) -> Occurrence:
    start = local.replace(tzinfo=tz, fold=0).astimezone(UTC)
    return Occurrence(start=start, end=start + duration)  # elapsed time, computed in UTC


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")


def occurrences_between(
    *, first_date: date, start_time: time, rule: str, duration: timedelta, tz_name: str, start: datetime, end: datetime
) -> list[Occurrence]:
    """Every occurrence that is open at some moment of [start, end), oldest first."""
    _require_aware(start, "start")
    _require_aware(end, "end")
    tz, recurrence = zone(tz_name), build_rule(first_date, start_time, rule)
    if duration <= timedelta(0):
        raise RecurrenceError("A window lasts longer than zero.")
    after = start.astimezone(tz).replace(tzinfo=None) - duration - _SEARCH_SLACK
    before = end.astimezone(tz).replace(tzinfo=None) + _SEARCH_SLACK
    found = (_place(local, tz, duration) for local in recurrence.between(after, before, inc=True))
    return [occurrence for occurrence in found if occurrence.start < end and occurrence.end > start]


def occurrence_at(
    *, first_date: date, start_time: time, rule: str, duration: timedelta, tz_name: str, at: datetime
) -> Occurrence | None:
    """The occurrence open at ``at`` (start inclusive, end exclusive), or None when the window is shut."""
    _require_aware(at, "at")
    candidates = occurrences_between(
        first_date=first_date,
        start_time=start_time,
        rule=rule,
        duration=duration,
        tz_name=tz_name,
        start=at,
        end=at + timedelta(microseconds=1),
    )
    return next((occurrence for occurrence in candidates if occurrence.contains(at)), None)


def next_occurrence(
    *, first_date: date, start_time: time, rule: str, duration: timedelta, tz_name: str, after: datetime
) -> Occurrence | None:
    """The first occurrence that starts at or after ``after`` (for "next window opens at …")."""
    _require_aware(after, "after")
    tz, recurrence = zone(tz_name), build_rule(first_date, start_time, rule)
    local_after = after.astimezone(tz).replace(tzinfo=None) - _SEARCH_SLACK
    while (local := recurrence.after(local_after, inc=True)) is not None:
        occurrence = _place(local, tz, duration)
        if occurrence.start >= after:
            return occurrence
        local_after = local + timedelta(microseconds=1)
    return None


def rfc5545_text(first_date: date, start_time: time, rule: str, tz_name: str) -> str:
    """The recurrence as RFC 5545 lines, e.g. ``DTSTART;TZID=Europe/London:20250107T220000`` + ``RRULE:…``."""
    dtstart = datetime.combine(first_date, start_time.replace(tzinfo=None)).strftime("%Y%m%dT%H%M%S")
    return f"DTSTART;TZID={tz_name}:{dtstart}\nRRULE:{normalise_rrule(rule)}"
