"""The reconciler: what came due or lost its worker is advanced again (Celery beat runs it).

It looks only at what can need it, through indexes: deployments under way whose next check came due, and
the open steps whose lease ran out or whose wait came due (a finished deployment with such a step left has
it skipped). Finished deployments whose steps are all closed are never read, however many there are. It also
moves on the promotions whose stage's deployment ended without its follow message arriving
(``promotions.promotions_follow_lost``).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from deployments import governance, promotions
from deployments.choices import DEPLOYMENT_TERMINAL_STATES, STEP_OPEN_STATES, DeploymentState, PauseKind
from deployments.models import Deployment, Step
from deployments.queue import advance_after_commit
from deployments.services import deployment_start, deployment_wait_record
from rdm_site.exceptions import DomainError

# Deployments the engine moves by itself (a paused one only while a manual intervention waits).
MOVING_STATES = [DeploymentState.QUEUED, DeploymentState.RUNNING, DeploymentState.ROLLING_BACK]


def _moving(prefix: str = "") -> Q:
    return Q(**{f"{prefix}state__in": MOVING_STATES}) | Q(
        **{f"{prefix}state": DeploymentState.PAUSED, f"{prefix}pause_kind": PauseKind.INTERVENTION}
    )


def scheduled_start(deployment: Deployment, now: datetime) -> bool:
    """Start a scheduled deployment whose time came. When it cannot, it records why once: waiting for its
    window to open (not tried again before then), or the conditions still unmet (tried each period)."""
    try:
        deployment_start(deployment=deployment, actor=None, reason="its scheduled time came")
        return True
    except DomainError as error:
        opening = governance.window_opening(deployment, now)
        if opening is None:
            deployment_wait_record(deployment=deployment, wait=f"cannot start yet: {error}")
        else:
            opens_at, local = opening
            wait = f"waits for the window opening at {local}"
            deployment_wait_record(deployment=deployment, wait=wait, not_before=opens_at)
        return False


def deployments_reconcile(now: datetime | None = None) -> dict[str, int]:
    """Start scheduled deployments whose time came, advance those with something due or lost, and move on the
    promotions whose follow message was lost.

    Run by Celery beat every ``RDM_RECONCILE_SECONDS``; safe to run at any time, as often as wished.
    """
    now = now or timezone.now()
    scheduled = Deployment.objects.filter(state=DeploymentState.SCHEDULED, scheduled_for__lte=now).filter(
        Q(start_not_before__isnull=True) | Q(start_not_before__lte=now)
    )
    started = sum(scheduled_start(deployment, now) for deployment in scheduled)
    # two index scans: deployments whose check came due, and open steps whose lease ran out or wait came due
    due = Deployment.objects.filter(_moving(), due_at__lte=now).values_list("id", flat=True)
    lost = (
        Step.objects.filter(state__in=STEP_OPEN_STATES)
        .filter(Q(lease_expires_at__lt=now) | Q(lease_owner="", due_at__lte=now))
        .filter(_moving("deployment__") | Q(deployment__state__in=DEPLOYMENT_TERMINAL_STATES))
        .order_by()
        .values_list("deployment_id", flat=True)
        .distinct()
    )
    ids = sorted({*due, *lost})
    for deployment_id in ids:
        advance_after_commit(deployment_id)
    return {"started": started, "advanced": len(ids), "promoted": promotions.promotions_follow_lost(now)}
