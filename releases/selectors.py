"""Reads of release governance: the questions pages, the API, the checklist and the engine ask."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from cmdb.models import ConfigurationItem, Service
from rdm_site.roles import Role
from releases.choices import (
    CHANGE_AUTHORISED_STATES,
    CHANGE_OPEN_STATES,
    REVIEW_OPEN_STATES,
    ChangeState,
    ChangeType,
    Decision,
    PackageState,
    ReleaseState,
    ReviewState,
)
from releases.models import (
    Approval,
    ChangeRecord,
    ChangeTemplate,
    FreezeOverride,
    FreezePeriod,
    GateEvidence,
    PostImplementationReview,
    Release,
    ReleasePackage,
    ReleasePolicy,
    ReleaseUnit,
    ReleaseWindow,
    ReviewActionItem,
    TestRun,
)
from releases.permissions import (
    APPROVE_ANY_RELEASE,
    APPROVE_CHANGE,
    APPROVE_EMERGENCY_CHANGE,
    APPROVE_RELEASE,
    ASSESS_CHANGE,
    DECIDE_REVIEW,
    VALIDATE_PACKAGE,
    WRITE_ANY_REVIEW,
    WRITE_REVIEW,
    role_names,
)


def _open_packages() -> Prefetch:
    return Prefetch(
        "packages",
        ReleasePackage.objects.exclude(state=PackageState.SUPERSEDED)
        .select_related("built_by")
        .order_by("-registered_at", "-id"),
        to_attr="open_packages",
    )


def release_current_package(release: Release) -> ReleasePackage | None:
    """The latest package that was not superseded (there is at most one: a database constraint says so).
    A list that read them with ``OPEN_PACKAGES`` pays no query here.
    """
    if hasattr(release, "open_packages"):
        return release.open_packages[0] if release.open_packages else None
    return (
        ReleasePackage.objects.filter(release=release)
        .exclude(state=PackageState.SUPERSEDED)
        .order_by("-registered_at", "-id")
        .first()
    )


def release_standard_preapproval(release: Release) -> ChangeRecord | None:
    """The release's authorised standard change from an active, pre-approved template, if any: continuous
    delivery, where the template's pre-approval stands for the plan's approval.
    """
    return (
        release.changes.filter(
            change_type=ChangeType.STANDARD, state__in=CHANGE_AUTHORISED_STATES, template__active=True
        )
        .exclude(template__approved_at=None)
        .select_related("template")
        .first()
    )


def release_active_approvals(release: Release, *, decision: Decision | None = Decision.APPROVED) -> QuerySet[Approval]:
    """Decisions on the release plan that still count (not withdrawn), oldest first."""
    approvals = Approval.objects.filter(release=release, withdrawn_at__isnull=True).select_related("approver")
    if decision is not None:
        approvals = approvals.filter(decision=decision)
    return approvals.order_by("decided_at", "id")


def change_active_approvals(change: ChangeRecord) -> QuerySet[Approval]:
    return Approval.objects.filter(change=change, withdrawn_at__isnull=True).select_related("approver")


def latest_test_runs(package: ReleasePackage) -> dict[str, TestRun]:
    """The latest run of each suite on the package (by run time, then by id), keyed by suite."""
    runs = TestRun.objects.filter(package=package).order_by("suite", "-run_at", "-id").distinct("suite")
    return {run.suite: run for run in runs}


def release_approver_candidates(release: Release) -> list[User]:
    """Who may decide on the release plan now: members of the policy's approver roles with the permission,
    Service Owners only for their own services, minus anyone segregation of duties rules out.
    """
    services = list(release.services.select_related("owner"))
    owner_ids = {service.owner_id for service in services}
    package = release_current_package(release)
    excluded = {release.release_manager_id, release.requested_by_id, package.built_by_id if package else None}
    users = (
        User.objects.filter(is_active=True, groups__name__in=release.policy.approver_roles)
        .exclude(pk__in=[pk for pk in excluded if pk])
        .distinct()
        .order_by("username")
    )
    candidates = []
    for user in users:
        if not user.has_perm(APPROVE_RELEASE):
            continue
        if user.has_perm(APPROVE_ANY_RELEASE) or user.pk in owner_ids:
            candidates.append(user)
    return candidates


def change_approver_candidates(change: ChangeRecord) -> list[User]:
    permission = APPROVE_EMERGENCY_CHANGE if change.change_type == ChangeType.EMERGENCY else APPROVE_CHANGE
    role = Role.EMERGENCY_APPROVER if change.change_type == ChangeType.EMERGENCY else Role.CHANGE_APPROVER
    users = User.objects.filter(is_active=True, groups__name=role).exclude(pk=change.requested_by_id).distinct()
    return [user for user in users.order_by("username") if user.has_perm(permission)]


def change_conflicts(change: ChangeRecord) -> QuerySet[ChangeRecord]:
    """Other open changes whose schedules overlap this one's on a shared service or CI (one query).

    Schedules are half-open, [start, end): one ending exactly when the other starts does not overlap.
    """
    through_services = ChangeRecord.services.through
    through_cis = ChangeRecord.configuration_items.through
    own_services = through_services.objects.filter(changerecord_id=change.pk).values("service_id")
    own_cis = through_cis.objects.filter(changerecord_id=change.pk).values("configurationitem_id")
    shares_service = through_services.objects.filter(changerecord_id=OuterRef("pk"), service_id__in=own_services)
    shares_ci = through_cis.objects.filter(changerecord_id=OuterRef("pk"), configurationitem_id__in=own_cis)
    return (
        ChangeRecord.objects.filter(
            state__in=CHANGE_OPEN_STATES,
            planned_start__lt=change.planned_end,
            planned_end__gt=change.planned_start,
        )
        .exclude(pk=change.pk)
        .filter(Q(Exists(shares_service)) | Q(Exists(shares_ci)))
        .order_by("planned_start", "id")
    )


def release_covering_changes(release: Release, at: datetime) -> QuerySet[ChangeRecord]:
    """The release's authorised changes (approved, scheduled or implementing) whose schedule covers ``at``."""
    return ChangeRecord.objects.filter(
        release=release, state__in=CHANGE_AUTHORISED_STATES, planned_start__lte=at, planned_end__gt=at
    ).order_by("planned_start", "id")


def windows_for_environment(environment) -> QuerySet[ReleaseWindow]:
    return ReleaseWindow.objects.filter(active=True, environments=environment).prefetch_related("services")


def freezes_at(services: Iterable, environment, at: datetime) -> QuerySet[FreezePeriod]:
    """Freeze periods in force at ``at`` for the environment and any of the services (empty scope = all)."""
    service_ids = [service.pk for service in services]
    through_services = FreezePeriod.services.through
    through_environments = FreezePeriod.environments.through
    any_service = through_services.objects.filter(freezeperiod_id=OuterRef("pk"))
    our_service = any_service.filter(service_id__in=service_ids)
    any_environment = through_environments.objects.filter(freezeperiod_id=OuterRef("pk"))
    our_environment = any_environment.filter(environment_id=environment.pk)
    return (
        FreezePeriod.objects.filter(start__lte=at, end__gt=at)
        .filter(~Exists(any_service) | Exists(our_service))
        .filter(~Exists(any_environment) | Exists(our_environment))
        .order_by("start", "id")
    )


def change_freezes(change: ChangeRecord) -> QuerySet[FreezePeriod]:
    """Freeze periods overlapping the change's schedule on its services (or its CIs' services); a freeze
    naming no service covers them all.
    """
    service_ids = {service.pk for service in change.services.all()}
    service_ids |= {ci.service_id for ci in change.configuration_items.all() if ci.service_id}
    through_services = FreezePeriod.services.through
    any_service = through_services.objects.filter(freezeperiod_id=OuterRef("pk"))
    our_service = any_service.filter(service_id__in=service_ids)
    return (
        FreezePeriod.objects.filter(start__lt=change.planned_end, end__gt=change.planned_start)
        .filter(~Exists(any_service) | Exists(our_service))
        .order_by("start", "id")
    )


def freeze_overrides_for(change: ChangeRecord) -> QuerySet[FreezeOverride]:
    return FreezeOverride.objects.filter(change=change).select_related("granted_by", "freeze")


def releases_for_user(user: User) -> QuerySet[Release]:
    """Every role reads everything (DESIGN.md); kept as the one place per-user visibility would go."""
    return Release.objects.select_related("policy", "release_manager")


# --- collections, eager loaded (the API and the browser lists) ------------------------------------


def _count_of(model, field: str, **conditions) -> Coalesce:
    """How many ``model`` rows point at the outer row through ``field``: a subquery, so counts never multiply."""
    rows = model.objects.filter(**{field: OuterRef("pk")}, **conditions).order_by().values(field)
    return Coalesce(Subquery(rows.annotate(n=Count("pk")).values("n"), output_field=IntegerField()), 0)


def policies_list() -> QuerySet[ReleasePolicy]:
    return ReleasePolicy.objects.order_by("name")


def windows_list() -> QuerySet[ReleaseWindow]:
    return ReleaseWindow.objects.prefetch_related("services", "environments").order_by("name")


def freezes_list() -> QuerySet[FreezePeriod]:
    return (
        FreezePeriod.objects.select_related("created_by")
        .prefetch_related("services", "environments")
        .order_by("-start", "id")
    )


def freeze_overrides_list() -> QuerySet[FreezeOverride]:
    return FreezeOverride.objects.select_related("change", "freeze", "granted_by").order_by("-granted_at", "id")


def _release_figures() -> dict:
    """The current package and how many packages, changes and approvals that still count, per release."""
    current = ReleasePackage.objects.filter(release=OuterRef("pk")).exclude(state=PackageState.SUPERSEDED)
    return {
        "current_package_id": Subquery(current.order_by("-registered_at", "-id").values("pk")[:1]),
        "packages_count": _count_of(ReleasePackage, "release"),
        "changes_count": _count_of(ChangeRecord, "release"),
        "approvals_count": _count_of(Approval, "release", withdrawn_at__isnull=True, decision=Decision.APPROVED),
    }


def releases_list() -> QuerySet:
    """Releases as lists show them: one row (a dict) per release with its service ids, people by username and its
    figures, all in one query. Rows, not model instances: the busiest list pays for no object it does not show.
    """
    services = Release.services.through.objects.filter(release_id=OuterRef("pk")).order_by("service_id")
    return (
        Release.objects.annotate(
            **_release_figures(),
            service_ids=ArraySubquery(services.values("service_id")),
            release_manager_username=F("release_manager__username"),
            requested_by_username=F("requested_by__username"),
        )
        .values(
            "id",
            "name",
            "version",
            "release_type",
            "policy",
            "planned_start",
            "planned_end",
            "state",
            "created",
            "updated",
            "current_package_id",
            "packages_count",
            "changes_count",
            "approvals_count",
            "service_ids",
            "release_manager_username",
            "requested_by_username",
        )
        .order_by("-created", "-id")
    )


def release_details() -> QuerySet[Release]:
    """One release with everything its page shows: units and their CIs, rollback plan, evidence, ELS staff."""
    return (
        Release.objects.select_related("policy", "release_manager", "requested_by", "rollback_plan")
        .prefetch_related(
            "services",
            "els_staff",
            Prefetch("units", ReleaseUnit.objects.prefetch_related("configuration_items").order_by("name")),
            Prefetch("gate_evidence", GateEvidence.objects.select_related("recorded_by", "verified_by").order_by("id")),
        )
        .annotate(**_release_figures())
    )


def packages_list() -> QuerySet[ReleasePackage]:
    return (
        ReleasePackage.objects.select_related("release", "built_by", "validated_by", "rejected_by")
        .prefetch_related("artifacts")
        .order_by("-registered_at", "-id")
    )


def test_runs_list() -> QuerySet[TestRun]:
    return TestRun.objects.select_related("package", "recorded_by").order_by("-run_at", "-id")


def changes_list() -> QuerySet[ChangeRecord]:
    return (
        ChangeRecord.objects.select_related("template", "requested_by", "release")
        .prefetch_related("services", "configuration_items")
        .order_by("-planned_start", "-id")
    )


def change_templates_list() -> QuerySet[ChangeTemplate]:
    return (
        ChangeTemplate.objects.select_related("created_by", "approved_by").prefetch_related("services").order_by("name")
    )


def approvals_list() -> QuerySet[Approval]:
    return Approval.objects.select_related("approver", "release", "change").order_by("-decided_at", "-id")


# --- release and package pages (the browser) --------------------------------------------------------


def releases_table() -> QuerySet[Release]:
    """Releases as the browser's list shows them: people and services eager loaded, the current package's
    state and the approvals that count annotated (a constant number of queries per page).
    """
    current = ReleasePackage.objects.filter(release=OuterRef("pk")).exclude(state=PackageState.SUPERSEDED)
    return (
        Release.objects.select_related("release_manager", "policy")
        .prefetch_related("services")
        .annotate(
            current_package_state=Subquery(current.order_by("-registered_at", "-id").values("state")[:1]),
            approvals_count=_count_of(Approval, "release", withdrawn_at__isnull=True, decision=Decision.APPROVED),
        )
        .order_by("-created", "-id")
    )


def release_decisions(release: Release) -> QuerySet[Approval]:
    """Every decision on the release plan, withdrawn ones included (the page strikes them through), oldest first."""
    return Approval.objects.filter(release=release).select_related("approver").order_by("decided_at", "id")


def package_details() -> QuerySet[ReleasePackage]:
    """Packages with what their page shows: artifacts, test runs (newest first) and the people involved."""
    return ReleasePackage.objects.select_related(
        "release", "built_by", "validated_by", "rejected_by", "superseded_by"
    ).prefetch_related(
        "artifacts", Prefetch("test_runs", TestRun.objects.select_related("recorded_by").order_by("suite", "-run_at"))
    )


def releases_awaiting_decision_by(user: User) -> QuerySet[Release]:
    """Submitted releases ``user`` may approve or reject now and has not decided on yet, soonest planned first.
    The release rule table's decider (``releases.actions``: the permission, a role the policy lists, ownership
    for Service Owners, segregation of duties) said in SQL, so the list can be counted and cut in the database;
    a test holds it to the rule table record by record.
    """
    if not user.is_authenticated or not user.has_perm(APPROVE_RELEASE):
        return Release.objects.none()
    roles = sorted(role_names(user))
    if not roles:
        return Release.objects.none()  # the policy lets only roles it lists approve
    decided = Approval.objects.filter(release=OuterRef("pk"), approver=user, withdrawn_at__isnull=True)
    built_by_user = ReleasePackage.objects.filter(release=OuterRef("pk"), built_by=user).exclude(
        state=PackageState.SUPERSEDED  # the current package: the only one not superseded
    )
    submitted = (
        Release.objects.filter(state=ReleaseState.SUBMITTED, policy__approver_roles__has_any_keys=roles)
        .exclude(Exists(decided))
        .exclude(release_manager=user)
        .exclude(requested_by=user)
        .exclude(Exists(built_by_user))
    )
    if not user.has_perm(APPROVE_ANY_RELEASE):
        owned = Release.services.through.objects.filter(release_id=OuterRef("pk"), service__owner=user)
        submitted = submitted.filter(Exists(owned))
    return (
        submitted.select_related("policy", "release_manager", "requested_by")
        .prefetch_related(Prefetch("services", Service.objects.select_related("owner")), _open_packages())
        .order_by("planned_start", "id")
    )


# --- change pages and the approvers' queue (the browser) -------------------------------------------


def _conflicting_changes() -> QuerySet[ChangeRecord]:
    """Other open changes overlapping the outer change in time on a shared service or CI (as a subquery of
    a change queryset: ``change_conflicts`` for many changes at once).
    """
    shares_service = ChangeRecord.services.through.objects.filter(
        changerecord_id=OuterRef("pk"), service__changes=OuterRef(OuterRef("pk"))
    )
    shares_ci = ChangeRecord.configuration_items.through.objects.filter(
        changerecord_id=OuterRef("pk"), configurationitem__changes=OuterRef(OuterRef("pk"))
    )
    return (
        ChangeRecord.objects.filter(
            state__in=CHANGE_OPEN_STATES,
            planned_start__lt=OuterRef("planned_end"),
            planned_end__gt=OuterRef("planned_start"),
        )
        .exclude(pk=OuterRef("pk"))
        .filter(Q(Exists(shares_service)) | Q(Exists(shares_ci)))
        .order_by("planned_start", "id")
    )


def changes_table() -> QuerySet[ChangeRecord]:
    """Changes as the browser's lists show them: services eager loaded, the numbers of the changes each one
    conflicts with annotated (a constant number of queries per page).
    """
    return with_conflicts(changes_list())


def with_conflicts(changes: QuerySet[ChangeRecord]) -> QuerySet[ChangeRecord]:
    """``changes`` with the numbers of the changes each one conflicts with (``conflict_numbers``), in the same
    query."""
    return changes.annotate(conflict_numbers=ArraySubquery(_conflicting_changes().values("number")))


def change_details() -> QuerySet[ChangeRecord]:
    """One change with what its page shows: people, template, release, services and CIs."""
    cis = ConfigurationItem.objects.select_related("environment").order_by("name")
    return ChangeRecord.objects.select_related(
        "template", "template__approved_by", "requested_by", "release", "release__policy"
    ).prefetch_related("services", Prefetch("configuration_items", cis))


@dataclass(frozen=True)
class ChangeConflict:
    """Another change overlapping this one: when both run, and the services and CIs both touch."""

    change: ChangeRecord
    overlap_start: datetime
    overlap_end: datetime
    services: list
    configuration_items: list


def change_conflict_details(change: ChangeRecord) -> list[ChangeConflict]:
    """``change_conflicts`` with what overlaps: the shared time span, services and CIs of each."""
    own_services = set(change.services.all())
    own_cis = set(change.configuration_items.all())
    others = change_conflicts(change).prefetch_related("services", "configuration_items")
    return [
        ChangeConflict(
            change=other,
            overlap_start=max(other.planned_start, change.planned_start),
            overlap_end=min(other.planned_end, change.planned_end),
            services=sorted((set(other.services.all()) & own_services), key=str),
            configuration_items=sorted((set(other.configuration_items.all()) & own_cis), key=str),
        )
        for other in others
    ]


def change_decisions(change: ChangeRecord) -> QuerySet[Approval]:
    """Every decision on the change, withdrawn ones included (the page strikes them through), oldest first."""
    return Approval.objects.filter(change=change).select_related("approver").order_by("decided_at", "id")


def changes_awaiting_decision() -> QuerySet[ChangeRecord]:
    """Assessed changes waiting for the (emergency) CAB's decision, soonest first (the queue adds their services,
    CIs and conflicts: ``changes_queued``)."""
    return (
        ChangeRecord.objects.filter(state=ChangeState.ASSESSED)
        .select_related("requested_by")
        .order_by("planned_start", "id")
    )


def changes_awaiting_decision_by(user: User) -> QuerySet[ChangeRecord]:
    """Assessed changes ``user`` may approve or reject now, soonest first: the change rule table's decider in
    SQL (Change Approvers for normal changes, Emergency Approvers for emergency ones, never the requester),
    held to the rule table by a test.
    """
    if not user.is_authenticated:
        return ChangeRecord.objects.none()
    decidable = Q()
    if user.has_perm(APPROVE_EMERGENCY_CHANGE):
        decidable |= Q(change_type=ChangeType.EMERGENCY)
    if user.has_perm(APPROVE_CHANGE):
        decidable |= ~Q(change_type=ChangeType.EMERGENCY)
    if not decidable:
        return ChangeRecord.objects.none()
    return changes_awaiting_decision().filter(decidable).exclude(requested_by=user)


def changes_awaiting_assessment_by(user: User) -> QuerySet[ChangeRecord]:
    """Submitted changes ``user`` may assess now (the change rule table: whoever holds the permission),
    soonest first.
    """
    if not user.is_authenticated or not user.has_perm(ASSESS_CHANGE):
        return ChangeRecord.objects.none()
    return (
        ChangeRecord.objects.filter(state=ChangeState.SUBMITTED)
        .select_related("requested_by")
        .order_by("planned_start", "id")
    )


def changes_queued(changes: QuerySet[ChangeRecord]) -> list[ChangeRecord]:
    """Waiting changes as the approvers' queue shows them: with their services and CIs, and their conflicts."""
    return list(with_conflicts(changes.prefetch_related("services", "configuration_items")))


def packages_awaiting_validation_by(user: User) -> QuerySet[ReleasePackage]:
    """Built packages ``user`` may validate, oldest first: the package rule table's validator in SQL (the
    permission, never one's own build), held to the rule table by a test.
    """
    if not user.is_authenticated or not user.has_perm(VALIDATE_PACKAGE):
        return ReleasePackage.objects.none()
    return (
        ReleasePackage.objects.filter(state=PackageState.BUILT)
        .exclude(built_by=user)
        .select_related("release", "built_by")
        .order_by("registered_at", "id")
    )


def reviews_to_write_by(user: User) -> QuerySet[PostImplementationReview]:
    """Open reviews ``user`` may write, the soonest due first: the review rule table's writer in SQL (the
    permission, and a service of the release they own unless they may write any review).
    """
    if not user.is_authenticated or not user.has_perm(WRITE_REVIEW):
        return PostImplementationReview.objects.none()
    reviews = PostImplementationReview.objects.filter(state__in=REVIEW_OPEN_STATES)
    if not user.has_perm(WRITE_ANY_REVIEW):
        owned = Release.services.through.objects.filter(release_id=OuterRef("release_id"), service__owner=user)
        reviews = reviews.filter(Exists(owned))
    return _reviews_shown(reviews)


def reviews_awaiting_decision_by(user: User) -> QuerySet[PostImplementationReview]:
    """Submitted reviews ``user`` may accept or return (the permission, never one they submitted), the soonest
    due first.
    """
    if not user.is_authenticated or not user.has_perm(DECIDE_REVIEW):
        return PostImplementationReview.objects.none()
    submitted = PostImplementationReview.objects.filter(state=ReviewState.SUBMITTED).exclude(submitted_by=user)
    return _reviews_shown(submitted)


def _reviews_shown(reviews: QuerySet[PostImplementationReview]) -> QuerySet[PostImplementationReview]:
    return (
        reviews.select_related("release", "service", "owner", "submitted_by")
        .prefetch_related("release__services")
        .order_by("due_on", "id")
    )


# --- post-implementation reviews (the browser) -------------------------------------------------------


def reviews_table() -> QuerySet[PostImplementationReview]:
    """Reviews as the browser's list shows them, the soonest due first."""
    return PostImplementationReview.objects.select_related("release", "service", "owner").order_by("due_on", "id")


def review_details() -> QuerySet[PostImplementationReview]:
    """One review with its people, action items and the knowledge articles its lessons became."""
    return PostImplementationReview.objects.select_related(
        "release", "service", "owner", "submitted_by", "decided_by"
    ).prefetch_related(
        Prefetch("action_items", ReviewActionItem.objects.select_related("owner")),
        "knowledge_articles",
    )
