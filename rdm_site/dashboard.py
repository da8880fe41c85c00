"""What the dashboard shows: the release pipeline, what waits for the signed-in user, the coming four weeks,
the rollouts running now, early life support under way, what runs where and the headline figures. Reads only;
each part costs a fixed number of queries whatever the amount of data (a test grows the data tenfold and
compares).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.contrib.auth.models import User
from django.core.paginator import Page, Paginator
from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from cmdb.choices import EnvironmentTier
from cmdb.models import Service
from cmdb.selectors import VersionCell, VersionMatrix, VersionRow, version_matrix
from deployments.choices import (
    DEPLOYMENT_ACTIVE_STATES,
    ELS_RUNNING_STATES,
    INCIDENT_OPEN_STATES,
    STEP_TERMINAL_STATES,
    DeploymentState,
    StepKind,
    StepState,
)
from deployments.els import CriterionResult, els_board, els_criteria_evaluate
from deployments.executors.manual_intervention import ManualInterventionExecutor
from deployments.models import Deployment, EarlyLifeSupport, Incident, Step
from deployments.selectors import redeployable_places
from deployments.services import RUN, may_plan_deployments
from rdm_site.pagination import bounded_counts
from releases.choices import (
    CHANGE_OPEN_STATES,
    RELEASE_PRE_DEPLOYMENT_STATES,
    ChangeType,
    ReleaseState,
)
from releases.models import ChangeRecord, FreezePeriod, Release, ReleaseWindow
from releases.recurrence import zone
from releases.selectors import (
    changes_awaiting_assessment_by,
    changes_awaiting_decision_by,
    packages_awaiting_validation_by,
    releases_awaiting_decision_by,
    reviews_awaiting_decision_by,
    reviews_to_write_by,
)

# The columns of the pipeline board, in lifecycle order; the side states are shown as counts only.
PIPELINE_STATES = (
    ReleaseState.DRAFT,
    ReleaseState.PLANNED,
    ReleaseState.SUBMITTED,
    ReleaseState.APPROVED,
    ReleaseState.READY,
    ReleaseState.DEPLOYING,
    ReleaseState.DEPLOYED,
    ReleaseState.EARLY_LIFE_SUPPORT,
    ReleaseState.IN_REVIEW,
    ReleaseState.CLOSED,
)
SIDE_STATES = (ReleaseState.REJECTED, ReleaseState.CANCELLED, ReleaseState.FAILED, ReleaseState.ROLLED_BACK)
CARDS_PER_COLUMN = 3
SCHEDULE_DAYS = 28
SCHEDULE_ITEMS = 60  # the soonest ones: a page that reads in a glance, whatever the number of plans
ACTIVE_DEPLOYMENTS_SHOWN = 20
VERSIONS_SHOWN = 15  # services in the dashboard's "what runs where": the most recently deployed (all: /running/)
SERVICES_PER_PAGE = 50  # services a page of /running/
NEEDS_SHOWN = 5  # of each kind of thing waiting for the user; the rest are counted
ELS_SHOWN = 8


# --- the pipeline ---------------------------------------------------------------------------------------------


@dataclass
class PipelineColumn:
    state: str
    label: str
    count: int
    cards: list[Release]
    count_is_estimate: bool = False  # past ``ESTIMATE_ABOVE`` releases in the state, as the lists count


@dataclass
class Pipeline:
    columns: list[PipelineColumn]
    side: list[PipelineColumn]


def release_pipeline() -> Pipeline:
    """Releases per state, with the most recently updated few of each board column. Each state is counted from
    its index in one query, exactly up to ``ESTIMATE_ABOVE`` and estimated beyond (a year's closed releases are
    tens of thousands); the columns' cards are one UNION of a short index scan per state, rather than a ranking
    of every release."""
    states = (*PIPELINE_STATES, *SIDE_STATES)
    counts = dict(zip(states, bounded_counts([Release.objects.filter(state=state) for state in states]), strict=True))
    newest = [
        Release.objects.filter(state=state).order_by("-updated", "-id")[:CARDS_PER_COLUMN] for state in PIPELINE_STATES
    ]
    cards: dict[str, list[Release]] = {}
    for release in newest[0].union(*newest[1:], all=True):
        cards.setdefault(release.state, []).append(release)
    for column in cards.values():
        column.sort(key=lambda release: (release.updated, release.pk), reverse=True)
    labels = dict(ReleaseState.choices)

    def column(state: str) -> PipelineColumn:
        count, estimated = counts[state]
        return PipelineColumn(state, labels[state], count, cards.get(state, []), count_is_estimate=estimated)

    return Pipeline(columns=[column(state) for state in PIPELINE_STATES], side=[column(s) for s in SIDE_STATES])


# --- what waits for the user ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    """One kind of thing waiting for the user: the first few (``NEEDS_SHOWN``) in the order they are to be
    handled, how many there are, and the list page that shows them all, where one shows exactly those.
    """

    items: list
    count: int
    url: str = ""

    @property
    def more(self) -> int:
        return self.count - len(self.items)


@dataclass
class NeedsAction:
    release_decisions: Waiting
    change_decisions: Waiting
    packages_to_validate: Waiting
    changes_to_assess: Waiting
    interventions: Waiting
    reviews_to_write: Waiting
    reviews_to_decide: Waiting

    @property
    def total(self) -> int:
        return sum(
            waiting.count
            for waiting in (
                self.release_decisions,
                self.change_decisions,
                self.packages_to_validate,
                self.changes_to_assess,
                self.interventions,
                self.reviews_to_write,
                self.reviews_to_decide,
            )
        )


def _waiting(queryset: QuerySet, url: str = "") -> Waiting:
    """The first ``NEEDS_SHOWN`` of ``queryset`` and its count, counted in the database (two queries always:
    the cost does not depend on the amount of data).
    """
    items = list(queryset[:NEEDS_SHOWN])
    count = queryset.order_by().count()
    return Waiting(items=items, count=count, url=url if count else "")


def interventions_awaiting(user: User) -> QuerySet[Step]:
    """Manual intervention steps of running rollouts waiting for an answer ``user`` may give, the soonest
    deadline first: the step rule table (``run_problem``) in SQL, held to it by a test. Deployment Managers
    answer any; Build/CI Engineers those of continuous deployments under a standard change (or, without a
    change, outside production).
    """
    if not user.is_authenticated or not may_plan_deployments(user):
        return Step.objects.none()
    waiting = Step.objects.filter(
        executor=ManualInterventionExecutor.name, state=StepState.RUNNING, manual_answer="", kind=StepKind.DEPLOY
    )
    if not user.has_perm(RUN):
        waiting = waiting.filter(deployment__continuous=True).filter(
            Q(deployment__change__change_type=ChangeType.STANDARD)
            | (Q(deployment__change__isnull=True) & ~Q(deployment__environment__tier=EnvironmentTier.PRODUCTION))
        )
    return waiting.select_related(
        "deployment__service", "deployment__environment", "deployment__change", "target__ci"
    ).order_by("deadline", "id")


def needs_action(user: User) -> NeedsAction:
    """What waits for ``user``, kind by kind, as each record's rule table says (so it agrees with the buttons):
    the first few of each and their number, in two queries per kind whatever the amount of data.
    """
    queue = reverse("releases:change_queue")
    return NeedsAction(
        release_decisions=_waiting(
            releases_awaiting_decision_by(user), f"{reverse('releases:release_list')}?awaiting_my_decision=true"
        ),
        change_decisions=_waiting(changes_awaiting_decision_by(user), queue),
        packages_to_validate=_waiting(packages_awaiting_validation_by(user)),
        changes_to_assess=_waiting(changes_awaiting_assessment_by(user), queue),
        interventions=_waiting(interventions_awaiting(user)),
        reviews_to_write=_waiting(reviews_to_write_by(user)),
        reviews_to_decide=_waiting(reviews_awaiting_decision_by(user)),
    )


# --- the coming weeks -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleItem:
    """Something on the calendar: ``start``/``end`` in UTC, ``time_zone`` the zone it is planned in."""

    kind: str  # window, freeze, deployment, release
    title: str
    start: datetime
    end: datetime | None
    time_zone: str
    url: str = ""
    detail: str = ""

    @property
    def local_start(self) -> datetime:
        return self.start.astimezone(zone(self.time_zone))

    @property
    def local_end(self) -> datetime | None:
        return self.end.astimezone(zone(self.time_zone)) if self.end else None

    @property
    def local_span(self) -> str:
        """When, in the item's own zone: its start and end as the schedule writes them."""
        return _span(self.local_start, self.local_end)

    @property
    def utc_start(self) -> str:
        return _moment(self.start.astimezone(UTC))

    @property
    def utc_end(self) -> str:
        return _moment(self.end.astimezone(UTC)) if self.end else ""


def _moment(moment: datetime) -> str:
    """The schedule's way of writing a time ("Thu 3 Dec 22:00"), in Python: the date filter's "D j M H:i" costs
    a template a millisecond per line."""
    return f"{moment:%a} {moment.day} {moment:%b %H:%M}"


def _span(start: datetime, end: datetime | None) -> str:
    return f"{_moment(start)} \N{EN DASH} {_moment(end)}" if end else _moment(start)


@dataclass
class ScheduleDay:
    day: date
    items: list[ScheduleItem] = field(default_factory=list)


def _window_items(start: datetime, end: datetime) -> list[ScheduleItem]:
    windows = ReleaseWindow.objects.filter(active=True).prefetch_related("environments").order_by("name")
    return [
        ScheduleItem(
            kind="window",
            title=window.name,
            start=occurrence.start,
            end=occurrence.end,
            time_zone=window.time_zone,
            detail=", ".join(environment.name for environment in window.environments.all()),
        )
        for window in windows
        for occurrence in window.occurrences_between(start, end)
    ]


def _freeze_items(start: datetime, end: datetime) -> list[ScheduleItem]:
    freezes = FreezePeriod.objects.filter(start__lt=end, end__gt=start).order_by("start", "id")[:SCHEDULE_ITEMS]
    return [
        ScheduleItem(
            kind="freeze", title=freeze.name, start=freeze.start, end=freeze.end, time_zone="UTC", detail=freeze.reason
        )
        for freeze in freezes
    ]


def _deployment_items(start: datetime, end: datetime) -> list[ScheduleItem]:
    planned = (
        Deployment.objects.filter(
            state__in=(DeploymentState.PLANNED, DeploymentState.SCHEDULED),
            scheduled_for__gte=start,
            scheduled_for__lt=end,
        )
        .select_related("service", "environment")
        .order_by("scheduled_for", "id")[:SCHEDULE_ITEMS]
    )
    return [
        ScheduleItem(
            kind="deployment",
            title=f"{deployment.service.name} {deployment.version} to {deployment.environment.name}".replace("  ", " "),
            start=deployment.scheduled_for,
            end=None,
            time_zone="UTC",
            detail=deployment.get_state_display(),
        )
        for deployment in planned
    ]


def _release_items(start: datetime, end: datetime) -> list[ScheduleItem]:
    planned = Release.objects.filter(
        state__in=RELEASE_PRE_DEPLOYMENT_STATES, planned_start__gte=start, planned_start__lt=end
    ).order_by("planned_start", "id")[:SCHEDULE_ITEMS]
    return [
        ScheduleItem(
            kind="release",
            title=f"{release.name} {release.version}",
            start=release.planned_start,
            end=release.planned_end,
            time_zone="UTC",
            url=release.get_absolute_url(),
            detail=release.get_state_display(),
        )
        for release in planned
    ]


@dataclass
class Schedule:
    days: list[ScheduleDay]
    truncated: bool  # more than SCHEDULE_ITEMS items fall in the period: only the soonest are listed


def schedule(start: datetime | None = None, days: int = SCHEDULE_DAYS) -> Schedule:
    """Windows (their next occurrences), freezes, planned deployments and planned release starts from ``start``
    for ``days`` days, the soonest SCHEDULE_ITEMS of them, grouped by UTC day; a freeze already in force is
    listed on the first day.
    """
    start = start or timezone.now()
    end = start + timedelta(days=days)
    items = [
        *_window_items(start, end),
        *_freeze_items(start, end),
        *_deployment_items(start, end),
        *_release_items(start, end),
    ]
    items.sort(key=lambda item: (max(item.start, start), item.kind, item.title))
    days_by_date: dict[date, ScheduleDay] = {}
    for item in items[:SCHEDULE_ITEMS]:
        day = max(item.start, start).astimezone(UTC).date()
        days_by_date.setdefault(day, ScheduleDay(day)).items.append(item)
    return Schedule(days=list(days_by_date.values()), truncated=len(items) > SCHEDULE_ITEMS)


# --- rollouts and figures -------------------------------------------------------------------------------------


def _steps_count(**conditions) -> Coalesce:
    rows = Step.objects.filter(deployment=OuterRef("pk"), **conditions).exclude(kind=StepKind.ROLLBACK)
    counted = rows.order_by().values("deployment").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def active_deployments() -> QuerySet[Deployment]:
    """Rollouts holding their lock (queued, running, paused, rolling back) with steps done and in total."""
    return (
        Deployment.objects.filter(state__in=DEPLOYMENT_ACTIVE_STATES)
        .select_related("service", "environment")
        .annotate(steps_total=_steps_count(), steps_done=_steps_count(state__in=STEP_TERMINAL_STATES))
        .order_by("-started_at", "-id")[:ACTIVE_DEPLOYMENTS_SHOWN]
    )


@dataclass(frozen=True)
class Figure:
    label: str
    value: int
    hint: str = ""


def headline_figures(pipeline: Pipeline, now: datetime | None = None) -> list[Figure]:
    """A handful of numbers: releases this month, releases in flight (from the ``pipeline``'s counts), rollouts
    of the last 30 days, open changes and incidents."""
    now = now or timezone.now()
    month_start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    since = now - timedelta(days=30)
    deployed = Release.objects.filter(deployed_at__gte=month_start).count()
    in_flight = sum(column.count for column in pipeline.columns if column.state != ReleaseState.CLOSED)
    deployments = Deployment.objects.filter(finished_at__gte=since).aggregate(
        succeeded=Count("id", filter=Q(state=DeploymentState.SUCCEEDED)),
        failed=Count("id", filter=Q(state__in=(DeploymentState.FAILED, DeploymentState.ROLLED_BACK))),
    )
    open_changes = ChangeRecord.objects.filter(state__in=CHANGE_OPEN_STATES).count()
    open_incidents = Incident.objects.filter(state__in=INCIDENT_OPEN_STATES).count()
    return [
        Figure("Releases deployed this month", deployed, f"since {month_start:%d %b}"),
        Figure("Releases in flight", in_flight, "draft to in review"),
        Figure("Deployments succeeded", deployments["succeeded"], "last 30 days"),
        Figure("Deployments failed or rolled back", deployments["failed"], "last 30 days"),
        Figure("Open changes", open_changes, "not yet carried out"),
        Figure("Open incidents", open_incidents, "open or acknowledged"),
    ]


@dataclass(frozen=True)
class ElsRow:
    """A period under way: its exit criteria now and its open serious incidents."""

    period: EarlyLifeSupport
    criteria: list[CriterionResult]

    @property
    def exit_blocked(self) -> bool:
        return any(not result.met for result in self.criteria)

    @property
    def open_serious(self) -> int:
        return self.period.open_p1 + self.period.open_p2


def early_life_support_running() -> list[ElsRow]:
    """Periods under way (active or extended), soonest end first, at most ELS_SHOWN; their criteria are read
    from the board's counts, so the cost does not grow with the periods or their incidents.
    """
    running = els_board().filter(state__in=ELS_RUNNING_STATES)
    # the board's order within running periods, said without its rank so that the state index serves it
    running = running.order_by(F("planned_end").asc(nulls_last=True), "-created", "-id")[:ELS_SHOWN]
    return [ElsRow(period, els_criteria_evaluate(period)) for period in running]


@dataclass(frozen=True)
class RunningCell(VersionCell):
    redeployable: bool = False  # an earlier package succeeded there: the cell offers its redeployment


def recently_deployed_services(limit: int = VERSIONS_SHOWN) -> list[int]:
    """The services of the newest deployments, at most ``limit`` (read from the deployments' newest-first index)."""
    newest: dict[int, None] = {}
    for service_id in Deployment.objects.order_by("-created").values_list("service_id", flat=True)[: limit * 20]:
        newest.setdefault(service_id, None)
        if len(newest) == limit:
            break
    return list(newest)


def services_page(number) -> Page:
    """One page of the services' ids, by name, as what runs where shows them (``SERVICES_PER_PAGE`` a page; a
    page number out of range or not a number gives the nearest page)."""
    services = Service.objects.order_by("name", "id").values_list("pk", flat=True)
    return Paginator(services, SERVICES_PER_PAGE).get_page(number)


def what_runs_where(service_ids: list[int] | None = None) -> VersionMatrix:
    """The version matrix (of every service, or of those given), each cell saying whether an earlier package can be
    redeployed there."""
    matrix, redeployable = version_matrix(service_ids), redeployable_places(service_ids)
    rows = [
        VersionRow(
            service=row.service,
            cells=[
                RunningCell(
                    cell.environment,
                    cell.versions,
                    cell.ci_ids,
                    redeployable=(row.service.pk, cell.environment.pk) in redeployable,
                )
                for cell in row.cells
            ],
        )
        for row in matrix.rows
    ]
    return VersionMatrix(environments=matrix.environments, rows=rows)
