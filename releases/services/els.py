"""Early life support of a release: it starts after a successful production deployment and exits into
the post-implementation review (``releases.services.review``).
"""

from datetime import timedelta

from django.contrib.auth.models import User
from django.db import transaction

from cmdb.choices import EnvironmentTier
from rdm_site.actions import action_ensure
from rdm_site.domain import bounded_text, ensure_conditions, locked, now
from releases.actions import RELEASE_ACTIONS
from releases.checklist import checklist_evaluate, els_plan
from releases.choices import GateCode, ReleaseTransition
from releases.models import Release
from releases.services._state import state_move
from releases.services.review import review_open


@transaction.atomic
def release_els_start(*, release: Release, actor: User | None = None) -> Release:
    """Early life support begins after a successful production deployment; it needs an ELS plan
    (staff and exit criteria; the policy's defaults count).
    """
    release = locked(release)
    action_ensure(RELEASE_ACTIONS, ReleaseTransition.START_ELS, release, actor)
    gate = checklist_evaluate(release, EnvironmentTier.PRODUCTION).gate(GateCode.ELS_SCHEDULED)
    ensure_conditions(f"Early life support of {release} cannot start", [] if gate.satisfied else [gate.status])
    return state_move(release, ReleaseTransition.START_ELS, actor=actor, entity="release")


@transaction.atomic
def release_review_start(*, release: Release, actor: User | None = None, reason: str = "") -> Release:
    """ELS exits and the post-implementation review falls due (opened, pre-filled, for the service owner),
    once the minimum ELS duration has passed.

    The incident-based exit criteria are the deployments app's to evaluate before it calls this.
    """
    reason = bounded_text(reason, "the reason for exiting early life support")
    release = locked(release)
    action_ensure(RELEASE_ACTIONS, ReleaseTransition.START_REVIEW, release, actor)
    _, _, minimum, _ = els_plan(release)
    problems = []
    if release.els_started_at is not None:
        earliest = release.els_started_at + timedelta(days=minimum)
        if now() < earliest:
            problems.append(f"ELS lasts at least {minimum} day(s): it may exit from {earliest:%Y-%m-%d %H:%M %Z}")
    ensure_conditions(f"Early life support of {release} cannot exit yet", problems)
    state_move(release, ReleaseTransition.START_REVIEW, actor=actor, entity="release", reason=reason)
    review_open(release=release, actor=actor)
    return release


__all__ = ["release_els_start", "release_review_start"]
