"""Change records (RFCs): create, submit, assess, decide, and follow the deployment; templates; freeze overrides.

Standard changes come from a pre-approved template and are approved on submit. Normal changes are
decided by Change Approvers, emergency ones by Emergency Approvers; nobody decides on a change they
requested. The deployment engine calls ``change_schedule``, ``change_start`` and ``change_complete``.
"""

from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

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
from releases.choices import (
    CHANGE_OPEN_STATES,
    ChangeOutcome,
    ChangeState,
    ChangeTransition,
    ChangeType,
    Decision,
    ReleaseType,
)
from releases.exceptions import AlreadyDecided, IllegalTransition, InvalidInput
from releases.models import Approval, ChangeRecord, ChangeTemplate, FreezeOverride, FreezePeriod, Release
from releases.selectors import change_active_approvals, change_approver_candidates
from releases.services.release import APPROVAL_AWAITED

OUTCOME_TRANSITIONS = {
    ChangeOutcome.IMPLEMENTED: ChangeTransition.MARK_IMPLEMENTED,
    ChangeOutcome.FAILED: ChangeTransition.MARK_FAILED,
    ChangeOutcome.BACKED_OUT: ChangeTransition.MARK_BACKED_OUT,
}


def _audit(change: ChangeRecord, actor: User | None, verb: str, moved=("", ""), reason: str = "", changes=None):
    audit_record(
        actor=actor,
        action=f"change.{verb}",
        target=change,
        from_state=moved[0],
        to_state=moved[1],
        reason=reason,
        changes=changes,
    )


def _link(change: ChangeRecord) -> str:
    return f"/admin/releases/changerecord/{change.pk}/change/"


def _schedule_problems(planned_start: datetime | None, planned_end: datetime | None) -> list[str]:
    if planned_start is None or planned_end is None:
        return ["set the planned start and end"]
    if planned_end <= planned_start:
        return ["the planned end comes after the planned start"]
    return []


# --- templates ------------------------------------------------------------------------------------


@transaction.atomic
def change_template_approve(*, template: ChangeTemplate, actor: User | None) -> ChangeTemplate:
    """The CAB pre-approves a standard change once; every change from the template is then approved on submit."""
    template = locked(template)
    attempt = f"pre-approve change template {template}"
    ensure_allowed(perms.permission_problem(actor, perms.APPROVE_CHANGE, attempt))
    ensure_allowed(*perms.sod_problems(actor, attempt, created=template.created_by))
    if template.approved_at is not None:
        raise AlreadyDecided(f"Change template {template} was pre-approved by {template.approved_by} already.")
    template.approved_by, template.approved_at = actor, now()
    template.save(update_fields=["approved_by", "approved_at"])
    audit_record(actor=actor, action="change_template.approve", target=template)
    return template


# --- creating and submitting ----------------------------------------------------------------------


@transaction.atomic
def change_create(
    *,
    actor: User,
    change_type: ChangeType | str,
    planned_start: datetime,
    planned_end: datetime,
    title: str = "",
    description: str = "",
    risk: str | None = None,
    impact: str = "",
    services: Iterable = (),
    configuration_items: Iterable = (),
    release: Release | None = None,
    template: ChangeTemplate | None = None,
) -> ChangeRecord:
    """Raise a change record in draft. A standard change comes from an active, pre-approved template and
    inherits its services and risk; Build/CI Engineers may raise standard changes only. Emergency changes
    must be reviewed after they are carried out.
    """
    change_type = ChangeType(change_type)
    attempt = f"create a {change_type} change"
    if change_type == ChangeType.STANDARD:
        ensure_allowed(perms.any_permission_problem(actor, [perms.ADD_CHANGE, perms.CREATE_STANDARD_CHANGE], attempt))
    elif actor is not None and not actor.has_perm(perms.ADD_CHANGE) and actor.has_perm(perms.CREATE_STANDARD_CHANGE):
        ensure_allowed(
            f"{actor.get_username()} may create standard changes from a template only, not {change_type} ones."
        )
    else:
        ensure_allowed(perms.permission_problem(actor, perms.ADD_CHANGE, attempt))
    services, configuration_items = list(services), list(configuration_items)
    problems = _schedule_problems(planned_start, planned_end)
    if change_type == ChangeType.STANDARD:
        if template is None:
            problems.append("a standard change is created from a change template")
        else:
            if not template.pre_approved:
                problems.append(f"template {template} is not active and pre-approved")
            allowed = {service.pk for service in template.services.all()}
            outside = [service.name for service in services if service.pk not in allowed]
            if outside:
                problems.append(f"template {template} does not cover: {', '.join(outside)}")
            services = services or list(template.services.all())
            title = title or template.name
            description = description or template.description
            risk = template.risk
    elif template is not None:
        problems.append("only standard changes come from a template")
    if release is not None:
        emergency_release = release.release_type == ReleaseType.EMERGENCY
        if emergency_release != (change_type == ChangeType.EMERGENCY):
            problems.append(
                f"a {release.release_type} release is carried by "
                + ("an emergency change" if emergency_release else "a normal or standard change")
            )
        services = services or list(release.services.all())
    if not services and not configuration_items:
        problems.append("name the services or CIs the change affects")
    if problems:
        raise InvalidInput(f"The change cannot be created: {'; '.join(problems)}.", problems)
    change = ChangeRecord(
        number=ChangeRecord.next_number(),
        change_type=change_type,
        template=template,
        title=title,
        description=description,
        risk=risk or ChangeRecord._meta.get_field("risk").default,
        impact=impact,
        planned_start=planned_start,
        planned_end=planned_end,
        requested_by=actor,
        release=release,
        requires_review=change_type == ChangeType.EMERGENCY,
    )
    validated(change)
    change.save()
    change.services.set(services)
    change.configuration_items.set(configuration_items)
    _audit(change, actor, "create", ("", change.state))
    return change


@transaction.atomic
def change_submit(*, change: ChangeRecord, actor: User | None) -> ChangeRecord:
    """Ask for the change. A standard change is approved at once by its template's pre-approval; the
    approvers of any other change are told their decision is awaited.
    """
    change = locked(change)
    attempt = f"submit change {change.number}"
    ensure_allowed(perms.any_permission_problem(actor, [perms.ADD_CHANGE, perms.CREATE_STANDARD_CHANGE], attempt))
    ensure_legal(change, ChangeTransition.SUBMIT)
    problems = _schedule_problems(change.planned_start, change.planned_end)
    if change.planned_end <= now():
        problems.append("the planned schedule is already over")
    if not change.services.exists() and not change.configuration_items.exists():
        problems.append("name the services or CIs the change affects")
    if not change.title.strip():
        problems.append("give the change a title")
    template = change.template
    if change.change_type == ChangeType.STANDARD and (template is None or not template.pre_approved):
        problems.append(f"template {template} is no longer active and pre-approved")
    ensure_conditions(f"Change {change.number} cannot be submitted", problems)
    moved = apply_transition(change, ChangeTransition.SUBMIT)
    save(change)
    _audit(change, actor, "submit", moved)
    if change.change_type == ChangeType.STANDARD:
        moved = apply_transition(change, ChangeTransition.PREAPPROVE)
        save(change)
        reason = f"standard change: template {template.name!r} pre-approved by {template.approved_by}"
        _audit(change, actor, "approve", moved, reason=reason)
        return change
    notification_send(
        recipients=change_approver_candidates(change),
        kind=APPROVAL_AWAITED,
        subject=f"Change {change.number} ({change.get_change_type_display()}) awaits your decision",
        body=change.title,
        target=change,
        link=_link(change),
        actor=actor,
    )
    return change


@transaction.atomic
def change_assess(
    *,
    change: ChangeRecord,
    actor: User | None,
    assessment: str = "",
    risk: str | None = None,
    impact: str | None = None,
) -> ChangeRecord:
    """Record the assessment of risk and impact; the change then awaits its decision."""
    change = locked(change)
    ensure_allowed(perms.permission_problem(actor, perms.ASSESS_CHANGE, f"assess change {change.number}"))
    ensure_legal(change, ChangeTransition.ASSESS)
    changes = {}
    if risk is not None and risk != change.risk:
        changes["risk"], change.risk = [change.risk, risk], risk
    if impact is not None and impact != change.impact:
        changes["impact"], change.impact = [change.impact, impact], impact
    change.assessment = assessment
    moved = apply_transition(change, ChangeTransition.ASSESS)
    validated(change)
    save(change)
    _audit(change, actor, "assess", moved, reason=assessment, changes=changes or None)
    return change


# --- deciding -------------------------------------------------------------------------------------


def _decision_allowed(change: ChangeRecord, actor: User | None, attempt: str) -> None:
    permission = perms.APPROVE_EMERGENCY_CHANGE if change.change_type == ChangeType.EMERGENCY else perms.APPROVE_CHANGE
    ensure_allowed(perms.permission_problem(actor, permission, attempt))


def _record_decision(change: ChangeRecord, actor: User, decision: Decision, reason: str) -> Approval:
    if change_active_approvals(change).filter(approver=actor).exists():
        raise AlreadyDecided(f"{actor.get_username()} already decided on change {change.number}.")
    try:
        with transaction.atomic():
            approval = Approval.objects.create(approver=actor, change=change, decision=decision, reason=reason)
    except IntegrityError:
        raise AlreadyDecided(f"{actor.get_username()} already decided on change {change.number}.") from None
    audit_record(actor=actor, action=f"approval.{decision}", target=approval, reason=reason)
    return approval


def _decide(change: ChangeRecord, actor: User, decision: Decision, reason: str) -> ChangeRecord:
    change = locked(change)
    verb = "approve" if decision == Decision.APPROVED else "reject"
    attempt = f"{verb} change {change.number}"
    _decision_allowed(change, actor, attempt)
    ensure_legal(change, verb)
    ensure_allowed(*perms.sod_problems(actor, attempt, requested=change.requested_by))
    if decision == Decision.APPROVED:
        problems = [] if change.planned_end > now() else ["the planned schedule is already over: re-plan it"]
        ensure_conditions(f"Change {change.number} cannot be approved", problems)
    _record_decision(change, actor, decision, reason)
    moved = apply_transition(change, verb)
    save(change)
    _audit(change, actor, verb, moved, reason=reason)
    return change


@transaction.atomic
def change_approve(*, change: ChangeRecord, actor: User, reason: str = "") -> ChangeRecord:
    """Approve an assessed change (Change Approvers for normal, Emergency Approvers for emergency changes)."""
    return _decide(change, actor, Decision.APPROVED, reason)


@transaction.atomic
def change_reject(*, change: ChangeRecord, actor: User, reason: str) -> ChangeRecord:
    """Refuse an assessed change; the reason is mandatory."""
    return _decide(change, actor, Decision.REJECTED, require_text(reason, "the reason for rejecting the change"))


# --- carrying out (called by the deployment engine) ----------------------------------------------


def _implementation_allowed(change: ChangeRecord, actor: User | None, attempt: str) -> None:
    if change.change_type == ChangeType.STANDARD:
        permissions = [perms.IMPLEMENT_CHANGE, perms.IMPLEMENT_STANDARD_CHANGE]
        ensure_allowed(perms.any_permission_problem(actor, permissions, attempt))
    else:
        ensure_allowed(perms.permission_problem(actor, perms.IMPLEMENT_CHANGE, attempt))


@transaction.atomic
def change_schedule(*, change: ChangeRecord, actor: User | None = None) -> ChangeRecord:
    """A deployment under this change was scheduled."""
    change = locked(change)
    _implementation_allowed(change, actor, f"schedule change {change.number}")
    ensure_legal(change, ChangeTransition.SCHEDULE)
    problems = [] if change.planned_end > now() else ["the planned schedule is already over"]
    ensure_conditions(f"Change {change.number} cannot be scheduled", problems)
    moved = apply_transition(change, ChangeTransition.SCHEDULE)
    save(change)
    _audit(change, actor, "schedule", moved)
    return change


@transaction.atomic
def change_start(*, change: ChangeRecord, actor: User | None = None, at: datetime | None = None) -> ChangeRecord:
    """The deployment under this change started, within the change's schedule."""
    change = locked(change)
    _implementation_allowed(change, actor, f"start change {change.number}")
    ensure_legal(change, ChangeTransition.START)
    at = at or now()
    problems = [] if change.covers(at) else [f"the schedule does not cover {at:%Y-%m-%d %H:%M %Z}"]
    ensure_conditions(f"Change {change.number} cannot start", problems)
    moved = apply_transition(change, ChangeTransition.START)
    save(change)
    _audit(change, actor, "start", moved)
    return change


@transaction.atomic
def change_complete(
    *, change: ChangeRecord, actor: User | None = None, outcome: ChangeOutcome | str, reason: str = ""
) -> ChangeRecord:
    """The deployment ended: implemented, failed or backed out."""
    outcome = ChangeOutcome(outcome)
    change = locked(change)
    _implementation_allowed(change, actor, f"complete change {change.number}")
    transition = OUTCOME_TRANSITIONS[outcome]
    ensure_legal(change, transition, label=f"complete ({outcome.label.lower()})")
    moved = apply_transition(change, transition)
    save(change)
    _audit(change, actor, "complete", moved, reason=reason)
    return change


@transaction.atomic
def change_review(*, change: ChangeRecord, actor: User | None, notes: str) -> ChangeRecord:
    """Record the post-implementation review (mandatory for emergency changes and failed ones)."""
    notes = require_text(notes, "the review notes")
    change = locked(change)
    ensure_allowed(perms.permission_problem(actor, perms.REVIEW_CHANGE, f"review change {change.number}"))
    ensure_legal(change, ChangeTransition.REVIEW)
    change.review_notes = notes
    moved = apply_transition(change, ChangeTransition.REVIEW)
    save(change)
    _audit(change, actor, "review", moved, reason=notes)
    return change


@transaction.atomic
def change_close(*, change: ChangeRecord, actor: User | None, reason: str = "") -> ChangeRecord:
    """Close the change: after its review, or straight after a successful implementation when no review is
    required (emergency changes always are reviewed first).
    """
    change = locked(change)
    ensure_allowed(perms.permission_problem(actor, perms.REVIEW_CHANGE, f"close change {change.number}"))
    ensure_legal(change, ChangeTransition.CLOSE)
    problems = []
    if change.state == ChangeState.IMPLEMENTED and change.requires_review:
        problems.append("an emergency change is reviewed before it closes")
    ensure_conditions(f"Change {change.number} cannot close", problems)
    moved = apply_transition(change, ChangeTransition.CLOSE)
    save(change)
    _audit(change, actor, "close", moved, reason=reason)
    return change


# --- freeze overrides -----------------------------------------------------------------------------


@transaction.atomic
def freeze_override(
    *, change: ChangeRecord, actor: User, reason: str, freeze: FreezePeriod | None = None
) -> FreezeOverride:
    """An Emergency Approver lets one change deploy despite a freeze (one freeze, or every freeze over its
    schedule), with a mandatory reason. The override is recorded, audited, and scoped to the change's
    schedule as it stands now.
    """
    reason = require_text(reason, "the reason for overriding the freeze")
    change = locked(change)
    attempt = f"override a freeze for change {change.number}"
    ensure_allowed(perms.permission_problem(actor, perms.OVERRIDE_FREEZE, attempt))
    if change.state not in CHANGE_OPEN_STATES:
        raise IllegalTransition(change, "override a freeze for", change.state)
    ensure_allowed(*perms.sod_problems(actor, attempt, requested=change.requested_by))
    problems = []
    if freeze is not None and not (freeze.start < change.planned_end and change.planned_start < freeze.end):
        problems.append(f"freeze {freeze} does not overlap the change's schedule")
    ensure_conditions("The freeze cannot be overridden", problems)
    override = FreezeOverride.objects.create(
        change=change,
        freeze=freeze,
        reason=reason,
        granted_by=actor,
        valid_from=change.planned_start,
        valid_until=change.planned_end,
    )
    what = f"freeze {freeze}" if freeze else "every freeze over its schedule"
    audit_record(actor=actor, action="freeze.override", target=change, reason=f"{what}: {reason}")
    return override


__all__ = [
    "change_approve",
    "change_assess",
    "change_close",
    "change_complete",
    "change_create",
    "change_reject",
    "change_review",
    "change_schedule",
    "change_start",
    "change_submit",
    "change_template_approve",
    "freeze_override",
]
