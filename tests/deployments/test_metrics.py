"""DORA's four keys and the ITIL figures, against figures worked out by hand on ``dora_world`` (its docstring
lists every deployment and incident; the arithmetic is in the comments here)."""

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.metrics import (
    DORA_LEVELS,
    DoraScope,
    Key,
    Level,
    Period,
    dora_keys,
    dora_report,
    dora_series,
    itil_figures,
)
from tests.deployments.dora_world import MARCH, dora_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return dora_world()


def march(**filters) -> DoraScope:
    return DoraScope.of_days(*MARCH, **filters)


def test_the_four_keys_of_every_service_in_production(world):
    [keys] = dora_keys(march())

    # D1 H1 D3 H2 D4 D4c (Shop) + B0 B0r B1 B2 (Blog); not: the abort before start, D5 (April), S1 (staging)
    assert keys.deployments == 10
    assert keys.deployments_per_day == pytest.approx(10 / 31)
    # D1 (hotfix H1 2 days later), D4 (rolled back), D4c (aborted mid-rollout), B0 (replaced by B0r),
    # B1 (incident I1), B2 (hotfix HB on 1 April, 12 days later); not D3: H2 came 16 days later, outside R4's 14
    assert keys.failed_deployments == 6
    assert keys.change_failure_rate == pytest.approx(6 / 10)
    # successes with a new package: D1 30 h, H1 6 h, D3 48 h (registration: no commit), H2 20 h, B0 24 h, B1 36 h
    # sorted 6 20 24 30 36 48: median (24 + 30) / 2 = 27; p90 at 0.9 * 5 = 4.5: 36 + 0.5 * (48 - 36) = 42
    assert keys.changes_measured == 6
    assert keys.lead_time_median_hours == pytest.approx(27)
    assert keys.lead_time_p90_hours == pytest.approx(42)
    # I1 2 h and I4 12 h; not I5 (resolved 2 April), I2 (no deployment), I3 (February): median (2 + 12) / 2 = 7
    assert keys.restorations == 2
    assert keys.time_to_restore_median_hours == pytest.approx(7)


def test_the_previous_period_and_the_trend(world):
    report = dora_report(march())

    # 29 January - 28 February: P0 (lead 12 h) and D0 (failed; I3 4 h)
    previous = report.previous
    assert (previous.deployments, previous.failed_deployments, previous.change_failure_rate) == (2, 1, 0.5)
    assert previous.deployments_per_day == pytest.approx(2 / 31)
    assert (previous.lead_time_median_hours, previous.lead_time_p90_hours) == (12, 12)
    assert (previous.restorations, previous.time_to_restore_median_hours) == (1, 4)

    figures = {figure.key: figure for figure in report.keys}
    # 10/31 a day: at least once a week, less than daily; 27 h: a day to a week; 60 % > 15 %; 7 h: under a day
    assert {key: figure.level for key, figure in figures.items()} == {
        Key.DEPLOYMENT_FREQUENCY: Level.HIGH,
        Key.LEAD_TIME: Level.HIGH,
        Key.CHANGE_FAILURE_RATE: Level.LOW,
        Key.TIME_TO_RESTORE: Level.HIGH,
    }
    # more deployments (10 > 2) is better; a longer lead time (27 > 12), more failures (0.6 > 0.5) and a longer
    # restore (7 > 4) are worse
    assert {key: figure.trend for key, figure in figures.items()} == {
        Key.DEPLOYMENT_FREQUENCY: "better",
        Key.LEAD_TIME: "worse",
        Key.CHANGE_FAILURE_RATE: "worse",
        Key.TIME_TO_RESTORE: "worse",
    }
    assert figures[Key.LEAD_TIME].previous == 12


def test_one_service(world):
    [shop] = dora_keys(march(service_id=world.shop.pk))

    # D1 H1 D3 H2 D4 D4c, of which D1 D4 D4c failed
    assert (shop.deployments, shop.failed_deployments, shop.change_failure_rate) == (6, 3, 0.5)
    # 6 20 30 48: median (20 + 30) / 2 = 25; p90 at 0.9 * 3 = 2.7: 30 + 0.7 * (48 - 30) = 42.6
    assert shop.lead_time_median_hours == pytest.approx(25)
    assert shop.lead_time_p90_hours == pytest.approx(42.6)
    # I4 only (I5 was resolved in April)
    assert (shop.restorations, shop.time_to_restore_median_hours) == (1, 12)


def test_a_service_with_no_deployment_in_the_period(world):
    report = dora_report(march(service_id=world.wiki.pk))

    assert report.current.deployments == 0
    assert report.current.deployments_per_day == 0
    assert report.current.change_failure_rate is None
    assert report.current.lead_time_median_hours is None
    assert report.current.time_to_restore_median_hours is None
    levels = {figure.key: figure.level for figure in report.keys}
    assert levels == {
        Key.DEPLOYMENT_FREQUENCY: Level.LOW,
        Key.LEAD_TIME: None,
        Key.CHANGE_FAILURE_RATE: None,
        Key.TIME_TO_RESTORE: None,
    }
    assert all(figure.trend in ("same", "") for figure in report.keys)
    assert [point.deployments for point in report.series] == [0, 0, 0, 0, 0, 0]


def test_another_environment(world):
    [staging] = dora_keys(march(environment_id=world.staging.pk))

    assert (staging.deployments, staging.failed_deployments) == (1, 1)  # S1


def test_the_weekly_series(world):
    series = dora_series(march(), Period.WEEK)

    # weeks from Monday: 1 March 2025 is a Saturday, so the first bucket starts on 24 February and is partial
    assert [point.starts for point in series] == [
        date(2025, 2, 24),
        date(2025, 3, 3),
        date(2025, 3, 10),
        date(2025, 3, 17),
        date(2025, 3, 24),
        date(2025, 3, 31),
    ]
    # 3-9: D1 B0 H1 B0r (D1, B0 failed); 10-16: D3 B1 (B1); 17-23: B2 (B2); 24-30: H2 D4 D4c (D4, D4c)
    assert [point.deployments for point in series] == [0, 4, 2, 1, 3, 0]
    assert [point.failed_deployments for point in series] == [0, 2, 1, 1, 2, 0]
    assert [point.change_failure_rate for point in series] == [None, 0.5, 0.5, 1, pytest.approx(2 / 3), None]
    # 3-9: 6 24 30 → 24; 10-16: 36 48 → 42; 24-30: H2 20
    assert [point.lead_time_median_hours for point in series] == [None, 24, 42, None, 20, None]
    # I1 resolved 16 March, I4 on 29 March
    assert [point.time_to_restore_median_hours for point in series] == [None, None, 2, None, 12, None]


def test_monthly_and_quarterly_buckets(world):
    [month] = dora_series(march(), Period.MONTH)
    [quarter] = dora_series(march(), Period.QUARTER)

    assert (month.starts, month.deployments, month.failed_deployments) == (date(2025, 3, 1), 10, 6)
    assert (quarter.starts, quarter.deployments, quarter.failed_deployments) == (date(2025, 1, 1), 10, 6)


def test_the_itil_figures(world):
    figures = itil_figures(march(), today=date(2025, 4, 15))

    # releases: R1 R2 R3 R4 R5 (Shop), R10 R9 R6 (Blog) = 8; R5 rolled back, R10 replaced: 6 succeeded
    assert (figures.releases_deployed, figures.releases_succeeded, figures.release_success_rate) == (8, 6, 0.75)
    # changes C1 (D1), C2 (H1), C4 (D3), C3 (H2); C2 and C3 are emergencies
    assert (figures.changes_implemented, figures.emergency_changes, figures.emergency_change_share) == (4, 2, 0.5)
    # I2 (R2, 7 March, during H1's 5-12 March) and I1 (B1, 16 March, during B1's 15-22 March); not I8 (13 March)
    assert figures.incidents_during_els == 2
    # R2's review, due 20 March and still due; R6's was submitted
    assert figures.reviews_overdue == 1


def test_the_itil_figures_of_one_service_before_the_review_falls_due(world):
    figures = itil_figures(march(service_id=world.shop.pk), today=date(2025, 3, 20))

    assert (figures.releases_deployed, figures.releases_succeeded) == (5, 4)  # R5 rolled back
    assert figures.incidents_during_els == 1  # I2
    assert figures.reviews_overdue == 0  # due today, not yet overdue


def test_the_report_costs_the_same_queries_whatever_the_rows(world):
    with CaptureQueriesContext(connection) as few:
        dora_report(march(service_id=world.wiki.pk))
    with CaptureQueriesContext(connection) as many:
        dora_report(march())

    assert len(few) == len(many)


@pytest.mark.parametrize(
    ("key", "value", "level"),
    [
        (Key.DEPLOYMENT_FREQUENCY, 1.0, Level.ELITE),
        (Key.DEPLOYMENT_FREQUENCY, 0.99, Level.HIGH),
        (Key.DEPLOYMENT_FREQUENCY, 1 / 7, Level.HIGH),
        (Key.DEPLOYMENT_FREQUENCY, 1 / 30, Level.MEDIUM),
        (Key.DEPLOYMENT_FREQUENCY, 1 / 31, Level.LOW),
        (Key.LEAD_TIME, 23.9, Level.ELITE),
        (Key.LEAD_TIME, 24, Level.HIGH),
        (Key.LEAD_TIME, 24 * 7, Level.MEDIUM),
        (Key.LEAD_TIME, 24 * 30, Level.LOW),
        (Key.CHANGE_FAILURE_RATE, 0.05, Level.ELITE),
        (Key.CHANGE_FAILURE_RATE, 0.1, Level.HIGH),
        (Key.CHANGE_FAILURE_RATE, 0.15, Level.MEDIUM),
        (Key.CHANGE_FAILURE_RATE, 0.16, Level.LOW),
        (Key.TIME_TO_RESTORE, 0.5, Level.ELITE),
        (Key.TIME_TO_RESTORE, 1, Level.HIGH),
        (Key.TIME_TO_RESTORE, 24 * 6, Level.MEDIUM),
        (Key.TIME_TO_RESTORE, 24 * 7, Level.LOW),
    ],
)
def test_dora_levels_at_their_bounds(key, value, level):
    assert DORA_LEVELS[key].level(value) == level
