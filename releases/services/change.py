"""Change records (RFCs): create, edit, submit, assess, decide, and follow the deployment; templates;
freeze overrides.

Standard changes come from a pre-approved template and are approved on submit. Normal changes are
decided by Change Approvers, emergency ones by Emergency Approvers; nobody decides on a change they
requested. The deployment engine calls ``change_schedule``, ``change_start`` and ``change_complete``.
Who may take each action, and from which states, is the rule table ``releases.actions.CHANGE_ACTIONS``.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction

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
from releases.actions import CHANGE_ACTIONS
from releases.choices import (
    ChangeOutcome,
    ChangeState,
    ChangeTransition,
    ChangeType,
    Decision,
    ReleaseType,
)
from releases.exceptions import AlreadyDecided, InvalidInput
from releases.models import ChangeRecord, ChangeTemplate, FreezeOverride, FreezePeriod, Release
from releases.selectors import change_approver_candidates, change_conflicts, change_freezes
from releases.services._state import state_move
from releases.services.approval import APPROVAL_AWAITED, approvals_withdraw, decision_record

OUTCOME_TRANSITIONS = {
    ChangeOutcome.IMPLEMENTED: ChangeTransition.MARK_IMPLEMENTED,
    ChangeOutcome.FAILED: ChangeTransition.MARK_FAILED,
    ChangeOutcome.BACKED_OUT: ChangeTransition.MARK_BACKED_OUT,
}

# A normal change without a release has no policy to take its lead time from: it is asked a day ahead.
LEAD_TIME_WITHOUT_RELEASE_DAYS = 1

CHANGE_EDITABLE_FIELDS = (
    "title",
    "description",
    "change_type",
    "risk",
    "impact",
    "planned_start",
    "planned_end",
    "services",
    "configuration_items",
)
# What the approvers approved: editing any of it withdraws their approval (only the title is cosmetic).
CHANGE_SIGNIFICANT_FIELDS = tuple(name for name in CHANGE_EDITABLE_FIELDS if name != "title")
# Where a change may land, so the conflicts are worth telling.
CHANGE_SCOPE_FIELDS = ("planned_start", "planned_end", "services", "configuration_items")

TEMPLATE_EDITABLE_FIELDS = ("name", "description", "services", "risk", "active")
# What the CAB pre-approved: editing any of it withdraws the pre-approval.
TEMPLATE_PREAPPROVED_FIELDS = ("description", "services", "risk")


def _schedule_problems(planned_start: datetime | None, planned_end: datetime | None) -> list[str]:
    if planned_start is None or planned_end is None:
        return ["set the planned start and end"]
    if planned_end <= planned_start:
        return ["the planned end comes after the planned start"]
    return []


def _lead_time_problems(change: ChangeRecord, asked_at: datetime) -> list[str]:
    """A normal change is asked for at least its release policy's lead time ahead (emergency and standard
    changes are exempt: an outage does not wait, a template was approved once for all).
    """
    if change.change_type != ChangeType.NORMAL:
        return []
    if change.release_id is not None:
        days, source = change.release.policy.lead_time_days, f"policy {change.release.policy}"
    else:
        days, source = LEAD_TIME_WITHOUT_RELEASE_DAYS, "a change without a release"
    earliest = asked_at + timedelta(days=days)
    if change.planned_start >= earliest:
        return []
    return [
        f"{source} needs {days} day(s) of lead time: it was asked for at {asked_at:%Y-%m-%d %H:%M %Z}, "
        f"so it may start from {earliest:%Y-%m-%d %H:%M %Z}, not {change.planned_start:%Y-%m-%d %H:%M %Z}"
    ]


def _conflicts_note(change: ChangeRecord) -> str:
    """Overlapping changes on a shared service or CI are flagged, not refused: the CAB weighs them."""
    numbers = [other.number for other in change_conflicts(change)]
    return f"conflicts with {', '.join(numbers)}" if numbers else ""


# --- templates ------------------------------------------------------------------------------------


@transaction.atomic
def change_template_create(
    *,
    actor: User | None,
    name: str,
    description: str,
    services: Iterable,
    risk: str | None = None,
    active: bool = True,
) -> ChangeTemplate:
    """Describe a standard change; it serves nobody until the CAB pre-approves it."""
    ensure_allowed(perms.permission_problem(actor, perms.ADD_CHANGE_TEMPLATE, f"create change template {name}"))
    template = ChangeTemplate(
        name=name,
        description=description,
        risk=risk or ChangeTemplate._meta.get_field("risk").default,
        active=active,
        created_by=actor,
    )
    validated(template)
    template.save()
    template.services.set(list(services))
    transition_record(actor=actor, action="change_template.create", target=template)
    return template


@transaction.atomic
def change_template_update(*, template: ChangeTemplate, actor: User | None, data: dict) -> ChangeTemplate:
    """Edit a template. Editing what the CAB pre-approved (description, services, risk) withdraws the
    pre-approval: no standard change comes from it until it is pre-approved again.
    """
    template = locked(template)
    ensure_allowed(perms.permission_problem(actor, perms.CHANGE_CHANGE_TEMPLATE, f"edit change template {template}"))
    changes = apply_changes(template, data, TEMPLATE_EDITABLE_FIELDS)
    if not changes:
        return template
    if template.approved_at is not None and set(changes) & set(TEMPLATE_PREAPPROVED_FIELDS):
        changes["approved_by"] = [str(template.approved_by), None]
        changes["approved_at"] = [template.approved_at.isoformat(), None]
        template.approved_by, template.approved_at = None, None
    validated(template)
    template.save()
    transition_record(actor=actor, action="change_template.update", target=template, changes=changes)
    return template


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
    transition_record(actor=actor, action="change_template.approve", target=template)
    return template


# --- creating, editing and submitting -------------------------------------------------------------


def _scope_problems(
    *, change_type: str, template: ChangeTemplate | None, release: Release | None, services: list, cis: list
) -> list[str]:
    """What a change must satisfy however it got its scope: template coverage, the release's kind of change."""
    problems = []
    if change_type == ChangeType.STANDARD and template is not None:
        allowed = {service.pk for service in template.services.all()}
        outside = [service.name for service in services if service.pk not in allowed]
        if outside:
            problems.append(f"template {template} does not cover: {', '.join(outside)}")
    if release is not None:
        emergency_release = release.release_type == ReleaseType.EMERGENCY
        if emergency_release != (change_type == ChangeType.EMERGENCY):
            kind = release.get_release_type_display().lower()
            problems.append(
                f"an {kind} release is carried by an emergency change"
                if emergency_release
                else f"a {kind} release is carried by a normal or standard change"
            )
    if not services and not cis:
        problems.append("name the services or CIs the change affects")
    return problems


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
    must be reviewed after they are carried out. Overlaps with other changes are recorded with it.
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
            services = services or list(template.services.all())
            title = title or template.name
            description = description or template.description
            risk = template.risk
    elif template is not None:
        problems.append("only standard changes come from a template")
    if release is not None:
        services = services or list(release.services.all())
    problems += _scope_problems(
        change_type=change_type, template=template, release=release, services=services, cis=configuration_items
    )
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
    transition_record(
        actor=actor, action="change.create", target=change, to_state=change.state, reason=_conflicts_note(change)
    )
    return change


@transaction.atomic
def change_update(*, change: ChangeRecord, actor: User | None, data: dict) -> ChangeRecord:
    """Edit a change before it is carried out. Editing what its approvers approved (schedule, scope, risk,
    impact, type) withdraws their approval, visibly, and sends an approved or scheduled change back to be
    assessed and decided again; a standard change keeps its template's pre-approval while the template
    still covers it. Overlaps with other changes are checked again and recorded.
    """
    change = locked(change)
    action_ensure(CHANGE_ACTIONS, "update", change, actor)
    if "change_type" in data and ChangeType(data["change_type"]) != change.change_type:
        if ChangeType.STANDARD in (data["change_type"], change.change_type):
            raise InvalidInput(
                "A standard change comes from a template and stays one: raise a new change instead.",
                ["change_type: a change becomes or stops being standard only as a new change"],
            )
        data = {**data, "change_type": ChangeType(data["change_type"])}
    changes = apply_changes(change, data, CHANGE_EDITABLE_FIELDS)
    if not changes:
        return change
    if "change_type" in changes:
        change.requires_review = change.change_type == ChangeType.EMERGENCY
    problems = _schedule_problems(change.planned_start, change.planned_end) + _scope_problems(
        change_type=change.change_type,
        template=change.template,
        release=change.release,
        services=list(change.services.all()),
        cis=list(change.configuration_items.all()),
    )
    if problems:
        raise InvalidInput(f"Change {change.number} cannot be saved: {'; '.join(problems)}.", problems)
    validated(change)
    save(change)
    scope_changed = set(changes) & set(CHANGE_SCOPE_FIELDS)
    transition_record(
        actor=actor,
        action="change.update",
        target=change,
        changes=changes,
        reason=_conflicts_note(change) if scope_changed else "",
    )
    significant = sorted(set(changes) & set(CHANGE_SIGNIFICANT_FIELDS))
    if significant and change.change_type != ChangeType.STANDARD:
        reason = f"the change was edited ({', '.join(significant)})"
        approvals_withdraw(change=change, actor=actor, reason=reason)
        if change.state in ChangeRecord.transition_sources(ChangeTransition.REOPEN_APPROVAL):
            state_move(change, ChangeTransition.REOPEN_APPROVAL, actor=actor, entity="change", reason=reason)
    return change


@transaction.atomic
def change_submit(*, change: ChangeRecord, actor: User | None) -> ChangeRecord:
    """Ask for the change. A standard change is approved at once by its template's pre-approval; the
    approvers of any other change are told their decision is awaited. A normal change is asked for at
    least its lead time ahead.
    """
    change = locked(change)
    action_ensure(CHANGE_ACTIONS, ChangeTransition.SUBMIT, change, actor)
    problems = _schedule_problems(change.planned_start, change.planned_end)
    moment = now()
    if change.planned_end <= moment:
        problems.append("the planned schedule is already over")
    if not change.services.exists() and not change.configuration_items.exists():
        problems.append("name the services or CIs the change affects")
    if not change.title.strip():
        problems.append("give the change a title")
    template = change.template
    if change.change_type == ChangeType.STANDARD and (template is None or not template.pre_approved):
        problems.append(f"template {template} is no longer active and pre-approved")
    problems += _lead_time_problems(change, moment)
    ensure_conditions(f"Change {change.number} cannot be submitted", problems)
    state_move(change, ChangeTransition.SUBMIT, actor=actor, entity="change")
    if change.change_type == ChangeType.STANDARD:
        reason = f"standard change: template {template.name!r} pre-approved by {template.approved_by}"
        return state_move(change, ChangeTransition.PREAPPROVE, actor=actor, entity="change", reason=reason)
    notification_send(
        recipients=change_approver_candidates(change),
        kind=APPROVAL_AWAITED,
        subject=f"Change {change.number} ({change.get_change_type_display()}) awaits your decision",
        body=change.title,
        target=change,
        link=change.get_absolute_url(),
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
    assessment = bounded_text(assessment, "the assessment")
    change = locked(change)
    action_ensure(CHANGE_ACTIONS, ChangeTransition.ASSESS, change, actor)
    data = {name: value for name, value in (("risk", risk), ("impact", impact)) if value is not None}
    changes = apply_changes(change, data, ("risk", "impact"))
    change.assessment = assessment
    validated(change)
    return state_move(
        change, ChangeTransition.ASSESS, actor=actor, entity="change", reason=assessment, changes=changes or None
    )


# --- deciding -------------------------------------------------------------------------------------


def _decide(change: ChangeRecord, actor: User, decision: Decision, reason: str) -> ChangeRecord:
    change = locked(change)
    transition = ChangeTransition.APPROVE if decision == Decision.APPROVED else ChangeTransition.REJECT
    action_ensure(CHANGE_ACTIONS, transition, change, actor)
    if decision == Decision.APPROVED:
        problems = [] if change.planned_end > now() else ["the planned schedule is already over: re-plan it"]
        problems += _lead_time_problems(change, change.submitted_at or now())
        ensure_conditions(f"Change {change.number} cannot be approved", problems)
    decision_record(actor=actor, decision=decision, reason=reason, change=change)
    return state_move(change, transition, actor=actor, entity="change", reason=reason)


@transaction.atomic
def change_approve(*, change: ChangeRecord, actor: User, reason: str = "") -> ChangeRecord:
    """Approve an assessed change (Change Approvers for normal, Emergency Approvers for emergency changes).
    A normal change must have been asked for at least its lead time ahead.
    """
    return _decide(change, actor, Decision.APPROVED, bounded_text(reason, "the reason for approving"))


@transaction.atomic
def change_reject(*, change: ChangeRecord, actor: User, reason: str) -> ChangeRecord:
    """Refuse an assessed change; the reason is mandatory."""
    return _decide(change, actor, Decision.REJECTED, require_text(reason, "the reason for rejecting the change"))


# --- carrying out (called by the deployment engine) ----------------------------------------------


@transaction.atomic
def change_schedule(*, change: ChangeRecord, actor: User | None = None) -> ChangeRecord:
    """A deployment under this change was scheduled."""
    change = locked(change)
    action_ensure(CHANGE_ACTIONS, ChangeTransition.SCHEDULE, change, actor)
    problems = [] if change.planned_end > now() else ["the planned schedule is already over"]
    ensure_conditions(f"Change {change.number} cannot be scheduled", problems)
    return state_move(change, ChangeTransition.SCHEDULE, actor=actor, entity="change")


@transaction.atomic
def change_start(*, change: ChangeRecord, actor: User | None = None, at: datetime | None = None) -> ChangeRecord:
    """The deployment under this change started, within the change's schedule."""
    change = locked(change)
    action_ensure(CHANGE_ACTIONS, ChangeTransition.START, change, actor)
    at = at or now()
    problems = [] if change.covers(at) else [f"the schedule does not cover {at:%Y-%m-%d %H:%M %Z}"]
    ensure_conditions(f"Change {change.number} cannot start", problems)
    return state_move(change, ChangeTransition.START, actor=actor, entity="change")


@transaction.atomic
def change_complete(
    *, change: ChangeRecord, actor: User | None = None, outcome: ChangeOutcome | str, reason: str = ""
) -> ChangeRecord:
    """The deployment ended: implemented, failed or backed out."""
    outcome = ChangeOutcome(outcome)
    reason = bounded_text(reason, "the reason")
    change = locked(change)
    transition = OUTCOME_TRANSITIONS[outcome]
    action_ensure(CHANGE_ACTIONS, transition, change, actor)
    return state_move(change, transition, actor=actor, entity="change", reason=reason)


@transaction.atomic
def change_review(*, change: ChangeRecord, actor: User | None, notes: str) -> ChangeRecord:
    """Record the post-implementation review (mandatory for emergency changes and failed ones)."""
    notes = require_text(notes, "the review notes")
    change = locked(change)
    action_ensure(CHANGE_ACTIONS, ChangeTransition.REVIEW, change, actor)
    change.review_notes = notes
    return state_move(change, ChangeTransition.REVIEW, actor=actor, entity="change", reason=notes)


@transaction.atomic
def change_close(*, change: ChangeRecord, actor: User | None, reason: str = "") -> ChangeRecord:
    """Close the change: after its review, or straight after a successful implementation when no review is
    required (emergency changes always are reviewed first).
    """
    reason = bounded_text(reason, "the reason for closing")
    change = locked(change)
    action_ensure(CHANGE_ACTIONS, ChangeTransition.CLOSE, change, actor)
    problems = []
    if change.state == ChangeState.IMPLEMENTED and change.requires_review:
        problems.append("an emergency change is reviewed before it closes")
    ensure_conditions(f"Change {change.number} cannot close", problems)
    return state_move(change, ChangeTransition.CLOSE, actor=actor, entity="change", reason=reason)


# --- freeze overrides -----------------------------------------------------------------------------


@transaction.atomic
def freeze_override(
    *,
    change: ChangeRecord,
    actor: User,
    reason: str,
    freeze: FreezePeriod | None = None,
    outside_windows: bool = False,
) -> FreezeOverride:
    """An Emergency Approver lets one change deploy despite a freeze (one freeze, or every freeze over its
    schedule), with a mandatory reason. The override is recorded, audited, and scoped to the change's
    schedule as it stands now. A change that no freeze touches has nothing to override: refused.

    ``outside_windows`` also lets an emergency change of an emergency release deploy when no release window
    is open (then no freeze need overlap); a normal or standard change may never.
    """
    reason = require_text(reason, "the reason for overriding the freeze")
    change = locked(change)
    action_ensure(CHANGE_ACTIONS, "override_freeze", change, actor)
    freezes = list(change_freezes(change))
    problems = []
    window = f"{change.planned_start:%Y-%m-%d %H:%M %Z} to {change.planned_end:%Y-%m-%d %H:%M %Z}"
    if freeze is not None and freeze not in freezes:
        problems.append(f"freeze {freeze} does not overlap the change's schedule ({window}) on its services")
    elif not freezes and not outside_windows:
        problems.append(f"no freeze overlaps the change's schedule ({window}) on its services: nothing to override")
    if outside_windows and not change.may_deploy_outside_windows:
        problems.append(
            f"only an emergency change of an emergency release may deploy outside the release windows; "
            f"{change.number} is a {change.get_change_type_display().lower()} change"
            + (f" of a {change.release.get_release_type_display().lower()} release" if change.release else "")
        )
    ensure_conditions("The freeze cannot be overridden", problems)
    override = FreezeOverride(
        change=change,
        freeze=freeze,
        reason=reason,
        outside_windows=outside_windows,
        granted_by=actor,
        valid_from=change.planned_start,
        valid_until=change.planned_end,
    )
    validated(override)
    override.save()
    lifted = []
    if freezes:
        every = f"every freeze over its schedule ({', '.join(map(str, freezes))})"
        lifted.append(f"freeze {freeze}" if freeze else every)
    if outside_windows:
        lifted.append("the release windows")
    what = " and ".join(lifted)
    transition_record(actor=actor, action="change.override_freeze", target=change, reason=f"{what}: {reason}")
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
    "change_template_create",
    "change_template_update",
    "change_update",
    "freeze_override",
]
