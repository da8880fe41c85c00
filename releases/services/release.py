"""The release lifecycle and the decisions on release plans.

Every service is one transaction: it re-reads the release under a row lock, checks who may (role,
ownership, segregation of duties), checks the state machine allows the move, evaluates every condition
and reports all unmet ones at once, moves the state, saves, and records the audit event. Notifications
are written in the transaction and e-mailed after commit (``notification_send``).

``actor`` is the user acting, or None when RDM acts on its own authority (the deployment engine).
"""

from collections.abc import Iterable
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from cmdb.choices import EnvironmentTier
from rdm_site.audit import audit_record
from rdm_site.domain import (
    apply_transition,
    ensure_allowed,
    ensure_conditions,
    ensure_legal,
    locked,
    now,
    require_text,
    save,
    validated,
)
from rdm_site.notifications import notification_send
from releases import permissions as perms
from releases.checklist import checklist_evaluate, els_plan
from releases.choices import (
    CHANGE_AUTHORISED_STATES,
    RELEASE_APPROVED_STATES,
    RELEASE_PRE_DEPLOYMENT_STATES,
    BaselineKind,
    ChangeType,
    Decision,
    GateCode,
    ReleaseTransition,
)
from releases.exceptions import AlreadyDecided, IllegalTransition, InvalidInput
from releases.models import Approval, Release, ReleasePolicy
from releases.selectors import release_active_approvals, release_approver_candidates, release_current_package

APPROVAL_AWAITED = "approval.awaited"
APPROVAL_WITHDRAWN = "approval.withdrawn"
RELEASE_REJECTED = "release.rejected"

# Edits that change what approvers approved: making one withdraws their approvals.
SIGNIFICANT_FIELDS = ("planned_start", "planned_end", "services", "release_type", "policy")
EDITABLE_FIELDS = (
    "name",
    "version",
    "description",
    "planned_start",
    "planned_end",
    "release_manager",
    "els_exit_criteria",
    "els_min_duration_days",
)
EDITABLE_SETS = ("services", "els_staff")


def _audit_transition(release: Release, actor: User | None, verb: str, moved: tuple[str, str], reason: str = ""):
    audit_record(
        actor=actor, action=f"release.{verb}", target=release, from_state=moved[0], to_state=moved[1], reason=reason
    )


def _link(release: Release) -> str:
    return f"/admin/releases/release/{release.pk}/change/"


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
) -> Release:
    """Start a release plan in draft; its manager defaults to whoever creates it."""
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
        release_manager=manager,
        requested_by=actor,
    )
    validated(release)
    release.save()
    release.services.set(list(services))
    audit_record(actor=actor, action="release.create", target=release, to_state=release.state)
    return release


@transaction.atomic
def release_update(*, release: Release, actor: User | None, data: dict) -> Release:
    """Edit the plan before its deployment. An edit to what approvers approved (dates, services) withdraws
    their approvals, visibly, and sends an approved release back to approval.
    """
    release = locked(release)
    ensure_allowed(perms.permission_problem(actor, perms.CHANGE_RELEASE, f"edit release {release}"))
    if release.state not in RELEASE_PRE_DEPLOYMENT_STATES:
        raise IllegalTransition(release, "edit", release.state)
    unknown = sorted(set(data) - set(EDITABLE_FIELDS) - set(EDITABLE_SETS))
    if unknown:
        raise InvalidInput(f"These fields cannot be edited here: {', '.join(unknown)}.")
    changes = {}
    for name in EDITABLE_FIELDS:
        if name in data and getattr(release, name) != data[name]:
            changes[name] = [str(getattr(release, name)), str(data[name])]
            setattr(release, name, data[name])
    for name in EDITABLE_SETS:
        if name in data:
            before = {obj.pk for obj in getattr(release, name).all()}
            after = {obj.pk for obj in data[name]}
            if before != after:
                changes[name] = [sorted(before), sorted(after)]
                getattr(release, name).set(list(data[name]))
    if not changes:
        return release
    validated(release)
    save(release)
    audit_record(actor=actor, action="release.update", target=release, changes=changes)
    significant = sorted(set(changes) & set(SIGNIFICANT_FIELDS))
    if significant:
        approvals_withdraw(release=release, actor=actor, reason=f"the plan changed ({', '.join(significant)})")
    return release


# --- approvals ------------------------------------------------------------------------------------


def approvals_withdraw(
    *, release: Release, actor: User | None, reason: str, approvers: Iterable[User] | None = None
) -> list[Approval]:
    """Withdraw the active decisions on the release plan (all, or those of ``approvers``), visibly:
    each row keeps its decision and gains withdrawn_at and the reason, is audited, and its approver is
    told. An approved or ready release goes back to submitted, to be approved again (when all were
    withdrawn, or fewer than the quorum remain).

    Call inside the caller's transaction, with ``release`` locked.
    """
    active = Approval.objects.select_for_update().filter(release=release, withdrawn_at__isnull=True)
    if approvers is not None:
        active = active.filter(approver__in=list(approvers))
    withdrawn = list(active.select_related("approver"))
    moment = now()
    for approval in withdrawn:
        approval.withdrawn_at, approval.withdrawn_reason = moment, reason
        approval.save(update_fields=["withdrawn_at", "withdrawn_reason"])
        audit_record(
            actor=actor,
            action="approval.withdraw",
            target=approval,
            object_repr=f"{approval.get_decision_display()} by {approval.approver.get_username()} on {release}",
            reason=reason,
        )
    short_of_quorum = release_active_approvals(release).count() < release.policy.approvals_required
    if withdrawn and release.state in RELEASE_APPROVED_STATES and (approvers is None or short_of_quorum):
        moved = apply_transition(release, ReleaseTransition.REOPEN_APPROVAL)
        save(release)
        _audit_transition(release, actor, "reopen_approval", moved, reason=f"approvals withdrawn: {reason}")
    if withdrawn:
        notification_send(
            recipients=[approval.approver for approval in withdrawn],
            kind=APPROVAL_WITHDRAWN,
            subject=f"Your decision on release {release} was withdrawn",
            body=f"Reason: {reason}. Please review the release again.",
            target=release,
            link=_link(release),
            actor=actor,
        )
    return withdrawn


def _decision_problems(release: Release, actor: User | None, attempt: str) -> list[str | None]:
    """Who may decide on a release plan: the permission, a role the policy lists, ownership for Service
    Owners, and segregation of duties (not its manager, requester, or the builder of its package).
    """
    problem = perms.permission_problem(actor, perms.APPROVE_RELEASE, attempt)
    if problem:
        return [problem]
    package = release_current_package(release)
    return [
        perms.role_problem(actor, release.policy.approver_roles, attempt),
        perms.ownership_problem(actor, release.services.select_related("owner"), perms.APPROVE_ANY_RELEASE, attempt),
        *perms.sod_problems(
            actor,
            attempt,
            manages=release.release_manager,
            requested=release.requested_by,
            built=package.built_by if package else None,
        ),
    ]


def _record_decision(release: Release, actor: User, decision: Decision, reason: str) -> Approval:
    """One active decision per person: the row lock on the release serialises deciders, and the partial
    unique constraint catches what slips past it (reported the same way).
    """
    existing = release_active_approvals(release, decision=None).filter(approver=actor).first()
    if existing is not None:
        raise AlreadyDecided(
            f"{actor.get_username()} already {existing.get_decision_display().lower()} release {release} "
            f"at {existing.decided_at:%Y-%m-%d %H:%M}; each approver counts once."
        )
    roles = sorted(actor.groups.filter(name__in=release.policy.approver_roles).values_list("name", flat=True))
    try:
        with transaction.atomic():
            approval = Approval.objects.create(
                approver=actor, release=release, decision=decision, reason=reason, role=", ".join(roles)
            )
    except IntegrityError:
        raise AlreadyDecided(
            f"{actor.get_username()} already decided on release {release}; each approver counts once."
        ) from None
    audit_record(actor=actor, action=f"approval.{decision}", target=approval, reason=reason)
    return approval


@transaction.atomic
def release_approve(*, release: Release, actor: User, reason: str = "") -> Approval:
    """Record one approval of the plan; when the distinct approvers reach the policy's quorum, the release
    is approved. Each approver counts once, however often they press the button.
    """
    release = locked(release)
    attempt = f"approve release {release}"
    ensure_allowed(perms.permission_problem(actor, perms.APPROVE_RELEASE, attempt))
    ensure_legal(release, ReleaseTransition.APPROVE)
    ensure_allowed(*_decision_problems(release, actor, attempt))
    approval = _record_decision(release, actor, Decision.APPROVED, reason)
    approvers = [approval.approver.get_username() for approval in release_active_approvals(release)]
    if len(approvers) >= release.policy.approvals_required:
        moved = apply_transition(release, ReleaseTransition.APPROVE)
        save(release)
        _audit_transition(release, actor, "approve", moved, reason=f"quorum reached: {', '.join(approvers)}")
    return approval


@transaction.atomic
def release_reject(*, release: Release, actor: User, reason: str) -> Approval:
    """One approver's refusal sends the plan back (rejected → re-plan); the reason is mandatory."""
    reason = require_text(reason, "the reason for rejecting the release plan")
    release = locked(release)
    attempt = f"reject release {release}"
    ensure_allowed(perms.permission_problem(actor, perms.APPROVE_RELEASE, attempt))
    ensure_legal(release, ReleaseTransition.REJECT)
    ensure_allowed(*_decision_problems(release, actor, attempt))
    approval = _record_decision(release, actor, Decision.REJECTED, reason)
    moved = apply_transition(release, ReleaseTransition.REJECT)
    save(release)
    _audit_transition(release, actor, "reject", moved, reason=reason)
    notification_send(
        recipients=[release.release_manager],
        kind=RELEASE_REJECTED,
        subject=f"Release {release} was rejected by {actor.get_username()}",
        body=reason,
        target=release,
        link=_link(release),
        actor=actor,
    )
    return approval


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
    ensure_allowed(perms.permission_problem(actor, perms.CHANGE_RELEASE, f"plan release {release}"))
    ensure_legal(release, ReleaseTransition.PLAN)
    ensure_conditions(f"Release {release} cannot be planned", _plan_problems(release))
    moved = apply_transition(release, ReleaseTransition.PLAN)
    save(release)
    _audit_transition(release, actor, "plan", moved)
    return release


def _standard_preapproval(release: Release):
    return (
        release.changes.filter(
            change_type=ChangeType.STANDARD, state__in=CHANGE_AUTHORISED_STATES, template__active=True
        )
        .exclude(template__approved_at=None)
        .select_related("template")
        .first()
    )


@transaction.atomic
def release_submit(*, release: Release, actor: User | None) -> Release:
    """Send the plan to its approvers, at least the policy's lead time before the planned start.

    The approvers whose decision is awaited are notified. A release carried by a standard change from a
    pre-approved template is approved at once: the template's pre-approval counts (continuous delivery).
    """
    release = locked(release)
    ensure_allowed(perms.permission_problem(actor, perms.SUBMIT_RELEASE, f"submit release {release}"))
    ensure_legal(release, ReleaseTransition.SUBMIT)
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
    standard = _standard_preapproval(release)
    candidates = release_approver_candidates(release)
    if standard is None and len(candidates) < policy.approvals_required:
        names = ", ".join(user.get_username() for user in candidates) or "nobody"
        problems.append(
            f"policy {policy} needs {policy.approvals_required} approver(s) but only {names} may approve this release"
        )
    ensure_conditions(f"Release {release} cannot be submitted", problems)
    moved = apply_transition(release, ReleaseTransition.SUBMIT)
    save(release)
    _audit_transition(release, actor, "submit", moved)
    if standard is not None:
        moved = apply_transition(release, ReleaseTransition.APPROVE)
        save(release)
        template = standard.template
        reason = (
            f"standard change {standard.number} from template {template.name!r}, pre-approved by {template.approved_by}"
        )
        _audit_transition(release, actor, "approve", moved, reason=reason)
        return release
    notification_send(
        recipients=candidates,
        kind=APPROVAL_AWAITED,
        subject=f"Release {release} awaits your decision",
        body=f"{release.get_release_type_display()} release planned {release.planned_start:%Y-%m-%d %H:%M %Z}; "
        f"{policy.approvals_required} approval(s) needed.",
        target=release,
        link=_link(release),
        actor=actor,
    )
    return release


@transaction.atomic
def release_replan(*, release: Release, actor: User | None, reason: str = "") -> Release:
    """Back to planned after a rejection or a failed deployment; every earlier decision is withdrawn."""
    release = locked(release)
    ensure_allowed(perms.permission_problem(actor, perms.CHANGE_RELEASE, f"re-plan release {release}"))
    ensure_legal(release, ReleaseTransition.REPLAN)
    approvals_withdraw(release=release, actor=actor, reason=reason or "the release is re-planned")
    moved = apply_transition(release, ReleaseTransition.REPLAN)
    save(release)
    _audit_transition(release, actor, "replan", moved, reason=reason)
    return release


@transaction.atomic
def release_mark_ready(*, release: Release, actor: User | None) -> Release:
    """Go: every gate the policy requires for production is green."""
    release = locked(release)
    ensure_allowed(perms.permission_problem(actor, perms.SUBMIT_RELEASE, f"mark release {release} ready"))
    ensure_legal(release, ReleaseTransition.MARK_READY)
    checklist = checklist_evaluate(release, EnvironmentTier.PRODUCTION)
    ensure_conditions(f"Release {release} is not ready for production", checklist.unmet_messages)
    moved = apply_transition(release, ReleaseTransition.MARK_READY)
    save(release)
    _audit_transition(release, actor, "mark_ready", moved)
    return release


@transaction.atomic
def release_cancel(*, release: Release, actor: User | None, reason: str) -> Release:
    """Call the release off, before its deployment starts; the reason is mandatory."""
    reason = require_text(reason, "the reason for cancelling the release")
    release = locked(release)
    ensure_allowed(perms.permission_problem(actor, perms.CANCEL_RELEASE, f"cancel release {release}"))
    ensure_legal(release, ReleaseTransition.CANCEL)
    moved = apply_transition(release, ReleaseTransition.CANCEL)
    release.end_reason = reason
    save(release)
    _audit_transition(release, actor, "cancel", moved, reason=reason)
    return release


# --- following the production deployment (called by the deployment engine) ----------------------


def _deploy_problems(release: Release, actor: User | None, attempt: str) -> list[str | None]:
    problem = perms.permission_problem(actor, perms.DEPLOY_RELEASE, attempt)
    if problem or actor is None or actor.has_perm(perms.IMPLEMENT_CHANGE):
        return [problem]
    # Build/CI Engineers deploy continuously, under standard changes only.
    if _standard_preapproval(release) is None:
        return [f"{actor.get_username()} may not {attempt}: Build/CI Engineers deploy under standard changes only."]
    return []


@transaction.atomic
def release_deploying(*, release: Release, actor: User | None = None) -> Release:
    """The production deployment started. The production checklist must still be green."""
    release = locked(release)
    ensure_allowed(*_deploy_problems(release, actor, f"deploy release {release}"))
    ensure_legal(release, ReleaseTransition.START_DEPLOYING)
    checklist = checklist_evaluate(release, EnvironmentTier.PRODUCTION)
    ensure_conditions(f"Release {release} may not start deploying", checklist.unmet_messages)
    moved = apply_transition(release, ReleaseTransition.START_DEPLOYING)
    save(release)
    _audit_transition(release, actor, "deploying", moved)
    return release


def _engine_step(release: Release, actor: User | None, transition: str, verb: str, reason: str = "") -> Release:
    release = locked(release)
    ensure_allowed(perms.permission_problem(actor, perms.DEPLOY_RELEASE, f"record that release {release} {verb}"))
    ensure_legal(release, transition)
    moved = apply_transition(release, transition)
    if reason:
        release.end_reason = reason
    save(release)
    _audit_transition(release, actor, verb, moved, reason=reason)
    return release


@transaction.atomic
def release_deployed(*, release: Release, actor: User | None = None) -> Release:
    """The production deployment succeeded."""
    return _engine_step(release, actor, ReleaseTransition.MARK_DEPLOYED, "deployed")


@transaction.atomic
def release_failed(*, release: Release, actor: User | None = None, reason: str) -> Release:
    """The production deployment (or the release during ELS) failed; the reason is mandatory."""
    reason = require_text(reason, "why the release failed")
    return _engine_step(release, actor, ReleaseTransition.MARK_FAILED, "failed", reason)


@transaction.atomic
def release_rolled_back(*, release: Release, actor: User | None = None, reason: str) -> Release:
    """The release was rolled back out of production; the reason is mandatory."""
    reason = require_text(reason, "why the release was rolled back")
    return _engine_step(release, actor, ReleaseTransition.MARK_ROLLED_BACK, "rolled_back", reason)


def _els_allowed(release: Release, actor: User | None, attempt: str) -> None:
    ensure_allowed(perms.permission_problem(actor, perms.MANAGE_ELS, attempt))
    ensure_allowed(
        perms.ownership_problem(actor, release.services.select_related("owner"), perms.MANAGE_ANY_ELS, attempt)
    )


@transaction.atomic
def release_els_start(*, release: Release, actor: User | None = None) -> Release:
    """Early life support begins after a successful production deployment; it needs an ELS plan
    (staff and exit criteria; the policy's defaults count).
    """
    release = locked(release)
    _els_allowed(release, actor, f"start early life support of release {release}")
    ensure_legal(release, ReleaseTransition.START_ELS)
    gate = checklist_evaluate(release, EnvironmentTier.PRODUCTION).gate(GateCode.ELS_SCHEDULED)
    ensure_conditions(f"Early life support of {release} cannot start", [] if gate.satisfied else [gate.status])
    moved = apply_transition(release, ReleaseTransition.START_ELS)
    save(release)
    _audit_transition(release, actor, "els_start", moved)
    return release


@transaction.atomic
def release_review_start(*, release: Release, actor: User | None = None, reason: str = "") -> Release:
    """ELS exits and the post-implementation review falls due, once the minimum ELS duration has passed.

    The incident-based exit criteria are the deployments app's to evaluate before it calls this.
    """
    release = locked(release)
    _els_allowed(release, actor, f"exit early life support of release {release}")
    ensure_legal(release, ReleaseTransition.START_REVIEW)
    _, _, minimum, _ = els_plan(release)
    problems = []
    if release.els_started_at is not None:
        earliest = release.els_started_at + timedelta(days=minimum)
        if now() < earliest:
            problems.append(f"ELS lasts at least {minimum} day(s): it may exit from {earliest:%Y-%m-%d %H:%M %Z}")
    ensure_conditions(f"Early life support of {release} cannot exit yet", problems)
    moved = apply_transition(release, ReleaseTransition.START_REVIEW)
    save(release)
    _audit_transition(release, actor, "review_start", moved, reason=reason)
    return release


@transaction.atomic
def release_close(*, release: Release, actor: User | None, reason: str = "") -> Release:
    """Close the release once its review is accepted (the PIR service calls this) and the CMDB is updated:
    a post-release baseline must be linked.
    """
    release = locked(release)
    attempt = f"close release {release}"
    ensure_allowed(perms.permission_problem(actor, perms.CLOSE_RELEASE, attempt))
    ensure_allowed(
        perms.ownership_problem(actor, release.services.select_related("owner"), perms.CLOSE_ANY_RELEASE, attempt)
    )
    ensure_legal(release, ReleaseTransition.CLOSE)
    problems = []
    if not release.baselines.filter(kind=BaselineKind.POST_RELEASE).exists():
        problems.append("take the post-release baseline (the CMDB must show what is live now)")
    ensure_conditions(f"Release {release} cannot close", problems)
    moved = apply_transition(release, ReleaseTransition.CLOSE)
    save(release)
    _audit_transition(release, actor, "close", moved, reason=reason)
    return release


__all__ = [
    "approvals_withdraw",
    "release_approve",
    "release_cancel",
    "release_close",
    "release_create",
    "release_deployed",
    "release_deploying",
    "release_els_start",
    "release_failed",
    "release_mark_ready",
    "release_plan",
    "release_reject",
    "release_replan",
    "release_review_start",
    "release_rolled_back",
    "release_submit",
    "release_update",
]
