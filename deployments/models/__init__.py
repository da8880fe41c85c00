"""Deployment processes, their variables and targets, and the rollouts the engine runs from them.

The database is the truth about a rollout (DESIGN.md "Execution"): Celery messages only say "advance
deployment X" or "run steps Y"; every write about a running deployment locks its Deployment row first
(``deployments.engine``), so the deployment lock orders every transaction and no two of them deadlock.
Writes go through ``deployments.services`` and ``deployments.engine``, reads through ``deployments.selectors``.
``process`` holds how a service is deployed, ``rollout`` what a deployment runs, ``incident`` what went wrong
in a live service, ``els`` the watch kept after a production success, ``promotion`` a package's way through
the environments.
"""

from deployments.models.els import EarlyLifeSupport
from deployments.models.incident import Incident
from deployments.models.process import (
    DeploymentProcess,
    StepTemplate,
    Target,
    Variable,
    validate_executor_name,
    validate_health_checks,
    validate_json_object,
)
from deployments.models.promotion import Promotion, PromotionStage
from deployments.models.rollout import (
    Deployment,
    DeploymentEvent,
    DeploymentLock,
    FsmRefreshMixin,
    Step,
    StepLog,
    Wave,
)

# (the migrations name the mixin and the validators here)
__all__ = [
    "Deployment",
    "DeploymentEvent",
    "DeploymentLock",
    "DeploymentProcess",
    "EarlyLifeSupport",
    "FsmRefreshMixin",
    "Incident",
    "Promotion",
    "PromotionStage",
    "Step",
    "StepLog",
    "StepTemplate",
    "Target",
    "Variable",
    "Wave",
    "validate_executor_name",
    "validate_health_checks",
    "validate_json_object",
]
