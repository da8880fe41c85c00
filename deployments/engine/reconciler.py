"""The reconciler: what came due or lost its worker is advanced again (Celery beat runs it)."""

from __future__ import annotations

import logging

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from deployments.choices import (
    DEPLOYMENT_TERMINAL_STATES,
    DeploymentState,
    PauseKind,
)
from deployments.engine.base import (
    OPEN,
)
from deployments.models import Deployment, Step

logger = logging.getLogger(__name__)


def deployments_reconcile() -> dict[str, int]:
    """Start scheduled deployments whose time came, and advance those with something due or lost.

    Run by Celery beat every ``RDM_RECONCILE_SECONDS``; safe to run at any time, as often as wished.
    """
    from deployments.services import deployment_start
    from deployments.tasks import deployment_advance_task
    from rdm_site.exceptions import DomainError

    now = timezone.now()
    started = 0
    for deployment in Deployment.objects.filter(state=DeploymentState.SCHEDULED, scheduled_for__lte=now):
        try:
            deployment_start(deployment=deployment, actor=None, reason="its scheduled time came")
            started += 1
        except DomainError as error:
            logger.info("scheduled deployment %s cannot start yet: %s", deployment.pk, error)
    stale = Step.objects.filter(deployment=OuterRef("pk"), state__in=OPEN).filter(
        Q(lease_expires_at__lt=now) | Q(lease_owner="", due_at__lte=now)
    )
    moving = Q(state__in=[DeploymentState.QUEUED, DeploymentState.RUNNING, DeploymentState.ROLLING_BACK])
    intervention = Q(state=DeploymentState.PAUSED, pause_kind=PauseKind.INTERVENTION)
    due = (moving | intervention) & (Q(due_at__lte=now) | Exists(stale))
    ended = Q(state__in=DEPLOYMENT_TERMINAL_STATES) & Exists(stale)
    ids = list(Deployment.objects.filter(due | ended).values_list("id", flat=True))
    for deployment_id in ids:
        deployment_advance_task.delay(deployment_id)
    return {"started": started, "advanced": len(ids)}
