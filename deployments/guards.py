"""Conditions that read other rows, evaluated by the services (and the engine before each wave).

Each function returns every unmet condition at once, as sentences; an empty list means "go".
Governance (change records, the go/no-go checklist, windows and freezes) comes from ``releases``.
"""

from __future__ import annotations

from datetime import datetime

from deployments import governance
from deployments.choices import StepKind
from deployments.models import Deployment, DeploymentLock, Target


def targets_conditions(deployment: Deployment) -> list[str]:
    """Every planned target is still an enabled, live CI: the CMDB never runs on imaginary servers."""
    from cmdb.choices import CiState

    problems = []
    targets = Target.objects.filter(steps__deployment=deployment, steps__kind=StepKind.DEPLOY).distinct()
    for target in targets.select_related("ci"):
        if target.ci.state != CiState.LIVE:
            problems.append(f"target {target.ci.name} is {target.ci.get_state_display().lower()}, not live")
        elif not target.enabled:
            problems.append(f"target {target.ci.name} is disabled")
    return problems


def lock_conditions(deployment: Deployment) -> list[str]:
    """One active deployment per service and environment."""
    holder = (
        DeploymentLock.objects.filter(service_id=deployment.service_id, environment_id=deployment.environment_id)
        .exclude(deployment=deployment)
        .select_related("deployment")
        .first()
    )
    if holder is None:
        return []
    return [
        f"deployment #{holder.deployment_id} of {deployment.service} is already active in "
        f"{deployment.environment} (since {holder.taken_at:%Y-%m-%d %H:%M} UTC); one at a time"
    ]


def schedule_conditions(deployment: Deployment, at: datetime) -> list[str]:
    return [*targets_conditions(deployment), *governance.deployment_conditions(deployment, at)]


def start_conditions(deployment: Deployment, now: datetime, checklist=None) -> list[str]:
    return [
        *lock_conditions(deployment),
        *targets_conditions(deployment),
        *governance.deployment_conditions(deployment, now, checklist),
    ]


def wave_conditions(deployment: Deployment, now: datetime) -> list[str]:
    """Before each wave: still inside a window and outside every freeze."""
    return governance.window_conditions(deployment, now)


def resume_conditions(deployment: Deployment, now: datetime) -> list[str]:
    return [*targets_conditions(deployment), *governance.window_conditions(deployment, now)]
