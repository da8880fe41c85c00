"""What a deployment's lifecycle does to other records: the release and change follow a production rollout,
and a production success updates the CMDB (DESIGN.md "How the records relate").

Called inside the transaction of the deployment transition. A refusal from the other side (a release
that is not in the state this expects) is logged and does not undo the rollout's own state: the rollout
happened, whatever the paperwork says.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

from deployments.choices import DeploymentState
from deployments.models import Deployment
from rdm_site.exceptions import DomainError

logger = logging.getLogger(__name__)


def is_production(deployment: Deployment) -> bool:
    from cmdb.choices import EnvironmentTier

    return deployment.environment.tier == EnvironmentTier.PRODUCTION


def _follow(what: str, deployment: Deployment, action: Callable[[], object]) -> None:
    try:
        with transaction.atomic():
            action()
    except DomainError as error:
        logger.warning("deployment %s: could not %s: %s", deployment.pk, what, error)


def deployment_scheduled(deployment: Deployment, actor) -> None:
    """The change is scheduled with its deployment."""


def deployment_started(deployment: Deployment, actor) -> None:
    """In production the release is deploying and the change implementing."""


def deployment_ended(deployment: Deployment) -> None:
    """The release and change record the outcome; a production success updates the CMDB."""
    if deployment.state == DeploymentState.SUCCEEDED and is_production(deployment):
        on_production_success(deployment)


def on_production_success(deployment: Deployment) -> None:
    """CI versions become the deployed version, a post-release baseline is taken, and (later) ELS starts."""
    _follow("update the CMDB", deployment, lambda: ci_versions_record(deployment))
    _follow("take the post-release baseline", deployment, lambda: baseline_after(deployment))
    early_life_support_start(deployment)


def deployed_cis(deployment: Deployment) -> list:
    """The CIs that now run the deployed version: the deployment's targets."""
    from cmdb.models import ConfigurationItem

    return list(
        ConfigurationItem.objects.filter(
            deployment_target__steps__deployment=deployment, deployment_target__steps__state="succeeded"
        ).distinct()
    )


def ci_versions_record(deployment: Deployment) -> None:
    from cmdb.services import ci_update

    if not deployment.version:
        return
    for ci in deployed_cis(deployment):
        if ci.version != deployment.version:
            ci_update(ci=ci, actor=None, data={"version": deployment.version}, reason=f"deployed by {deployment}")


def baseline_after(deployment: Deployment) -> None:
    from cmdb.models import ConfigurationItem
    from cmdb.services import baseline_take

    cis = ConfigurationItem.objects.filter(service=deployment.service, environment=deployment.environment)
    baseline_take(
        name=f"after deployment #{deployment.pk} ({deployment.service} {deployment.version})".replace(" )", ")"),
        actor=None,
        reason=f"post-release baseline of {deployment}",
        cis=list(cis),
    )


def early_life_support_start(deployment: Deployment) -> None:
    """The hook where Early Life Support will start (not built yet)."""
