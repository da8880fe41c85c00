"""Recurring windows on the local wall clock: edges, daylight saving changes, several zones, bad input."""

from datetime import UTC, date, datetime, time, timedelta

import pytest

from releases.recurrence import (
    Occurrence,
    RecurrenceError,
    build_rule,
    next_occurrence,
    occurrence_at,
    occurrences_between,
    rfc5545_text,
)

# Tuesday and Thursday, 22:00 to 02:00 Europe/London (first occurrence Tuesday 7 January 2025).
LONDON = {
    "first_date": date(2025, 1, 7),
    "start_time": time(22, 0),
    "rule": "FREQ=WEEKLY;BYDAY=TU,TH",
    "duration": timedelta(hours=4),
    "tz_name": "Europe/London",
}


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_start_is_inclusive_and_end_is_exclusive():
    # given a winter occurrence: Tue 21 Jan 2025 22:00 GMT (= UTC) until Wed 02:00
    start, end = utc(2025, 1, 21, 22), utc(2025, 1, 22, 2)
    # then the first moment is inside, the moment before and the end itself are not
    assert occurrence_at(at=start, **LONDON) == Occurrence(start, end)
    assert occurrence_at(at=start - timedelta(microseconds=1), **LONDON) is None
    assert occurrence_at(at=end - timedelta(microseconds=1), **LONDON) == Occurrence(start, end)
    assert occurrence_at(at=end, **LONDON) is None


def test_a_day_without_occurrence_is_shut():
    assert occurrence_at(at=utc(2025, 1, 22, 22, 30), **LONDON) is None  # a Wednesday


@pytest.mark.parametrize(
    ("local_day", "utc_start"),
    [
        # spring: the clocks go forward on Sunday 30 March 2025
        (date(2025, 3, 25), utc(2025, 3, 25, 22)),  # GMT: 22:00 local = 22:00 UTC
        (date(2025, 4, 1), utc(2025, 4, 1, 21)),  # BST: 22:00 local = 21:00 UTC
        # autumn: the clocks go back on Sunday 26 October 2025
        (date(2025, 10, 21), utc(2025, 10, 21, 21)),  # BST
        (date(2025, 10, 28), utc(2025, 10, 28, 22)),  # GMT
    ],
)
def test_the_window_stays_at_22_00_local_across_daylight_saving_changes(local_day, utc_start):
    # when the moment just after 22:00 local is evaluated
    found = occurrence_at(at=utc_start + timedelta(minutes=1), **LONDON)
    # then the occurrence starts at 22:00 on the local clock, whatever the UTC offset
    assert found is not None
    assert found.start == utc_start
    assert found.end == utc_start + timedelta(hours=4)
    assert occurrence_at(at=utc_start - timedelta(minutes=1), **LONDON) is None


def test_a_window_over_the_night_the_clocks_change_lasts_its_elapsed_duration():
    # given a daily window at 00:30 London for three hours; the clocks jump 01:00 → 02:00 on 30 March 2025
    nightly = {**LONDON, "rule": "FREQ=DAILY", "start_time": time(0, 30), "duration": timedelta(hours=3)}
    # then it opens 00:30 GMT and closes three real hours later (04:30 BST on the wall clock)
    found = occurrence_at(at=utc(2025, 3, 30, 1), **nightly)
    assert found == Occurrence(utc(2025, 3, 30, 0, 30), utc(2025, 3, 30, 3, 30))


def test_a_start_inside_the_spring_gap_is_read_with_the_offset_before_the_change():
    # 01:30 does not exist in London on 30 March 2025; it is read as 01:30 GMT (02:30 BST)
    gap = {**LONDON, "rule": "FREQ=DAILY", "start_time": time(1, 30), "duration": timedelta(hours=1)}
    assert occurrence_at(at=utc(2025, 3, 30, 1, 45), **gap) == Occurrence(
        utc(2025, 3, 30, 1, 30), utc(2025, 3, 30, 2, 30)
    )


def test_a_start_inside_the_autumn_overlap_is_the_first_of_the_two_moments():
    # 01:30 happens twice in London on 26 October 2025; the first (BST, 00:30 UTC) counts
    overlap = {**LONDON, "rule": "FREQ=DAILY", "start_time": time(1, 30), "duration": timedelta(hours=1)}
    assert occurrence_at(at=utc(2025, 10, 26, 0, 30), **overlap).start == utc(2025, 10, 26, 0, 30)


def test_two_time_zones_are_each_evaluated_on_their_own_clock():
    # given windows at 20:00 New York and 22:00 London; the USA changed clocks on 9 March 2025, the UK on 30 March
    new_york = {**LONDON, "start_time": time(20, 0), "tz_name": "America/New_York"}
    # on Tuesday 11 March: New York is on EDT (UTC-4) already, London still on GMT
    assert occurrence_at(at=utc(2025, 3, 12, 0, 0), **new_york).start == utc(2025, 3, 12, 0, 0)
    assert occurrence_at(at=utc(2025, 3, 11, 22, 0), **LONDON).start == utc(2025, 3, 11, 22, 0)
    # and on Tuesday 4 March New York was still on EST (UTC-5)
    assert occurrence_at(at=utc(2025, 3, 5, 0, 30), **new_york) is None
    assert occurrence_at(at=utc(2025, 3, 5, 1, 0), **new_york).start == utc(2025, 3, 5, 1, 0)


def test_occurrences_between_include_one_already_open_at_the_start():
    found = occurrences_between(start=utc(2025, 1, 22, 1), end=utc(2025, 1, 24), **LONDON)
    assert [occurrence.start for occurrence in found] == [utc(2025, 1, 21, 22), utc(2025, 1, 23, 22)]


def test_next_occurrence_starts_at_or_after_the_moment():
    assert next_occurrence(after=utc(2025, 1, 22, 1), **LONDON).start == utc(2025, 1, 23, 22)
    assert next_occurrence(after=utc(2025, 1, 23, 22), **LONDON).start == utc(2025, 1, 23, 22)


def test_a_moment_must_be_aware():
    with pytest.raises(ValueError, match="aware"):
        occurrence_at(at=datetime(2025, 1, 21, 22), **LONDON)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("", "empty"),
        ("FREQ=SOMETIMES", "not valid RFC 5545"),
        ("FREQ=WEEKLY;UNTIL=20250101T000000Z", "without 'Z'"),
        ("FREQ=WEEKLY;UNTIL=20240101T000000", "never occurs"),
        ("DTSTART:20250101T000000\nRRULE:FREQ=DAILY", "one RRULE value"),
    ],
)
def test_a_rule_rdm_cannot_evaluate_is_refused_with_the_reason(rule, message):
    with pytest.raises(RecurrenceError, match=message):
        build_rule(date(2025, 1, 7), time(22), rule)


def test_an_unknown_zone_is_refused():
    with pytest.raises(RecurrenceError, match="not a known time zone"):
        occurrence_at(at=utc(2025, 1, 21, 22), **{**LONDON, "tz_name": "Mars/Olympus"})


def test_the_rfc5545_text_names_the_zone_and_the_rule():
    text = rfc5545_text(date(2025, 1, 7), time(22), "rrule:freq=weekly;byday=tu,th", "Europe/London")
    assert text == "DTSTART;TZID=Europe/London:20250107T220000\nRRULE:FREQ=WEEKLY;BYDAY=TU,TH"
