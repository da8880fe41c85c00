"""Reads of the CMDB: the lists (loaded for what they show), impact analysis, what version is where, baseline
diffs."""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.postgres.aggregates import ArrayAgg
from django.db import connection
from django.db.models import Count, Q, QuerySet

from cmdb.choices import CI_TERMINAL_STATES, IMPACT_DIRECTIONS, CiState, CiType, ImpactDirection
from cmdb.models import Baseline, BaselineItem, ConfigurationItem, Environment, Relationship, Service

# --- lists: each with what its rows show loaded up front, so a page costs the same queries at any size ------


def environment_list() -> QuerySet[Environment]:
    return Environment.objects.order_by("promotion_order")


def service_list() -> QuerySet[Service]:
    return Service.objects.select_related("owner").prefetch_related("stakeholders").order_by("name")


def ci_list() -> QuerySet[ConfigurationItem]:
    """CIs with their environment, technical owner and service (whose owner decides who may edit them)."""
    return ConfigurationItem.objects.select_related("environment", "owner", "service__owner")


def relationship_list() -> QuerySet[Relationship]:
    """Relationships with both ends, whose names read them as sentences; the source's service says who may
    remove one.
    """
    return Relationship.objects.select_related("source__service__owner", "target")


def ci_relationships(ci: ConfigurationItem) -> QuerySet[Relationship]:
    """The relationships ``ci`` takes part in, whichever end it is, with both ends' environments."""
    return (
        relationship_list()
        .select_related("source__environment", "target__environment")
        .filter(Q(source=ci) | Q(target=ci))
    )


def service_cis(service: Service) -> QuerySet[ConfigurationItem]:
    """A service's CIs, environment by environment in promotion order."""
    return ci_list().filter(service=service).order_by("environment__promotion_order", "name")


def baseline_list() -> QuerySet[Baseline]:
    return Baseline.objects.select_related("taken_by").annotate(item_count=Count("items")).order_by("-taken_at", "-id")


# --- impact analysis --------------------------------------------------------------------------


@dataclass(frozen=True)
class ImpactedCi:
    ci: ConfigurationItem
    depth: int  # relationships between the broken CI and this one, along the shortest path


@dataclass(frozen=True)
class ImpactedService:
    service: Service
    depth: int  # depth of its nearest hurt CI; 0 when the broken CI itself belongs to it


@dataclass(frozen=True)
class ImpactDepth:
    depth: int
    cis: int  # CIs hurt at this depth
    services: int  # services whose nearest hurt CI is at this depth


@dataclass(frozen=True)
class Impact:
    cis: list[ImpactedCi]  # nearest first, from ``offset``: all of them, or the window asked for; never the broken CI
    services: list[ImpactedService]  # all of them, nearest first
    ci_count: int  # every CI hurt, whatever the window
    cis_per_depth: dict[int, int]  # every CI hurt, by depth
    offset: int = 0
    limit: int | None = None  # the window's size; None: every CI from ``offset``

    @property
    def service_count(self) -> int:
        return len(self.services)

    @property
    def depths(self) -> list[ImpactDepth]:
        """How many CIs and services are hurt at each depth, nearest first."""
        services = Counter(hurt.depth for hurt in self.services)
        return [
            ImpactDepth(depth, self.cis_per_depth.get(depth, 0), services.get(depth, 0))
            for depth in sorted(set(self.cis_per_depth) | set(services))
        ]


# One recursive CTE walks the graph breadth first, following each relationship the way impact travels
# (IMPACT_DIRECTIONS). It stops on cycles because depth is bounded and UNION drops rows already found, so
# the work is at most max_depth times the relationships whatever the graph's shape (a path array would
# instead enumerate every path of a dense graph). Each step looks up the neighbours of one CI, and each
# neighbour's state, by index: LATERAL and the scalar subquery leave the planner no join order to get
# wrong, so the walk stays fast even when table statistics are stale (say, right after a large import).
# Retired CIs are out of service: they neither suffer nor pass on impact.
# The same statement then answers what a page needs, so a blast radius of ten thousand CIs never leaves the
# database whole: the window of CIs asked for (nearest first: depth, name, id), the number of CIs per depth,
# and every service with the depth of its nearest hurt CI. Rows read (kind, id, depth, position or count).
_IMPACT_SQL = f"""
WITH RECURSIVE reach(ci_id, depth) AS (
    SELECT %(root)s::bigint, 0
    UNION
    SELECT step.downstream, reach.depth + 1
    FROM reach
    CROSS JOIN LATERAL (
        SELECT relationship.source_id FROM {Relationship._meta.db_table} AS relationship
        WHERE relationship.target_id = reach.ci_id AND relationship.kind = ANY(%(target_to_source)s)
        UNION ALL
        SELECT relationship.target_id FROM {Relationship._meta.db_table} AS relationship
        WHERE relationship.source_id = reach.ci_id AND relationship.kind = ANY(%(source_to_target)s)
    ) AS step(downstream)
    WHERE reach.depth < %(max_depth)s
    AND (SELECT ci.state FROM {ConfigurationItem._meta.db_table} AS ci WHERE ci.id = step.downstream)
        <> ALL(%(terminal)s)
),
impact(ci_id, depth) AS (SELECT ci_id, MIN(depth) FROM reach GROUP BY ci_id),
hurt AS MATERIALIZED (
    SELECT impact.ci_id, impact.depth, ci.name, ci.service_id
    FROM impact JOIN {ConfigurationItem._meta.db_table} AS ci ON ci.id = impact.ci_id
)
SELECT 'ci', ci_id, depth, position FROM (
    SELECT ci_id, depth, ROW_NUMBER() OVER (ORDER BY depth, name, ci_id) AS position
    FROM hurt WHERE ci_id <> %(root)s ORDER BY depth, name, ci_id LIMIT %(limit)s OFFSET %(offset)s
) AS window_shown
UNION ALL
SELECT 'depth', NULL, depth, COUNT(*) FROM hurt WHERE ci_id <> %(root)s GROUP BY depth
UNION ALL
SELECT 'service', service_id, MIN(depth), NULL FROM hurt WHERE service_id IS NOT NULL GROUP BY service_id
"""


def _kinds_carrying(*directions: ImpactDirection) -> list[str]:
    return [kind.value for kind, direction in IMPACT_DIRECTIONS.items() if direction in directions]


def _walk_params(ci: ConfigurationItem, max_depth: int) -> dict[str, Any]:
    if max_depth < 1:
        raise ValueError("max_depth must be at least 1")
    return {
        "root": ci.pk,
        "max_depth": max_depth,
        "target_to_source": _kinds_carrying(ImpactDirection.TARGET_TO_SOURCE, ImpactDirection.BOTH),
        "source_to_target": _kinds_carrying(ImpactDirection.SOURCE_TO_TARGET, ImpactDirection.BOTH),
        "terminal": [state.value for state in CI_TERMINAL_STATES],
    }


def ci_impact(ci: ConfigurationItem, max_depth: int = 10, *, limit: int | None = None, offset: int = 0) -> Impact:
    """The CIs and services hurt when ``ci`` breaks, each with how far away it is (up to ``max_depth`` hops):
    every service, the CIs nearest first (``limit`` of them from ``offset``, or all), and how many CIs are
    hurt in all and at each depth.

    Three queries whatever the size of the graph: the walk with its counts, then the CIs shown (with their
    environments and services) and the services hurt.
    """
    if (limit is not None and limit < 0) or offset < 0:
        raise ValueError("limit and offset may not be negative")
    with connection.cursor() as cursor:
        cursor.execute(_IMPACT_SQL, {**_walk_params(ci, max_depth), "limit": limit, "offset": offset})
        rows = cursor.fetchall()
    shown = sorted((position, pk, depth) for kind, pk, depth, position in rows if kind == "ci")
    per_depth = {depth: count for kind, _, depth, count in rows if kind == "depth"}
    service_depths = {pk: depth for kind, pk, depth, _ in rows if kind == "service"}
    found = ConfigurationItem.objects.select_related("environment", "service").in_bulk([pk for _, pk, _ in shown])
    services = Service.objects.in_bulk(service_depths)
    return Impact(
        cis=[ImpactedCi(ci=found[pk], depth=depth) for _, pk, depth in shown if pk in found],
        services=[
            ImpactedService(service=service, depth=service_depths[pk])
            for pk, service in sorted(services.items(), key=lambda item: (service_depths[item[0]], item[1].name))
        ],
        ci_count=sum(per_depth.values()),
        cis_per_depth=dict(sorted(per_depth.items())),
        offset=offset,
        limit=limit,
    )


# ``_IMPACT_SQL`` walked backwards: from the hurt CI to those whose failure reaches it. A step leaves a CI only
# when it can be hurt (not retired), as the forward walk enters only such CIs; the broken CI may be anything.
_UPSTREAM_SQL = f"""
WITH RECURSIVE reach(ci_id, depth) AS (
    SELECT %(root)s::bigint, 0
    UNION
    SELECT step.upstream, reach.depth + 1
    FROM reach
    CROSS JOIN LATERAL (
        SELECT relationship.target_id FROM {Relationship._meta.db_table} AS relationship
        WHERE relationship.source_id = reach.ci_id AND relationship.kind = ANY(%(target_to_source)s)
        UNION ALL
        SELECT relationship.source_id FROM {Relationship._meta.db_table} AS relationship
        WHERE relationship.target_id = reach.ci_id AND relationship.kind = ANY(%(source_to_target)s)
    ) AS step(upstream)
    WHERE reach.depth < %(max_depth)s
    AND (SELECT ci.state FROM {ConfigurationItem._meta.db_table} AS ci WHERE ci.id = reach.ci_id)
        <> ALL(%(terminal)s)
)
SELECT ci_id, MIN(depth) FROM reach WHERE ci_id <> %(root)s GROUP BY ci_id
"""


def ci_upstream(ci: ConfigurationItem, max_depth: int = 10) -> dict[int, int]:
    """The CIs whose failure reaches ``ci`` by impact analysis (``ci_impact`` the other way round), by id, each
    with the hops it takes: one query, however many CIs break what."""
    with connection.cursor() as cursor:
        cursor.execute(_UPSTREAM_SQL, _walk_params(ci, max_depth))
        return dict(cursor.fetchall())


@dataclass(frozen=True)
class ImpactStep:
    """A hurt CI and how the failure reached it: the relationships from CIs one hop nearer, and one shortest
    path of CIs from the broken one.
    """

    ci: ConfigurationItem
    depth: int
    via: list[Relationship]
    path: list[ConfigurationItem]


@dataclass(frozen=True)
class ImpactGraph:
    root: ConfigurationItem
    impact: Impact
    steps: list[ImpactStep]  # nearest first, as ``impact.cis``
    relationships: list[Relationship]  # those the failure travels along, between the CIs found


def _impact_flows(relationship: Relationship) -> list[tuple[int, int]]:
    """The (broken, hurt) CI ids a relationship carries impact between, by ``IMPACT_DIRECTIONS``."""
    forward, backward = (
        (relationship.source_id, relationship.target_id),
        (relationship.target_id, relationship.source_id),
    )
    direction = IMPACT_DIRECTIONS[relationship.kind]
    if direction == ImpactDirection.TARGET_TO_SOURCE:
        return [backward]
    if direction == ImpactDirection.SOURCE_TO_TARGET:
        return [forward]
    return [forward, backward]


LIVE_STATES = (CiState.LIVE, CiState.MAINTENANCE)


def ci_live_dependents(ci: ConfigurationItem) -> list[ConfigurationItem]:
    """The live (or in maintenance) CIs hurt at once when ``ci`` goes away: one hop of impact, by
    ``IMPACT_DIRECTIONS`` (the sources of its depends_on / runs_on, the wholes it is part of, its peers).
    """
    hurt_as_target = _kinds_carrying(ImpactDirection.TARGET_TO_SOURCE, ImpactDirection.BOTH)
    hurt_as_source = _kinds_carrying(ImpactDirection.SOURCE_TO_TARGET, ImpactDirection.BOTH)
    depends = Q(outgoing_relationships__target=ci, outgoing_relationships__kind__in=hurt_as_target) | Q(
        incoming_relationships__source=ci, incoming_relationships__kind__in=hurt_as_source
    )
    dependents = ConfigurationItem.objects.filter(depends, state__in=LIVE_STATES).exclude(pk=ci.pk)
    return list(dependents.select_related("environment").distinct().order_by("name", "id"))


def ci_impact_graph(ci: ConfigurationItem, max_depth: int = 10, *, nearest: int | None = None) -> ImpactGraph:
    """``ci_impact`` with the relationships along which the failure travels, to draw and explain it: for the
    ``nearest`` CIs (all when None). Those nearest are every CI closer than the farthest of them, so each one's
    shortest paths run among them.

    One query more than ``ci_impact``: the relationships between the CIs found.
    """
    impact = ci_impact(ci, max_depth=max_depth, limit=nearest)
    cis = {ci.pk: ci, **{hurt.ci.pk: hurt.ci for hurt in impact.cis}}
    depths = {ci.pk: 0, **{hurt.ci.pk: hurt.depth for hurt in impact.cis}}
    carrying: list[Relationship] = []
    reached_via: dict[int, list[Relationship]] = {}
    parents: dict[int, int] = {}
    for relationship in Relationship.objects.filter(source__in=cis, target__in=cis).order_by("kind", "pk"):
        relationship.source, relationship.target = cis[relationship.source_id], cis[relationship.target_id]
        for broken, hurt in _impact_flows(relationship):
            if depths[hurt] == depths[broken] + 1:  # a step of a shortest path
                carrying.append(relationship)
                reached_via.setdefault(hurt, []).append(relationship)
                parents.setdefault(hurt, broken)
    steps = []
    for hurt in impact.cis:
        path, at = [hurt.ci], hurt.ci.pk
        while at in parents:
            at = parents[at]
            path.insert(0, cis[at])
        steps.append(ImpactStep(ci=hurt.ci, depth=hurt.depth, via=reached_via.get(hurt.ci.pk, []), path=path))
    return ImpactGraph(root=ci, impact=impact, steps=steps, relationships=list(dict.fromkeys(carrying)))


# --- what version is where --------------------------------------------------------------------


@dataclass(frozen=True)
class VersionCell:
    environment: Environment
    versions: list[str]  # the distinct versions of the service's application CIs there (not retired), sorted
    ci_ids: list[int]  # those CIs, by name


@dataclass(frozen=True)
class VersionRow:
    service: Service
    cells: list[VersionCell]  # one per environment, in promotion order


@dataclass(frozen=True)
class VersionMatrix:
    environments: list[Environment]
    rows: list[VersionRow]
    service_count: int | None = None  # every service the matrix covers, when it holds a page of them
    limit: int | None = None  # the page: ``limit`` services (by name) from ``offset``; None: all
    offset: int = 0


def version_matrix(
    service_ids: Iterable[int] | None = None, *, limit: int | None = None, offset: int = 0
) -> VersionMatrix:
    """Service by environment → the versions of the service's applications there (of every service, or of those
    given; ``limit`` of them by name from ``offset``, counted, when a page is asked for). Three queries, four
    with the count; the CIs are grouped by cell in the database (tens of thousands of them would otherwise
    cross into Python)."""
    environments = list(Environment.objects.order_by("promotion_order"))
    services = Service.objects.order_by("name", "id")
    if service_ids is not None:
        services = services.filter(pk__in=service_ids)
    service_count = None
    if limit is not None:
        service_count = services.count()
        services = services[offset : offset + limit]
    services = list(services)
    applications = ConfigurationItem.objects.filter(ci_type=CiType.APPLICATION, service__in=services)
    cells = (
        applications.exclude(state__in=CI_TERMINAL_STATES)
        .values("service_id", "environment_id")
        .annotate(ci_ids=ArrayAgg("pk", order_by=("name", "pk")), versions=ArrayAgg("version", distinct=True))
        .order_by()
    )
    placed = {
        (cell["service_id"], cell["environment_id"]): (sorted(filter(None, cell["versions"])), cell["ci_ids"])
        for cell in cells
    }
    rows = [
        VersionRow(
            service=service,
            cells=[VersionCell(env, *placed.get((service.pk, env.pk), ([], []))) for env in environments],
        )
        for service in services
    ]
    return VersionMatrix(environments=environments, rows=rows, service_count=service_count, limit=limit, offset=offset)


# --- baseline comparison ----------------------------------------------------------------------


@dataclass(frozen=True)
class CiDifference:
    ci_id: int
    ci_name: str
    environment_name: str
    # {"version": ("1.0", "1.1"), "attributes.replicas": (2, 3), ...}; None stands for "absent"
    changes: dict[str, tuple[Any, Any]]


@dataclass(frozen=True)
class BaselineDiff:
    added: list[BaselineItem]  # in the later baseline only
    removed: list[BaselineItem]  # in the earlier baseline only
    changed: list[CiDifference]


_COMPARED_FIELDS = ("ci_name", "environment_name", "service_name", "ci_type", "state", "version")


def _item_differences(before: BaselineItem, after: BaselineItem) -> dict[str, tuple[Any, Any]]:
    changes = {
        name: (getattr(before, name), getattr(after, name))
        for name in _COMPARED_FIELDS
        if getattr(before, name) != getattr(after, name)
    }
    for key in sorted(before.attributes.keys() | after.attributes.keys()):
        old, new = before.attributes.get(key), after.attributes.get(key)
        if old != new:
            changes[f"attributes.{key}"] = (old, new)
    return changes


def baseline_diff(before: Baseline, after: Baseline) -> BaselineDiff:
    """What changed between two baselines, CI by CI (matched by CI id, so a renamed CI is a change)."""
    old = {item.ci_id: item for item in before.items.all()}
    new = {item.ci_id: item for item in after.items.all()}
    changed = []
    for ci_id in sorted(old.keys() & new.keys(), key=lambda ci_id: (new[ci_id].environment_name, new[ci_id].ci_name)):
        if changes := _item_differences(old[ci_id], new[ci_id]):
            item = new[ci_id]
            changed.append(CiDifference(ci_id, item.ci_name, item.environment_name, changes))
    return BaselineDiff(
        added=[item for ci_id, item in new.items() if ci_id not in old],
        removed=[item for ci_id, item in old.items() if ci_id not in new],
        changed=changed,
    )
