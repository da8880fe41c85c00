"""DORA's per-deployment facts, stored when a deployment ends, so that ``deployments.metrics`` reads a year of
deployments from their own rows: without joining each to its package, release and policy, and without ordering
them all by service, environment and time to find the deployment that followed each.

- ``Deployment.change_started_at``: where the lead time for changes of what it delivered starts, its package's
  first commit (``first_commit_at``), or the package's registration when no commit time is known.
- ``Deployment.followed_by_hotfix``: the next deployment of its service to its environment (in the order they
  ended) is a hotfix, a patch or emergency release other than its own that finished within the hotfix release's
  policy window (``hotfix_window_days``), so this one counts as a failed change.

Only deployments that ended having started take part (``ended_deployments``). The end of a deployment can
change the fact of the one that ended before it, so ``dora_facts_record`` recomputes its service's and
environment's facts from that one on; ``dora_facts_backfill`` fills existing rows a few services at a time,
each batch in a short transaction of its own (row locks on that batch only).

A verdict is taken with the policies and releases as they are when the deployment after it ends: editing a
policy's hotfix window later does not rewrite past figures. A failed deployment being rolled back has no end
for a while; the one before it keeps its verdict until the rollback ends and records the facts again.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce

from deployments.choices import DeploymentState
from deployments.models import Deployment
from releases.choices import ReleaseType

HOTFIX_RELEASE_TYPES = (ReleaseType.PATCH, ReleaseType.EMERGENCY)
BACKFILL_SERVICES_PER_BATCH = 5


def ended_deployments() -> QuerySet[Deployment]:
    """Deployments that ended having started: succeeded, failed, rolled back, or aborted once started (an abort
    before the start changed nothing)."""
    ended = Q(state__in=(DeploymentState.SUCCEEDED, DeploymentState.FAILED, DeploymentState.ROLLED_BACK))
    ended |= Q(state=DeploymentState.ABORTED, started_at__isnull=False)
    return Deployment.objects.filter(ended)


def _facts_update(rows: QuerySet[Deployment]) -> int:
    """Recompute the facts of ``rows``: ended deployments, each service and environment's from some moment on
    (the first of them has its own next one among them). Returns how many rows changed."""
    chosen, chosen_params = (
        rows.annotate(
            release=F("package__release"),
            release_type=F("package__release__release_type"),
            hotfix_window_days=F("package__release__policy__hotfix_window_days"),
            package_started_at=Coalesce("package__first_commit_at", "package__registered_at"),
        )
        .values(
            "id",
            "service",
            "environment",
            "finished_at",
            "release",
            "release_type",
            "hotfix_window_days",
            "package_started_at",
        )
        .order_by()
        .query.sql_with_params()
    )
    table = Deployment._meta.db_table
    sql = f"""
        WITH shaped AS (
            SELECT id, service, environment, finished_at, release, package_started_at,
                   CASE WHEN release_type = ANY(%s)
                        THEN finished_at - make_interval(days => hotfix_window_days) END AS hotfix_reach
            FROM ({chosen}) chosen
        ),
        facts AS (
            SELECT id, package_started_at,
                   coalesce(LEAD(hotfix_reach) OVER next <= finished_at
                            AND LEAD(release) OVER next IS DISTINCT FROM release, false) AS followed_by_hotfix
            FROM shaped
            WINDOW next AS (PARTITION BY service, environment ORDER BY finished_at, id)
        )
        UPDATE {table} SET change_started_at = facts.package_started_at, followed_by_hotfix = facts.followed_by_hotfix
        FROM facts
        WHERE {table}.id = facts.id
          AND ({table}.change_started_at IS DISTINCT FROM facts.package_started_at
               OR {table}.followed_by_hotfix <> facts.followed_by_hotfix)
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [[str(kind) for kind in HOTFIX_RELEASE_TYPES], *chosen_params])
        return cursor.rowcount


def dora_facts_record(deployment: Deployment) -> None:
    """After ``deployment`` ended: its facts, and those of the deployment of its service and environment that
    ended just before it (it may be that one's hotfix)."""
    run = ended_deployments().filter(service=deployment.service_id, environment=deployment.environment_id)
    if deployment.finished_at is None or not run.filter(pk=deployment.pk).exists():
        return
    before = (
        run.filter(
            Q(finished_at__lt=deployment.finished_at) | Q(finished_at=deployment.finished_at, pk__lt=deployment.pk)
        )
        .order_by("-finished_at", "-pk")
        .values_list("finished_at", flat=True)
        .first()
    )
    _facts_update(run.filter(finished_at__gte=before or deployment.finished_at))


def dora_facts_backfill(service_ids: Iterable[int] | None = None) -> int:
    """Fill the facts of every ended deployment (of ``service_ids``, or of every service), a few services per
    transaction. Returns how many rows changed."""
    from cmdb.models import Service

    ids = (
        list(service_ids)
        if service_ids is not None
        else list(Service.objects.order_by("pk").values_list("pk", flat=True))
    )
    changed = 0
    for first in range(0, len(ids), BACKFILL_SERVICES_PER_BATCH):
        with transaction.atomic():
            changed += _facts_update(
                ended_deployments().filter(service__in=ids[first : first + BACKFILL_SERVICES_PER_BATCH])
            )
    return changed
