"""Early Life Support: every write about an ELS period, the evaluation of its exit criteria, and what it tells
whom.

A production deployment of a release that succeeds opens a period and starts it (``els_open``, ``els_start``,
from the engine's ``on_production_success``): the release's ELS plan (or its policy's defaults) gives the staff, the
exit criteria, the minimum duration, and the policy's ELS duration the planned end; the release moves to
``early_life_support``. People extend it (a reason and a later end), withdraw an extension, and exit it when
every criterion holds; the release then moves to ``in_review`` once its last running period exits. A beat task
evaluates the running periods and offers the exit to the staff once (``els_exits_offer``): it never exits by
itself. A P1 or P2 incident tied to a running period alerts its staff and the Deployment Managers; a P1 also
offers the rollback of the deployment to the previous package. A rollback that succeeds ends the period
(``els_end_by_rollback``).

Who may: DESIGN.md's "start, extend, exit ELS": the holders of ``releases.manage_els`` for releases of services
they own (Service Owners), ``releases.manage_any_els`` for any (Deployment Managers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Case, F, Func, IntegerField, OuterRef, Q, QuerySet, Subquery, When

from deployments.choices import (
    ELS_RUNNING_STATES,
    INCIDENT_OPEN_STATES,
    DeploymentNotice,
    DeploymentState,
    ElsCriterion,
    ElsState,
    ElsTransition,
    IncidentSeverity,
)
from deployments.models import Deployment, EarlyLifeSupport, Incident
from deployments.selectors import last_good_package
from rdm_site.actions import ActionRule, action_ensure, actions_available
from rdm_site.domain import apply_transition, bounded_text, ensure_conditions, locked, now, require_text, save
from rdm_site.exceptions import InvalidInput
from rdm_site.notifications import notification_send
from rdm_site.roles import Role
from rdm_site.transitions import transition_record
from releases import permissions as release_perms

SERIOUS = (IncidentSeverity.P1, IncidentSeverity.P2)


def _manages_els(els: EarlyLifeSupport, actor: User | None, attempt: str) -> list[str | None]:
    problem = release_perms.permission_problem(actor, release_perms.MANAGE_ELS, attempt)
    if problem:
        return [problem]
    services = els.release.services.all()  # with their owners when read by ``els_list``
    return [release_perms.ownership_problem(actor, services, release_perms.MANAGE_ANY_ELS, attempt)]


ELS_ACTIONS = {
    ElsTransition.START: ActionRule(_manages_els, "start {record}", transition=ElsTransition.START),
    ElsTransition.EXTEND: ActionRule(_manages_els, "extend {record}", transition=ElsTransition.EXTEND),
    ElsTransition.WITHDRAW_EXTENSION: ActionRule(
        _manages_els, "withdraw the extension of {record}", transition=ElsTransition.WITHDRAW_EXTENSION
    ),
    ElsTransition.EXIT: ActionRule(_manages_els, "exit {record}", transition=ElsTransition.EXIT),
}


def els_available_actions(els: EarlyLifeSupport, actor: User | None) -> list[str]:
    """What ``actor`` may do to the period now (the buttons to show); exit is offered, conditions permitting."""
    return actions_available(ELS_ACTIONS, els, actor)


# --- reads ----------------------------------------------------------------------------------------------------


def els_incidents(els: EarlyLifeSupport) -> QuerySet[Incident]:
    """The incidents that count against the period: tied to its deployment (named or correlated) or its release."""
    return Incident.objects.filter(Q(deployment=els.deployment_id) | Q(release=els.release_id))


@dataclass(frozen=True)
class CriterionResult:
    """One exit criterion: whether it holds, the figure found and the limit it is held to."""

    code: str
    label: str
    met: bool
    figure: str
    limit: str

    def __str__(self) -> str:
        return f"{self.label}: {self.figure} (limit {self.limit})"


def els_criteria_evaluate(els: EarlyLifeSupport, at: datetime | None = None) -> list[CriterionResult]:
    """Each exit criterion of the period, met or not, with its figures (a read; nothing changes).

    Known counts: ``max_open_p1_p2`` (unresolved P1/P2 incidents) and ``max_incidents`` (incidents opened since
    the period started); and the minimum duration. Other keys of the plan are not evaluated.
    """
    at = at or now()
    results = []
    criteria = els.exit_criteria or {}
    if ElsCriterion.MAX_OPEN_P1_P2 in criteria:
        limit = criteria[ElsCriterion.MAX_OPEN_P1_P2]
        count = _open_serious_count(els)
        results.append(
            CriterionResult(ElsCriterion.MAX_OPEN_P1_P2, "open P1/P2 incidents", count <= limit, str(count), str(limit))
        )
    if ElsCriterion.MAX_INCIDENTS in criteria:
        limit = criteria[ElsCriterion.MAX_INCIDENTS]
        count = _incidents_since_start_count(els, at)
        results.append(
            CriterionResult(ElsCriterion.MAX_INCIDENTS, "incidents during ELS", count <= limit, str(count), str(limit))
        )
    earliest = (els.started_at or at) + timedelta(days=els.min_duration_days)
    results.append(
        CriterionResult(
            ElsCriterion.MIN_DURATION,
            "minimum duration",
            at >= earliest,
            f"{(at - (els.started_at or at)).total_seconds() / 86400:.1f} day(s) so far",
            f"{els.min_duration_days} day(s), from {earliest:%Y-%m-%d %H:%M %Z}",
        )
    )
    return results


def _open_serious_count(els: EarlyLifeSupport) -> int:
    if hasattr(els, "open_p1"):  # counted by ``els_board``
        return els.open_p1 + els.open_p2
    return els_incidents(els).filter(state__in=INCIDENT_OPEN_STATES, severity__in=SERIOUS).count()


def _incidents_since_start_count(els: EarlyLifeSupport, at: datetime) -> int:
    if hasattr(els, "incidents_since_start"):  # counted by ``els_board``
        return els.incidents_since_start
    return els_incidents(els).filter(opened_at__gte=els.started_at or at).count()


def els_list() -> QuerySet[EarlyLifeSupport]:
    """Periods with what their rows show: the release and its services' owners, the deployment, the staff."""
    return EarlyLifeSupport.objects.select_related(
        "release", "deployment__service", "deployment__environment"
    ).prefetch_related("staff", "release__services__owner")


def _incident_count(**conditions) -> Subquery:
    """How many incidents count against each period (as ``els_incidents`` ties them) and meet ``conditions``."""
    counted = Incident.objects.filter(Q(deployment=OuterRef("deployment")) | Q(release=OuterRef("release")))
    counted = counted.filter(**conditions).order_by().annotate(count=Func(F("pk"), function="COUNT"))
    return Subquery(counted.values("count"), output_field=IntegerField())


def els_board() -> QuerySet[EarlyLifeSupport]:
    """Periods as the ELS board shows them: running ones first, then scheduled, then exited, soonest end
    first; each with its open incidents by severity (``open_p1`` … ``open_p4``) and those opened since it
    started (``incidents_since_start``), so that its criteria cost no query of their own."""
    by_severity = {
        f"open_{severity}": _incident_count(state__in=INCIDENT_OPEN_STATES, severity=severity)
        for severity in IncidentSeverity.values
    }
    rank = Case(When(state__in=ELS_RUNNING_STATES, then=0), When(state=ElsState.SCHEDULED, then=1), default=2)
    return (
        els_list()
        .annotate(
            **by_severity,
            incidents_since_start=_incident_count(opened_at__gte=OuterRef("started_at")),
            rank=rank,
        )
        .order_by("rank", F("planned_end").asc(nulls_last=True), "-created", "-id")
    )


# --- writes ---------------------------------------------------------------------------------------------------


def _move(els: EarlyLifeSupport, transition: str, actor: User | None, reason: str, changes=None, **arguments) -> None:
    """Move the locked period (the caller checked who may), save it and record the transition."""
    before, after = apply_transition(els, transition, **arguments)
    save(els)
    transition_record(
        actor=actor,
        target=els,
        action=f"els.{transition}",
        from_state=before,
        to_state=after,
        reason=reason,
        changes=changes,
    )


def _staff_and_managers(els: EarlyLifeSupport) -> list[User]:
    return [*els.staff.all(), *[user for user in (els.release.release_manager,) if user]]


@transaction.atomic
def els_open(*, deployment: Deployment) -> EarlyLifeSupport:
    """A production deployment of a release succeeded: its ELS period is scheduled (RDM acting; once)."""
    els, created = EarlyLifeSupport.objects.get_or_create(
        deployment=deployment, defaults={"release": deployment.package.release}
    )
    if created:
        transition_record(actor=None, target=els, action="els.create", to_state=els.state, reason=str(deployment))
    return els


@transaction.atomic
def els_start(*, els: EarlyLifeSupport, actor: User | None, reason: str = "") -> EarlyLifeSupport:
    """Put the staff on duty with the plan in force now; the release moves to early life support."""
    from releases.checklist import els_plan
    from releases.choices import ReleaseState
    from releases.services import release_els_start

    els = locked(els)
    action_ensure(ELS_ACTIONS, ElsTransition.START, els, actor)
    staff, criteria, minimum, defaults = els_plan(els.release)
    ensure_conditions(
        f"{els} cannot start",
        [problem for problem, missing in (("no ELS staff", not staff), ("no exit criteria", not criteria)) if missing],
    )
    els.exit_criteria, els.min_duration_days = dict(criteria), minimum
    planned_end = now() + timedelta(days=max(els.release.policy.els_duration_days, minimum))
    note = f" (defaults — {'; '.join(defaults)})" if defaults else ""
    _move(
        els,
        ElsTransition.START,
        actor,
        bounded_text(reason, "the reason") or f"planned end {planned_end:%Y-%m-%d %H:%M %Z}{note}",
        planned_end=planned_end,
    )
    els.staff.set(staff)
    release = locked(els.release)
    if release.state == ReleaseState.DEPLOYED:
        release_els_start(release=release, actor=actor)
    names = ", ".join(user.get_username() for user in staff)
    notification_send(
        recipients=_staff_and_managers(els),
        kind=DeploymentNotice.ELS_STARTED,
        subject=f"Early life support of {els.release} started",
        body=(
            f"{els.deployment} succeeded. On duty until {planned_end:%Y-%m-%d %H:%M %Z}: {names}.\n"
            f"Exit criteria: {_criteria_text(els)}; at least {minimum} day(s)."
        ),
        target=els,
        actor=actor,
    )
    return els


def _criteria_text(els: EarlyLifeSupport) -> str:
    return ", ".join(f"{key} ≤ {value}" for key, value in sorted(els.exit_criteria.items())) or "none"


@transaction.atomic
def els_extend(*, els: EarlyLifeSupport, actor: User | None, reason: str, new_end: datetime) -> EarlyLifeSupport:
    """Keep watching longer: a reason, and a planned end later than the current one."""
    reason = require_text(reason, "the reason for the extension")
    els = locked(els)
    action_ensure(ELS_ACTIONS, ElsTransition.EXTEND, els, actor)
    if els.planned_end and new_end <= els.planned_end:
        raise InvalidInput(
            f"The new end must be later than the current one ({els.planned_end:%Y-%m-%d %H:%M %Z}).",
            ["new_end: later than the current planned end"],
        )
    changes = {"planned_end": [_iso(els.planned_end), _iso(new_end)]}
    _move(els, ElsTransition.EXTEND, actor, reason, changes=changes, new_end=new_end)
    return els


@transaction.atomic
def els_extension_withdraw(*, els: EarlyLifeSupport, actor: User | None, reason: str = "") -> EarlyLifeSupport:
    """The extra watch is not needed after all: back to the originally planned end."""
    els = locked(els)
    action_ensure(ELS_ACTIONS, ElsTransition.WITHDRAW_EXTENSION, els, actor)
    changes = {"planned_end": [_iso(els.planned_end), _iso(els.original_end)]}
    _move(els, ElsTransition.WITHDRAW_EXTENSION, actor, bounded_text(reason, "the reason"), changes=changes)
    return els


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@transaction.atomic
def els_exit(*, els: EarlyLifeSupport, actor: User | None, reason: str = "") -> EarlyLifeSupport:
    """End the watch when every exit criterion holds (each unmet one is listed); the release moves to review
    once none of its periods is still running."""
    from releases.choices import ReleaseState
    from releases.services import release_review_start

    reason = bounded_text(reason, "the reason") or "the exit criteria hold"
    els = locked(els)
    action_ensure(ELS_ACTIONS, ElsTransition.EXIT, els, actor)
    unmet = [str(result) for result in els_criteria_evaluate(els) if not result.met]
    ensure_conditions(f"{els} cannot exit", unmet)
    _move(els, ElsTransition.EXIT, actor, reason)
    release = locked(els.release)
    still_running = release.els_periods.filter(state__in=ELS_RUNNING_STATES).exists()
    if release.state == ReleaseState.EARLY_LIFE_SUPPORT and not still_running:
        release_review_start(release=release, actor=actor, reason=reason)
    review = "" if still_running else f"\nThe post-implementation review of {els.release} falls due."
    notification_send(
        recipients=_staff_and_managers(els),
        kind=DeploymentNotice.ELS_EXITED,
        subject=f"Early life support of {els.release} exited",
        body=f"Why: {reason}{review}",
        target=els,
        actor=actor,
    )
    return els


@transaction.atomic
def els_end_by_rollback(*, deployment: Deployment, reason: str) -> EarlyLifeSupport | None:
    """``deployment`` was rolled back by redeploying an earlier package: the watch over a version that no longer
    runs ends now, whatever its criteria say (RDM acting), and its staff hear of it. Its release was rolled back,
    so it does not move to review; a period not started yet stays as it is."""
    els = EarlyLifeSupport.objects.filter(deployment=deployment, state__in=ELS_RUNNING_STATES).first()
    if els is None:
        return None
    els = locked(els)
    _move(els, ElsTransition.EXIT, None, reason)
    notification_send(
        recipients=_staff_and_managers(els),
        kind=DeploymentNotice.ELS_EXITED,
        subject=f"Early life support of {els.release} ended: the release was rolled back",
        body=f"Why: {reason}",
        target=els,
    )
    return els


# --- the beat: offer the exit once ------------------------------------------------------------------------------


@transaction.atomic
def els_exit_offer(*, els: EarlyLifeSupport) -> bool:
    """Tell the staff and service owners, once, that the period may exit: every criterion holds and, for an
    extended period, its new end has come. Nothing exits by itself. True when the offer was sent now."""
    els = locked(els)
    if not els.is_running or els.exit_offered_at is not None:
        return False
    at = now()
    if els.state == ElsState.EXTENDED and els.planned_end and at < els.planned_end:
        return False
    results = els_criteria_evaluate(els, at)
    if not all(result.met for result in results):
        return False
    els.exit_offered_at = at
    save(els, update_fields=["exit_offered_at", "updated"])
    owners = [service.owner for service in els.release.services.select_related("owner")]
    transition_record(actor=None, target=els, action="els.offer_exit", reason="every exit criterion holds")
    notification_send(
        recipients=[*els.staff.all(), *owners],
        kind=DeploymentNotice.ELS_EXIT_OFFERED,
        subject=f"Early life support of {els.release} may exit",
        body="Every exit criterion holds:\n" + "\n".join(f"- {result}" for result in results),
        target=els,
    )
    return True


def els_exits_offer() -> int:
    """Evaluate every running period and offer the exits that came due (the beat task); the number offered."""
    pending = EarlyLifeSupport.objects.filter(state__in=ELS_RUNNING_STATES, exit_offered_at__isnull=True)
    return sum(els_exit_offer(els=els) for els in pending.only("pk"))


# --- serious incidents during ELS -------------------------------------------------------------------------------


def els_running_for(incident: Incident) -> list[EarlyLifeSupport]:
    """The running periods an incident counts against."""
    linked = Q()
    if incident.deployment_id:
        linked |= Q(deployment=incident.deployment_id)
    if incident.release_id:
        linked |= Q(release=incident.release_id)
    return list(els_list().filter(linked, state__in=ELS_RUNNING_STATES)) if linked else []


def previous_package_redeploy_link(deployment: Deployment) -> str:
    """Where a Deployment Manager rolls ``deployment`` back to the package that ran before it (the rollback form
    on its page, ``deployments.redeploy``), or "" when no earlier package succeeded there."""
    if deployment.state != DeploymentState.SUCCEEDED or last_good_package(deployment) is None:
        return ""
    return f"{deployment.get_absolute_url()}#rollout-controls"


def els_incident_alert(incident: Incident) -> None:
    """A P1 or P2 during ELS: the staff and the Deployment Managers hear of it; for a P1 the message offers the
    rollback of the deployment to the previous package."""
    if incident.severity not in SERIOUS:
        return
    managers = User.objects.filter(groups__name=Role.DEPLOYMENT_MANAGER, is_active=True)
    for els in els_running_for(incident):
        deployment = els.deployment
        recipients = [*els.staff.all(), *managers, *[user for user in (deployment.requested_by,) if user]]
        body = [f"{incident} was opened during the early life support of {els.release} ({deployment})."]
        link = ""
        if incident.severity == IncidentSeverity.P1:
            link = previous_package_redeploy_link(deployment)
            body.append(
                f"To go back, a Deployment Manager rolls {deployment} back to the previous package at {link}."
                if link
                else "No earlier package ran in this environment: there is nothing to go back to; fix forward."
            )
        notification_send(
            recipients=recipients,
            kind=DeploymentNotice.ELS_INCIDENT,
            subject=f"{incident.get_severity_display()} during early life support of {els.release}",
            body="\n".join(body),
            target=incident,
            link=link,
        )
