"""DORA's four keys and the ITIL figures of release management (DESIGN.md "Measures of success"), computed by
PostgreSQL in a fixed number of queries whatever the number of rows; reads only.

What counts, and why:

- **A production deployment** is one that finished in a production-tier environment (or in the environment the
  scope names): succeeded, failed or rolled back, and aborted once it had started — an abort mid-rollout leaves
  production half-changed, which is a failed change (production notifications treat it as one). A deployment
  aborted before it started changed nothing, so it is not a deployment at all. Deployments still under way are
  not counted yet.
- **Its moment** is ``finished_at``: the period a deployment belongs to is the one in which it ended.
- **A deployment failed** when it ended failed, rolled back or aborted; when a later started deployment
  ``replaces`` it (a rollback of a success is a redeployment of the last good package); when an incident names
  it (``Incident.deployment``, explicit or correlated, ``deployments.correlation``); or when a hotfix followed
  it.
  A hotfix is the next production deployment of the same service and environment, of a patch or emergency
  release (another release than its own), finished within ``hotfix_window_days`` of the hotfix release's
  policy: the *earlier* deployment counts as failed. Only the deployment a hotfix follows is blamed, not every
  one in the window before it: a team deploying ten times a day would otherwise see a fortnight of changes
  failed for one patch. That verdict is stored on the earlier deployment when the hotfix ends
  (``Deployment.followed_by_hotfix``, ``deployments.dora_facts``), so a year is read without ordering it.
- **Deployment frequency** counts every production deployment, failed ones too (each delivered, or tried to
  deliver, a change), per day of the period.
- **Lead time for changes** runs from the package's first commit (``first_commit_at``, stored when the package
  is registered), or its registration when no commit time is known (copied onto the deployment when it ends,
  ``Deployment.change_started_at``), to the production success; deployments
  without a package and redeployments that ``replace`` another (an old package again) deliver no new change
  and have none.
- **Time to restore** runs from an incident's opening to its resolution, for incidents that name a deployment in
  the scope; a restoration belongs to the period in which it was resolved.
- **Buckets** (week from Monday, month, quarter) are cut in UTC with PostgreSQL's ``date_trunc``; the first and
  last may be partial. The trend compares the period with the one of equal length just before it.

Performance levels are DORA's (``DORA_LEVELS``, with their source); durations are in hours, rates from 0 to 1.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, models
from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, OuterRef, Q, QuerySet
from django.utils import timezone

from cmdb.choices import EnvironmentTier
from deployments.choices import DeploymentState
from deployments.dora_facts import ended_deployments
from deployments.models import Deployment, EarlyLifeSupport, Incident
from releases.choices import REVIEW_OPEN_STATES, ChangeType
from releases.models import ChangeRecord, PostImplementationReview


class Period(models.TextChoices):
    """The buckets of a series."""

    WEEK = "week", "Week"
    MONTH = "month", "Month"
    QUARTER = "quarter", "Quarter"


class Level(models.TextChoices):
    ELITE = "elite", "Elite"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


LEVEL_COLOURS = {Level.ELITE: "green", Level.HIGH: "teal", Level.MEDIUM: "orange", Level.LOW: "firebrick"}


class Key(models.TextChoices):
    """DORA's four keys."""

    DEPLOYMENT_FREQUENCY = "deployment_frequency", "Deployment frequency"
    LEAD_TIME = "lead_time", "Lead time for changes"
    CHANGE_FAILURE_RATE = "change_failure_rate", "Change failure rate"
    TIME_TO_RESTORE = "time_to_restore", "Time to restore service"


@dataclass(frozen=True)
class LevelBounds:
    """A key's level: the first bound the value is within (``at_least`` or, below it, ``under``/``at_most``)."""

    elite: float
    high: float
    medium: float
    higher_is_better: bool
    inclusive: bool = False  # the bound itself belongs to the better level

    def level(self, value: float | None) -> Level | None:
        if value is None:
            return None
        for bound, level in ((self.elite, Level.ELITE), (self.high, Level.HIGH), (self.medium, Level.MEDIUM)):
            if self.higher_is_better and value >= bound:
                return level
            if not self.higher_is_better and (value <= bound if self.inclusive else value < bound):
                return level
        return Level.LOW


# DORA's performance levels, from the clusters of the Accelerate State of DevOps Report 2023 (Google Cloud,
# "How do you compare?"), whose throughput bounds the 2024 report repeats:
# - deployment frequency: elite "on demand (multiple deploys per day)", high "between once per day and once per
#   week", medium "between once per week and once per month", low less often (2024: "between once per month and
#   once every six months") — here in deployments per day: at least 1, 1/7, 1/30;
# - lead time for changes: elite "less than one day", high "between one day and one week", medium "between one
#   week and one month", low longer — in hours: under 24, 168, 720;
# - change failure rate: elite 5 %, high 10 %, medium 15 %, low 64 % (2023) — at most 0.05, 0.10, 0.15. The 2024
#   report's clusters (5 %, 20 %, 10 %, 40 %) are not ordered by level, so they cannot serve as bounds;
# - time to restore (2023: "failed deployment recovery time"): elite "less than one hour", high "less than one
#   day", medium "between one day and one week", low longer — in hours: under 1, 24, 168.
DORA_LEVELS = {
    Key.DEPLOYMENT_FREQUENCY: LevelBounds(1.0, 1 / 7, 1 / 30, higher_is_better=True),
    Key.LEAD_TIME: LevelBounds(24, 24 * 7, 24 * 30, higher_is_better=False),
    Key.CHANGE_FAILURE_RATE: LevelBounds(0.05, 0.10, 0.15, higher_is_better=False, inclusive=True),
    Key.TIME_TO_RESTORE: LevelBounds(1, 24, 24 * 7, higher_is_better=False),
}


# --- what the figures are about and what they say -----------------------------------------------------------


@dataclass(frozen=True)
class DoraScope:
    """From ``start`` (inclusive) to ``end`` (exclusive), for one service or all, in one environment or in every
    production-tier one."""

    start: datetime
    end: datetime
    service_id: int | None = None
    environment_id: int | None = None

    @classmethod
    def of_days(cls, first: date, last: date, **filters) -> DoraScope:
        """The whole days from ``first`` to ``last`` (both included), in UTC."""
        return cls(
            start=datetime.combine(first, time.min, UTC),
            end=datetime.combine(last + timedelta(days=1), time.min, UTC),
            **filters,
        )

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(microseconds=1)).date()

    def previous(self) -> DoraScope:
        """The period of equal length just before, for the trend."""
        return replace(self, start=self.start - (self.end - self.start), end=self.start)


@dataclass(frozen=True)
class DoraKeys:
    """The four keys over one period, with the counts they come from."""

    deployments: int
    failed_deployments: int
    deployments_per_day: float
    change_failure_rate: float | None  # None: no deployment
    changes_measured: int  # production successes with a lead time
    lead_time_median_hours: float | None
    lead_time_p90_hours: float | None
    restorations: int  # incidents caused by a deployment and resolved in the period
    time_to_restore_median_hours: float | None

    def value(self, key: Key) -> float | None:
        return {
            Key.DEPLOYMENT_FREQUENCY: self.deployments_per_day,
            Key.LEAD_TIME: self.lead_time_median_hours,
            Key.CHANGE_FAILURE_RATE: self.change_failure_rate,
            Key.TIME_TO_RESTORE: self.time_to_restore_median_hours,
        }[key]


@dataclass(frozen=True)
class KeyFigure:
    """A key's value in the period, its DORA level, and how it moved since the previous period."""

    key: Key
    value: float | None
    level: Level | None
    previous: float | None
    trend: str  # "better", "worse", "same", or "" when either period has no value

    @property
    def label(self) -> str:
        return self.key.label


@dataclass(frozen=True)
class ItilFigures:
    """Release management's own measures over the period."""

    releases_deployed: int  # releases with a production deployment in the period
    releases_succeeded: int  # ... none of which failed, was rolled back or aborted
    release_success_rate: float | None
    changes_implemented: int  # change records the period's production deployments implemented
    emergency_changes: int
    emergency_change_share: float | None
    incidents_during_els: int  # opened in the period while an ELS period of a deployment in scope was running
    reviews_overdue: int  # PIRs that fell due in the period and are still not submitted after their due date


@dataclass(frozen=True)
class SeriesPoint:
    """One bucket of the series, from its first day to its last (a partial bucket reaches beyond the scope)."""

    starts: date
    ends: date
    deployments: int
    failed_deployments: int
    change_failure_rate: float | None
    lead_time_median_hours: float | None
    lead_time_p90_hours: float | None
    restorations: int
    time_to_restore_median_hours: float | None


@dataclass(frozen=True)
class DoraReport:
    """Everything the metrics page and the API show of one scope."""

    scope: DoraScope
    period: Period
    current: DoraKeys
    previous: DoraKeys
    keys: list[KeyFigure]
    itil: ItilFigures
    series: list[SeriesPoint]


# --- which rows count -----------------------------------------------------------------------------------------


def _in_scope(scope: DoraScope, deployment: str = "") -> Q:
    """The scope's service and environment, for deployments (or rows reaching one through ``deployment``)."""
    path = f"{deployment}__" if deployment else ""
    if scope.environment_id is not None:
        condition = Q(**{f"{path}environment": scope.environment_id})
    else:
        condition = Q(**{f"{path}environment__tier": EnvironmentTier.PRODUCTION})
    if scope.service_id is not None:
        condition &= Q(**{f"{path}service": scope.service_id})
    return condition


def production_deployments(scope: DoraScope) -> QuerySet[Deployment]:
    """The production deployments of the scope (see the module's docstring) that finished in it."""
    return ended_deployments().filter(_in_scope(scope), finished_at__gte=scope.start, finished_at__lt=scope.end)


def _ended_badly() -> Q:
    """It failed, was rolled back or aborted, or a later deployment that started replaces it (it was rolled back
    after it succeeded)."""
    replaced = Deployment.objects.filter(replaces__isnull=False, started_at__isnull=False).values("replaces")
    return ~Q(state=DeploymentState.SUCCEEDED) | Q(pk__in=replaced)


def _caused_incident() -> Q:
    """An incident names it (explicitly, or correlated by RDM or a person)."""
    return Q(pk__in=Incident.objects.filter(deployment__isnull=False).values("deployment"))


def _flag(condition: Q) -> ExpressionWrapper:
    return ExpressionWrapper(condition, output_field=BooleanField())


def _deployment_rows(scope: DoraScope) -> tuple[str, tuple]:
    """SQL of the scope's production deployments with what the figures read of each: whether it failed, and
    where its change started (``deployments.dora_facts`` stored a hotfix's verdict on the deployment it
    followed, and the package's first commit or registration)."""
    rows = (
        production_deployments(scope)
        .annotate(failed=_flag(_ended_badly() | _caused_incident() | Q(followed_by_hotfix=True)))
        .values("state", "finished_at", "package", "replaces", "change_started_at", "failed")
        .order_by()
    )
    return rows.query.sql_with_params()


def _restoration_rows(scope: DoraScope) -> tuple[str, tuple]:
    """SQL of the incidents caused by a deployment in the scope and resolved in it."""
    rows = (
        Incident.objects.filter(_in_scope(scope, "deployment"), resolved_at__gte=scope.start, resolved_at__lt=scope.end)
        .values("opened_at", "resolved_at")
        .order_by()
    )
    return rows.query.sql_with_params()


def _rolled_up(rows: str, rows_params: list, moment: str, columns: str, scopes: list[DoraScope], unit: str | None):
    """SQL (and its parameters) aggregating ``rows``, a subquery with a ``moment`` column, with ``columns``: per
    scope (``n``, its place in ``scopes``; ``whole``) and, when ``unit`` is given, per bucket of the first."""
    periods = ", ".join("(%s, %s::timestamptz, %s::timestamptz)" for _ in scopes)
    sql = f"""
        SELECT n, GROUPING(bucket) = 1 AS whole, bucket, {columns}
        FROM (
            SELECT periods.n, rows.*,
                   CASE WHEN periods.n = 0 THEN date_trunc(%s::text, rows.{moment}, 'UTC') END AS bucket
            FROM ({rows}) rows
            JOIN (VALUES {periods}) periods (n, starts, ends)
              ON rows.{moment} >= periods.starts AND rows.{moment} < periods.ends
        ) placed
        GROUP BY ROLLUP (n, bucket) HAVING GROUPING(n) = 0
    """
    bounds = [value for n, scope in enumerate(scopes) for value in (n, scope.start, scope.end)]
    return sql, [unit, *rows_params, *bounds]


def _figures(scopes: list[DoraScope], period: Period | None) -> tuple[list[DoraKeys], list[SeriesPoint]]:
    """The four keys of each of ``scopes`` (all of the same service and environment) and, given a ``period``,
    the first one's series: one pass over their deployments and one over their restorations, whatever the
    number of scopes and buckets."""
    covering = replace(scopes[0], start=min(s.start for s in scopes), end=max(s.end for s in scopes))
    unit = period.value if period else None
    deployments, deployment_params = _deployment_rows(covering)
    shipped = _rolled_up(
        f"""SELECT finished_at, failed,
                   CASE WHEN state = %s AND package IS NOT NULL AND replaces IS NULL
                        THEN greatest(extract(epoch FROM finished_at - change_started_at), 0) / 3600 END
                       AS lead_time_hours
            FROM ({deployments}) deployments""",
        [DeploymentState.SUCCEEDED.value, *deployment_params],
        "finished_at",
        "count(*), count(*) FILTER (WHERE failed), count(lead_time_hours),"
        " percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY lead_time_hours)",
        scopes,
        unit,
    )
    restorations, restoration_params = _restoration_rows(covering)
    restored = _rolled_up(
        f"SELECT resolved_at, extract(epoch FROM resolved_at - opened_at) / 3600 AS hours FROM ({restorations}) r",
        list(restoration_params),
        "resolved_at",
        "count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY hours)",
        scopes,
        unit,
    )
    with connection.cursor() as cursor:
        cursor.execute(*shipped)
        shipped_rows = {(n, whole, bucket): figures for n, whole, bucket, *figures in cursor.fetchall()}
        cursor.execute(*restored)
        restored_rows = {(n, whole, bucket): figures for n, whole, bucket, *figures in cursor.fetchall()}

    def keys(n: int, whole: bool, bucket: datetime | None) -> DoraKeys:
        return _keys(scopes[n], shipped_rows.get((n, whole, bucket)), restored_rows.get((n, whole, bucket)))

    series = [
        SeriesPoint(
            starts=starts.date(),
            ends=following.date() - timedelta(days=1),
            deployments=point.deployments,
            failed_deployments=point.failed_deployments,
            change_failure_rate=point.change_failure_rate,
            lead_time_median_hours=point.lead_time_median_hours,
            lead_time_p90_hours=point.lead_time_p90_hours,
            restorations=point.restorations,
            time_to_restore_median_hours=point.time_to_restore_median_hours,
        )
        for starts, following in (_buckets(scopes[0], period) if period else [])
        for point in [keys(0, False, starts)]
    ]
    return [keys(n, True, None) for n in range(len(scopes))], series


def _buckets(scope: DoraScope, period: Period) -> list[tuple[datetime, datetime]]:
    """Each bucket of the scope (the start of each, as ``date_trunc`` cuts it in UTC, and of the next)."""
    first = scope.start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == Period.WEEK:
        first -= timedelta(days=first.weekday())
    else:
        months = 3 if period == Period.QUARTER else 1
        first = first.replace(day=1, month=first.month - (first.month - 1) % months)
    buckets = []
    while first < scope.end:
        if period == Period.WEEK:
            following = first + timedelta(weeks=1)
        else:
            month = first.month - 1 + months
            following = first.replace(year=first.year + month // 12, month=month % 12 + 1)
        buckets.append((first, following))
        first = following
    return buckets


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# --- the figures ----------------------------------------------------------------------------------------------


def dora_keys(*scopes: DoraScope) -> list[DoraKeys]:
    """The four keys of each period (all of the same service and environment), in one query over all of them
    (and one over their restorations)."""
    return _figures(list(scopes), None)[0]


def _keys(scope: DoraScope, shipped: list | None, restored: list | None) -> DoraKeys:
    """The keys from a row of each rolled-up query (None: nothing in the scope or bucket)."""
    deployments, failed, measured, lead_times = shipped or (0, 0, 0, None)
    restorations, restore_median = restored or (0, None)
    lead_median, lead_p90 = lead_times or (None, None)
    return DoraKeys(
        deployments=deployments,
        failed_deployments=failed,
        deployments_per_day=deployments / scope.days,
        change_failure_rate=_rate(failed, deployments),
        changes_measured=measured,
        lead_time_median_hours=lead_median,
        lead_time_p90_hours=lead_p90,
        restorations=restorations,
        time_to_restore_median_hours=restore_median,
    )


def dora_series(scope: DoraScope, period: Period) -> list[SeriesPoint]:
    """The keys per bucket of the scope, every bucket present (an empty one with zero deployments)."""
    return _figures([scope], Period(period))[1]


def itil_figures(scope: DoraScope, *, today: date | None = None) -> ItilFigures:
    """Release success rate, emergency-change share, incidents during ELS and PIRs overdue (three queries)."""
    today = today or timezone.localdate()
    emergency_changes = ChangeRecord.objects.filter(change_type=ChangeType.EMERGENCY).values("pk")
    shipped = production_deployments(scope).aggregate(
        releases=Count("package__release", distinct=True),
        releases_failed=Count("package__release", distinct=True, filter=_ended_badly()),
        changes=Count("change", distinct=True),
        # the emergency changes' ids, hashed once: cheaper than joining every deployment to its change record
        emergency=Count("change", distinct=True, filter=Q(change__in=emergency_changes)),
    )
    running_then = EarlyLifeSupport.objects.filter(
        _in_scope(scope, "deployment"),
        Q(deployment=OuterRef("deployment")) | Q(release=OuterRef("release")),
        Q(exited_at__isnull=True) | Q(exited_at__gt=OuterRef("opened_at")),
        started_at__lte=OuterRef("opened_at"),
    )
    during_els = Incident.objects.filter(
        Exists(running_then), opened_at__gte=scope.start, opened_at__lt=scope.end
    ).count()
    overdue = PostImplementationReview.objects.filter(
        Exists(EarlyLifeSupport.objects.filter(_in_scope(scope, "deployment"), release=OuterRef("release"))),
        state__in=REVIEW_OPEN_STATES,
        due_on__gte=scope.start.date(),
        due_on__lt=min(scope.end.date(), today),
    )
    if scope.service_id is not None:
        overdue = overdue.filter(service=scope.service_id)
    succeeded = shipped["releases"] - shipped["releases_failed"]
    return ItilFigures(
        releases_deployed=shipped["releases"],
        releases_succeeded=succeeded,
        release_success_rate=_rate(succeeded, shipped["releases"]),
        changes_implemented=shipped["changes"],
        emergency_changes=shipped["emergency"],
        emergency_change_share=_rate(shipped["emergency"], shipped["changes"]),
        incidents_during_els=during_els,
        reviews_overdue=overdue.count(),
    )


def key_figures(current: DoraKeys, previous: DoraKeys) -> list[KeyFigure]:
    """Each key with its level and its trend against the previous period."""
    figures = []
    for key, bounds in DORA_LEVELS.items():
        value, before = current.value(key), previous.value(key)
        if value is None or before is None:
            trend = ""
        elif value == before:
            trend = "same"
        else:
            trend = "better" if (value > before) == bounds.higher_is_better else "worse"
        figures.append(KeyFigure(key, value, bounds.level(value), before, trend))
    return figures


def dora_report(scope: DoraScope, period: Period = Period.WEEK) -> DoraReport:
    """Everything the metrics page and the API show, in a fixed number of queries (the deployments of the period
    and the one before it read once, for the keys of both and the series)."""
    (current, previous), series = _figures([scope, scope.previous()], Period(period))
    return DoraReport(
        scope=scope,
        period=Period(period),
        current=current,
        previous=previous,
        keys=key_figures(current, previous),
        itil=itil_figures(scope),
        series=series,
    )
