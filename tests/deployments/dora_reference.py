"""The DORA figures as ``deployments.metrics`` computed them before the per-deployment facts: every deployment
joined with its package, release and policy, and ordered by service, environment and time to find the one that
followed it. The yardstick of ``test_dora_facts.py``: the figures read from the stored facts must be these."""

from datetime import timedelta

from django.db import connection
from django.db.models import F, Max
from django.db.models.functions import Coalesce

from deployments.dora_facts import HOTFIX_RELEASE_TYPES, ended_deployments
from deployments.metrics import DoraScope, Period, _caused_incident, _ended_badly, _flag, _in_scope
from deployments.models import Incident
from releases.models import ReleasePolicy


def _flagged(scope: DoraScope) -> tuple[str, list]:
    longest_window = ReleasePolicy.objects.aggregate(days=Max("hotfix_window_days"))["days"] or 0
    rows = (
        ended_deployments()
        .filter(
            _in_scope(scope), finished_at__gte=scope.start, finished_at__lt=scope.end + timedelta(days=longest_window)
        )
        .annotate(
            release=F("package__release"),
            release_type=F("package__release__release_type"),
            hotfix_window_days=F("package__release__policy__hotfix_window_days"),
            package_started_at=Coalesce("package__first_commit_at", "package__registered_at"),
            failed_itself=_flag(_ended_badly() | _caused_incident()),
        )
        .values(
            "id",
            "service",
            "environment",
            "state",
            "finished_at",
            "package",
            "replaces",
            "release",
            "release_type",
            "hotfix_window_days",
            "package_started_at",
            "failed_itself",
        )
        .order_by()
    )
    deployments, deployment_params = rows.query.sql_with_params()
    restorations, restoration_params = (
        Incident.objects.filter(_in_scope(scope, "deployment"), resolved_at__gte=scope.start, resolved_at__lt=scope.end)
        .values("opened_at", "resolved_at")
        .order_by()
        .query.sql_with_params()
    )
    sql = f"""
        WITH shaped AS (
            SELECT id, service, environment, finished_at, release, failed_itself,
                   CASE WHEN release_type = ANY(%s)
                        THEN finished_at - make_interval(days => hotfix_window_days) END AS hotfix_reach,
                   CASE WHEN state = 'succeeded' AND package IS NOT NULL AND replaces IS NULL
                        THEN greatest(extract(epoch FROM finished_at - package_started_at), 0) / 3600 END
                       AS lead_time_hours
            FROM ({deployments}) rows
        ),
        flagged AS (
            SELECT finished_at, lead_time_hours,
                   failed_itself
                   OR (LEAD(hotfix_reach) OVER next <= finished_at AND LEAD(release) OVER next IS DISTINCT FROM release)
                       AS failed
            FROM shaped
            WINDOW next AS (PARTITION BY service, environment ORDER BY finished_at, id)
        ),
        restored AS (
            SELECT resolved_at, extract(epoch FROM resolved_at - opened_at) / 3600 AS hours FROM ({restorations}) r
        )
    """
    return sql, [[str(kind) for kind in HOTFIX_RELEASE_TYPES], *deployment_params, *restoration_params]


def reference_keys(scope: DoraScope) -> tuple:
    """(deployments, failed, lead times measured, lead median, lead p90, restorations, restore median)."""
    ctes, params = _flagged(scope)
    sql = f"""{ctes}
        SELECT * FROM (SELECT count(*) FILTER (WHERE in_scope), count(*) FILTER (WHERE failed AND in_scope),
                              count(lead_time_hours) FILTER (WHERE in_scope),
                              percentile_cont(0.5) WITHIN GROUP (ORDER BY lead_time_hours) FILTER (WHERE in_scope),
                              percentile_cont(0.9) WITHIN GROUP (ORDER BY lead_time_hours) FILTER (WHERE in_scope)
                       FROM (SELECT *, finished_at < %s AS in_scope FROM flagged) flagged) shipped,
                      (SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY hours) FROM restored) restorations
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, scope.end])
        return tuple(cursor.fetchone())


def reference_series(scope: DoraScope, period: Period) -> list[tuple]:
    """Per bucket: (starts, deployments, failed, lead median, lead p90, restorations, restore median)."""
    ctes, params = _flagged(scope)
    step = {Period.WEEK: "1 week", Period.MONTH: "1 month", Period.QUARTER: "3 months"}[period]
    sql = f"""{ctes},
        buckets AS (
            SELECT generate_series(date_trunc(%s, %s::timestamptz), %s::timestamptz, %s::interval) AS starts
        ),
        shipped AS (
            SELECT date_trunc(%s, finished_at) AS starts, count(*) AS deployments,
                   count(*) FILTER (WHERE failed) AS failed,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY lead_time_hours) AS lead_median,
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY lead_time_hours) AS lead_p90
            FROM flagged WHERE finished_at >= %s AND finished_at < %s GROUP BY 1
        ),
        restorations AS (
            SELECT date_trunc(%s, resolved_at) AS starts, count(*) AS restored,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY hours) AS restore_median
            FROM restored GROUP BY 1
        )
        SELECT buckets.starts::date, coalesce(deployments, 0), coalesce(failed, 0), lead_median, lead_p90,
               coalesce(restored, 0), restore_median
        FROM buckets LEFT JOIN shipped USING (starts) LEFT JOIN restorations USING (starts)
        ORDER BY buckets.starts
    """
    unit = period.value
    params += [unit, scope.start, scope.end - timedelta(microseconds=1), step, unit, scope.start, scope.end, unit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]
