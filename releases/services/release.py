"""The release lifecycle: creating and editing the plan, planning, submitting, and following the
production deployment. Decisions on the plan are in ``approval``, early life support in ``els``.

Every service is one transaction: it re-reads the release under a row lock, checks who may and that the
state machine allows the move (the rule table in ``releases.actions``), evaluates every condition and
reports all unmet ones at once, moves the state, saves, and writes the transition record. Notifications
are written in the transaction and e-mailed after commit (``notification_send``).

``actor`` is the user acting, or None when RDM acts on its own authority (the deployment engine).
"""

from collections.abc import Iterable
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import transaction

from cmdb.choices import EnvironmentTier
from rdm_site.actions import action_ensure
from rdm_site.changes import apply_changes
from rdm_site.domain import (
    bounded_text,
    ensure_allowed,
    ensure_conditions,
    locked,
    now,
    require_text,
    save,
    validated,
)
from rdm_site.notifications import notification_send
from rdm_site.transitions import transition_record
from releases import permissions as perms
from releases.actions import RELEASE_ACTIONS
from releases.checklist import Checklist, checklist_evaluate
from releases.choices import BaselineKind, ReleaseTransition, ReviewState
from releases.exceptions import InvalidInput
from releases.models import PostImplementationReview, Release, ReleasePolicy, ReleaseUnit
from releases.selectors import release_approver_candidates, release_standard_preapproval
from releases.services._state import state_move
from releases.services.approval import APPROVAL_AWAITED, approvals_withdraw
from releases.services.package import release_unit_add, release_unit_remove, release_unit_update, unit_save

# Edits that change what approvers approved: making one withdraws their approvals.
SIGNIFICANT_FIELDS = ("planned_start", "planned_end", "services")
EDITABLE_FIELDS = (
    "name",
    "version",
    "description",
    "release_notes",
    "planned_start",
    "planned_end",
    "release_manager",
    "services",
    "els_staff",
    "els_exit_criteria",
    "els_min_duration_days",
)


# --- creating and editing -------------------------------------------------------------------------


@transaction.atomic
def release_create(
    *,
    actor: User | None,
    name: str,
    version: str,
    policy: ReleasePolicy,
    services: Iterable,
    release_type: str | None = None,
    planned_start=None,
    planned_end=None,
    description: str = "",
    release_manager: User | None = None,
    els_exit_criteria: dict | None = None,
    els_min_duration_days: int | None = None,
    els_staff: Iterable[User] = (),
    release_notes: str = "",
    units: Iterable[dict] = (),
) -> Release:
    """Start a release plan in draft; its manager defaults to whoever creates it. The ELS plan parts left
    empty fall back to the policy's defaults. ``units`` (each the keyword arguments of ``release_unit_add``:
    name, kind, the CIs it changes…) are part of the plan, created with it or not at all.
    """
    ensure_allowed(perms.permission_problem(actor, perms.ADD_RELEASE, f"create release {name} {version}"))
    release_type = release_type or policy.release_type
    if policy.release_type != release_type:
        raise InvalidInput(f"Policy {policy} governs {policy.release_type} releases, not {release_type} ones.")
    manager = release_manager or actor
    if manager is None:
        raise InvalidInput("Name the release manager.")
    release = Release(
        name=name,
        version=version,
        release_type=release_type,
        policy=policy,
        planned_start=planned_start,
        planned_end=planned_end,
        description=description,
        release_notes=release_notes,
        release_manager=manager,
        requested_by=actor,
        els_exit_criteria=els_exit_criteria or {},
        els_min_duration_days=els_min_duration_days,
    )
    validated(release)
    release.save()
    release.services.set(list(services))
    release.els_staff.set(list(els_staff))
    transition_record(actor=actor, action="release.create", target=release, to_state=release.state)
    for unit in units:
        unit_save(release=release, actor=actor, **unit)
    return release


@transaction.atomic
def release_update(*, release: Release, actor: User | None, data: dict) -> Release:
    """Edit the plan before its deployment. An edit to what approvers approved (dates, services) withdraws
    their approvals, visibly, and sends an approved release back to approval.
    """
    release = locked(release)
    action_ensure(RELEASE_ACTIONS, "update", release, actor)
    changes = apply_changes(release, data, EDITABLE_FIELDS)
    if not changes:
        return release
    validated(release)
    save(release)
    transition_record(actor=actor, action="release.update", target=release, changes=changes)
    significant = sorted(set(changes) & set(SIGNIFICANT_FIELDS))
    if significant:
        approvals_withdraw(release=release, actor=actor, reason=f"the plan changed ({', '.join(significant)})")
    return release


@transaction.atomic
def release_update_with_units(
    *,
    release: Release,
    actor: User | None,
    data: dict,
    units_changed: Iterable[tuple[ReleaseUnit, dict]] = (),
    units_added: Iterable[dict] = (),
    units_removed: Iterable[ReleaseUnit] = (),
) -> Release:
    """Edit the plan and its units at once, as the plan's page submits them: all of it is saved, or nothing.
    ``units_changed`` pairs a unit with the ``release_unit_update`` data for it, ``units_added`` are the keyword
    arguments of ``release_unit_add``. Removals come first, so a new unit may take the name of a removed one.
    """
    release = release_update(release=release, actor=actor, data=data)
    try:
        for unit in units_removed:
            release_unit_remove(unit=unit, actor=actor)
        for unit, changes in units_changed:
            release_unit_update(unit=unit, actor=actor, data=changes)
        for unit in units_added:
            release_unit_add(release=release, actor=actor, **unit)
    except InvalidInput as error:  # a unit's "field: problem" is not about the plan's field of that name
        raise InvalidInput(str(error)) from error
    return release


# --- planning -------------------------------------------------------------------------------------


def _plan_problems(release: Release) -> list[str]:
    problems = []
    if not release.services.exists():
        problems.append("name at least one service")
    if release.planned_start is None or release.planned_end is None:
        problems.append("set the planned start and end")
    if not release.policy.active:
        problems.append(f"policy {release.policy} is no longer active")
    if release.policy.release_type != release.release_type:
        problems.append(f"policy {release.policy} governs {release.policy.release_type} releases")
    return problems


@transaction.atomic
def release_plan(*, release: Release, actor: User | None) -> Release:
    """Put the draft on the calendar: services, dates and policy must be set."""
    release = locked(release)
    action_ensure(RELEASE_ACTIONS, ReleaseTransition.PLAN, release, actor)
    ensure_conditions(f"Release {release} cannot be planned", _plan_problems(release))
    return state_move(release, ReleaseTransition.PLAN, actor=actor, entity="release")


@transaction.atomic
def release_submit(*, release: Release, actor: User | None) -> Release:
    """Send the plan to its approvers, at least the policy's lead time before the planned start.

    The approvers whose decision is awaited are notified. A release carried by a standard change from a
    pre-approved template is approved at once: the template's pre-approval counts (continuous delivery).
    """
    release = locked(release)
    action_ensure(RELEASE_ACTIONS, ReleaseTransition.SUBMIT, release, actor)
    problems = _plan_problems(release)
    if not release.description.strip():
        problems.append("describe the release")
    moment, policy = now(), release.policy
    if release.planned_start is not None:
        earliest = moment + timedelta(days=policy.lead_time_days)
        if release.planned_start <= moment:
            problems.append(f"the planned start {release.planned_start:%Y-%m-%d %H:%M} has passed")
        elif release.planned_start < earliest:
            problems.append(
                f"policy {policy} needs {policy.lead_time_days} day(s) of lead time: plan the start on or after "
                f"{earliest:%Y-%m-%d %H:%M %Z} or submit earlier"
            )
    standard = release_standard_preapproval(release)
    candidates = release_approver_candidates(release)
    if standard is None and len(candidates) < policy.approvals_required:
        names = ", ".join(user.get_username() for user in candidates) or "nobody"
        problems.append(
            f"policy {policy} needs {policy.approvals_required} approver(s) but only {names} may approve this release"
        )
    ensure_conditions(f"Release {release} cannot be submitted", problems)
    state_move(release, ReleaseTransition.SUBMIT, actor=actor, entity="release")
    if standard is not None:
        template = standard.template
        reason = (
            f"standard change {standard.number} from template {template.name!r}, pre-approved by {template.approved_by}"
        )
        return state_move(release, ReleaseTransition.APPROVE, actor=actor, entity="release", reason=reason)
    notification_send(
        recipients=candidates,
        kind=APPROVAL_AWAITED,
        subject=f"Release {release} awaits your decision",
        body=f"{release.get_release_type_display()} release planned {release.planned_start:%Y-%m-%d %H:%M %Z}; "
        f"{policy.approvals_required} approval(s) needed.",
        target=release,
        link=release.get_absolute_url(),
        actor=actor,
    )
    return release


@transaction.atomic
def release_replan(*, release: Release, actor: User | None, reason: str = "") -> Release:
    """Back to planned after a rejection or a failed deployment; every earlier decision is withdrawn."""
    reason = bounded_text(reason, "the reason for re-planning")
    release = locked(release)
    action_ensure(RELEASE_ACTIONS, ReleaseTransition.REPLAN, release, actor)
    approvals_withdraw(release=release, actor=actor, reason=reason or "the release is re-planned")
    return state_move(release, ReleaseTransition.REPLAN, actor=actor, entity="release", reason=reason)


@transaction.atomic
def release_mark_ready(*, release: Release, actor: User | None) -> Release:
    """Go: every gate the policy requires for production is green."""
    release = locked(release)
    action_ensure(RELEASE_ACTIONS, ReleaseTransition.MARK_READY, release, actor)
    checklist = checklist_evaluate(release, EnvironmentTier.PRODUCTION)
    ensure_conditions(f"Release {release} is not ready for production", checklist.unmet_messages)
    return state_move(release, ReleaseTransition.MARK_READY, actor=actor, entity="release")


@transaction.atomic
def release_cancel(*, release: Release, actor: User | None, reason: str) -> Release:
    """Call the release off, before its deployment starts; the reason is mandatory."""
    reason = require_text(reason, "the reason for cancelling the release")
    release = locked(release)
    action_ensure(RELEASE_ACTIONS, ReleaseTransition.CANCEL, release, actor)
    release.end_reason = reason
    return state_move(release, ReleaseTransition.CANCEL, actor=actor, entity="release", reason=reason)


# --- following the production deployment (called by the deployment engine) ----------------------


@transaction.atomic
def release_deploying(*, release: Release, actor: User | None = None, checklist: Checklist | None = None) -> Release:
    """The production deployment started. The production checklist must still be green.

    ``checklist`` is the production checklist when the caller evaluated it in this transaction already (the
    deployment's start conditions); otherwise it is evaluated here.
    """
    release = locked(release)
    action_ensure(RELEASE_ACTIONS, ReleaseTransition.START_DEPLOYING, release, actor)
    if checklist is None or checklist.release.pk != release.pk or checklist.tier != EnvironmentTier.PRODUCTION:
        checklist = checklist_evaluate(release, EnvironmentTier.PRODUCTION)
    ensure_conditions(f"Release {release} may not start deploying", checklist.unmet_messages)
    return state_move(release, ReleaseTransition.START_DEPLOYING, actor=actor, entity="release")


def _deployment_ended(release: Release, actor: User | None, transition: str, reason: str = "") -> Release:
    release = locked(release)
    action_ensure(RELEASE_ACTIONS, transition, release, actor)
    if reason:
        release.end_reason = reason
    return state_move(release, transition, actor=actor, entity="release", reason=reason)


@transaction.atomic
def release_deployed(*, release: Release, actor: User | None = None) -> Release:
    """The production deployment succeeded."""
    return _deployment_ended(release, actor, ReleaseTransition.MARK_DEPLOYED)


@transaction.atomic
def release_failed(*, release: Release, actor: User | None = None, reason: str) -> Release:
    """The production deployment (or the release during ELS) failed; the reason is mandatory."""
    reason = require_text(reason, "why the release failed")
    return _deployment_ended(release, actor, ReleaseTransition.MARK_FAILED, reason)


@transaction.atomic
def release_rolled_back(*, release: Release, actor: User | None = None, reason: str) -> Release:
    """The release was rolled back out of production; the reason is mandatory."""
    reason = require_text(reason, "why the release was rolled back")
    return _deployment_ended(release, actor, ReleaseTransition.MARK_ROLLED_BACK, reason)


def release_close_problems(release: Release) -> list[str]:
    """Every reason the release may not close yet: its review accepted, and the CMDB updated (a post-release
    baseline linked).
    """
    problems = []
    review = PostImplementationReview.objects.filter(release=release).first()
    if review is None:
        problems.append("its post-implementation review has not fallen due (it does when early life support exits)")
    elif review.state != ReviewState.ACCEPTED:
        problems.append(f"accept its post-implementation review (it is {review.get_state_display().lower()})")
    if not release.baselines.filter(kind=BaselineKind.POST_RELEASE).exists():
        problems.append("take the post-release baseline (the CMDB must show what is live now)")
    return problems


@transaction.atomic
def release_close(*, release: Release, actor: User | None, reason: str = "") -> Release:
    """Close the release once its review is accepted and the CMDB is updated. Accepting the review closes it
    when the baseline is there already; this is for a baseline linked afterwards.
    """
    reason = bounded_text(reason, "the reason for closing")
    release = locked(release)
    action_ensure(RELEASE_ACTIONS, ReleaseTransition.CLOSE, release, actor)
    ensure_conditions(f"Release {release} cannot close", release_close_problems(release))
    return state_move(release, ReleaseTransition.CLOSE, actor=actor, entity="release", reason=reason)


__all__ = [
    "release_cancel",
    "release_close",
    "release_close_problems",
    "release_create",
    "release_deployed",
    "release_deploying",
    "release_failed",
    "release_mark_ready",
    "release_plan",
    "release_replan",
    "release_rolled_back",
    "release_submit",
    "release_update",
]
