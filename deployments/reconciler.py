"""The reconciler: what came due or lost its worker is advanced again (Celery beat runs it).

It looks only at what can need it, through indexes: deployments under way whose next check came due, and
the open steps whose lease ran out or whose wait came due (a finished deployment with such a step left has
it skipped). Finished deployments whose steps are all closed are never read, however many there are.
"""

from __future__ import annotations

import logging

from django.db.models import Q
from django.utils import timezone

from deployments.choices import DEPLOYMENT_TERMINAL_STATES, STEP_OPEN_STATES, DeploymentState, PauseKind
from deployments.models import Deployment, Step
from deployments.queue import advance_after_commit
from deployments.services import deployment_start
from rdm_site.exceptions import DomainError

logger = logging.getLogger(__name__)

# Deployments the engine moves by itself (a paused one only while a manual intervention waits).
MOVING_STATES = [DeploymentState.QUEUED, DeploymentState.RUNNING, DeploymentState.ROLLING_BACK]


def _moving(prefix: str = "") -> Q:
    return Q(**{f"{prefix}state__in": MOVING_STATES}) | Q(
        **{f"{prefix}state": DeploymentState.PAUSED, f"{prefix}pause_kind": PauseKind.INTERVENTION}
    )


def deployments_reconcile() -> dict[str, int]:
    """Start scheduled deployments whose time came, and advance those with something due or lost.

    Run by Celery beat every ``RDM_RECONCILE_SECONDS``; safe to run at any time, as often as wished.
    """
    now = timezone.now()
    started = 0
    for deployment in Deployment.objects.filter(state=DeploymentState.SCHEDULED, scheduled_for__lte=now):
        try:
            deployment_start(deployment=deployment, actor=None, reason="its scheduled time came")
            started += 1
        except DomainError as error:
            logger.info("scheduled deployment %s cannot start yet: %s", deployment.pk, error)
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
    return {"started": started, "advanced": len(ids)}
