"""Decisions on release plans and change records: recording them, and withdrawing them when what was
approved changes.

Each approver counts once per record (a row lock on the subject serialises deciders; a partial unique
constraint catches what slips past it). A withdrawn decision is kept, stamped with when and why, so the
history shows what was approved and why it no longer counts.
"""

from collections.abc import Iterable

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from rdm_site.actions import action_ensure
from rdm_site.domain import bounded_text, locked, now, require_text
from rdm_site.notifications import notification_send
from rdm_site.transitions import transition_record
from releases.actions import RELEASE_ACTIONS
from releases.choices import RELEASE_APPROVED_STATES, Decision, ReleaseTransition
from releases.exceptions import AlreadyDecided
from releases.models import Approval, ChangeRecord, Release
from releases.selectors import change_active_approvals, release_active_approvals
from releases.services._state import state_move

APPROVAL_AWAITED = "approval.awaited"
APPROVAL_WITHDRAWN = "approval.withdrawn"
RELEASE_REJECTED = "release.rejected"


def approvals_withdraw(
    *,
    actor: User | None,
    reason: str,
    release: Release | None = None,
    change: ChangeRecord | None = None,
    approvers: Iterable[User] | None = None,
) -> list[Approval]:
    """Withdraw the active decisions on a release plan or a change (all, or those of ``approvers``), visibly:
    each row keeps its decision and gains withdrawn_at and the reason, is audited, and its approver is
    told. An approved or ready release goes back to submitted, to be approved again (when all were
    withdrawn, or fewer than the quorum remain); a change's caller re-opens it.

    Call inside the caller's transaction, with the subject locked.
    """
    subject = release if release is not None else change
    active = Approval.objects.select_for_update().filter(withdrawn_at__isnull=True)
    active = active.filter(release=release) if release is not None else active.filter(change=change)
    if approvers is not None:
        active = active.filter(approver__in=list(approvers))
    withdrawn = list(active.select_related("approver"))
    moment = now()
    for approval in withdrawn:
        approval.withdrawn_at, approval.withdrawn_reason = moment, reason
        approval.save(update_fields=["withdrawn_at", "withdrawn_reason"])
        transition_record(
            actor=actor,
            action="approval.withdraw",
            target=approval,
            object_repr=f"{approval.get_decision_display()} by {approval.approver.get_username()} on {subject}",
            reason=reason,
        )
    if release is not None and withdrawn and release.state in RELEASE_APPROVED_STATES:
        short_of_quorum = release_active_approvals(release).count() < release.policy.approvals_required
        if approvers is None or short_of_quorum:
            state_move(
                release,
                ReleaseTransition.REOPEN_APPROVAL,
                actor=actor,
                entity="release",
                reason=f"approvals withdrawn: {reason}",
            )
    if withdrawn:
        notification_send(
            recipients=[approval.approver for approval in withdrawn],
            kind=APPROVAL_WITHDRAWN,
            subject=f"Your decision on {subject._meta.verbose_name} {subject} was withdrawn",
            body=f"Reason: {reason}. Please review it again.",
            target=subject,
            link=subject.get_absolute_url(),
            actor=actor,
        )
    return withdrawn


def decision_record(
    *, actor: User, decision: Decision, reason: str, release: Release | None = None, change: ChangeRecord | None = None
) -> Approval:
    """Record one person's decision on a locked release plan or change; each approver counts once."""
    subject = release if release is not None else change
    label = f"{subject._meta.verbose_name} {change.number if change is not None else release}"
    if release is not None:
        existing = release_active_approvals(release, decision=None).filter(approver=actor).first()
        roles = actor.groups.filter(name__in=release.policy.approver_roles).values_list("name", flat=True)
        role = ", ".join(sorted(roles))  # the policy's roles the approver decided in
    else:
        existing, role = change_active_approvals(change).filter(approver=actor).first(), ""
    if existing is not None:
        raise AlreadyDecided(
            f"{actor.get_username()} already {existing.get_decision_display().lower()} {label} "
            f"at {existing.decided_at:%Y-%m-%d %H:%M}; each approver counts once."
        )
    try:
        with transaction.atomic():
            approval = Approval.objects.create(
                approver=actor,
                release=release,
                change=change,
                decision=decision,
                reason=reason,
                role=role,
            )
    except IntegrityError:
        raise AlreadyDecided(f"{actor.get_username()} already decided on {label}; each approver counts once.") from None
    transition_record(actor=actor, action=f"approval.{decision}", target=approval, reason=reason)
    return approval


@transaction.atomic
def release_approve(*, release: Release, actor: User, reason: str = "") -> Approval:
    """Record one approval of the plan; when the distinct approvers reach the policy's quorum, the release
    is approved. Each approver counts once, however often they press the button.
    """
    reason = bounded_text(reason, "the reason for approving")
    release = locked(release)
    action_ensure(RELEASE_ACTIONS, ReleaseTransition.APPROVE, release, actor)
    approval = decision_record(actor=actor, decision=Decision.APPROVED, reason=reason, release=release)
    approvers = [approval.approver.get_username() for approval in release_active_approvals(release)]
    if len(approvers) >= release.policy.approvals_required:
        quorum = f"quorum reached: {', '.join(approvers)}"
        state_move(release, ReleaseTransition.APPROVE, actor=actor, entity="release", reason=quorum)
    return approval


@transaction.atomic
def release_reject(*, release: Release, actor: User, reason: str) -> Approval:
    """One approver's refusal sends the plan back (rejected → re-plan); the reason is mandatory."""
    reason = require_text(reason, "the reason for rejecting the release plan")
    release = locked(release)
    action_ensure(RELEASE_ACTIONS, ReleaseTransition.REJECT, release, actor)
    approval = decision_record(actor=actor, decision=Decision.REJECTED, reason=reason, release=release)
    state_move(release, ReleaseTransition.REJECT, actor=actor, entity="release", reason=reason)
    notification_send(
        recipients=[release.release_manager],
        kind=RELEASE_REJECTED,
        subject=f"Release {release} was rejected by {actor.get_username()}",
        body=reason,
        target=release,
        link=release.get_absolute_url(),
        actor=actor,
    )
    return approval


__all__ = ["approvals_withdraw", "decision_record", "release_approve", "release_reject"]
