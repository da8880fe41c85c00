"""What release governance (``releases``) says about a deployment: eligibility, change, windows and freezes.

The engine and the services ask here, never ``releases`` directly, so that the rules of the governed
lifecycle stay in ``releases`` and this module only adapts them to a deployment:

- production: ``production_deployment_eligible`` (approved change covering the moment, plan approved,
  package validated, the production checklist, windows and freezes), and the deployment must name the
  change it implements;
- other tiers: a built or validated package (when there is one) and the gates the policy requires for
  the tier (``checklist_evaluate``), and the windows and freezes (``deployment_permitted``);
- a rollback redeploying an earlier package (one that ``replaces`` a success): its change and the windows and
  freezes (``redeploy_conditions``); that package's release passed its checklist when it first ran there;
- before each wave: windows and freezes only, so that a freeze beginning mid-rollout pauses it.
"""

from __future__ import annotations

from datetime import datetime

from deployments.models import Deployment


def _production(deployment: Deployment) -> bool:
    from cmdb.choices import EnvironmentTier

    return deployment.environment.tier == EnvironmentTier.PRODUCTION


def _override(deployment: Deployment):
    """The latest freeze override granted for the deployment's change (an emergency approver's decision)."""
    if deployment.change_id is None:
        return None
    return deployment.change.freeze_overrides.select_related("change", "granted_by").first()


def production_checklist(deployment: Deployment):
    """The go/no-go checklist of a production deployment's release (None elsewhere, or without a package):
    evaluated once when a deployment starts, for its conditions and for the release that starts deploying.
    """
    from releases.checklist import checklist_evaluate

    if deployment.package_id is None or not _production(deployment) or deployment.replaces_id:
        return None
    return checklist_evaluate(deployment.package.release, deployment.environment.tier)


def deployment_conditions(deployment: Deployment, at: datetime, checklist=None) -> list[str]:
    """Unmet conditions to schedule or start ``deployment`` at ``at`` (``checklist``: see ``production_checklist``)."""
    from releases.checklist import checklist_evaluate
    from releases.choices import PackageState
    from releases.scheduling import production_deployment_eligible

    problems: list[str] = []
    package = deployment.package
    if deployment.replaces_id:
        return redeploy_conditions(deployment, at)
    if _production(deployment):
        if package is None:
            problems.append("a production deployment deploys a release package: name one")
        if deployment.change_id is None:
            problems.append("a production deployment names the approved change it implements")
        if package is not None:
            problems += production_deployment_eligible(
                package.release,
                deployment.environment,
                at,
                change=deployment.change,
                override=_override(deployment),
                checklist=checklist,
            )
        else:
            problems += window_conditions(deployment, at)
    else:
        if package is not None:
            if package.state not in (PackageState.BUILT, PackageState.VALIDATED):
                problems.append(f"the package {package} is {package.get_state_display().lower()}, not built")
            problems += checklist_evaluate(package.release, deployment.environment.tier).unmet_messages
        problems += window_conditions(deployment, at)
    return list(dict.fromkeys(problems))


def redeploy_conditions(deployment: Deployment, at: datetime) -> list[str]:
    """A rollback redeploying an earlier package (``deployments.redeploy``): the package's release already went
    through its checklist when it first ran there, so only the change (``redeploy_change_conditions``), the
    windows and the freezes are checked."""
    problems = []
    if _production(deployment) and deployment.change_id is None:
        problems.append("a rollback in production names the change it carries out: the replaced one, or an emergency")
    problems += redeploy_change_conditions(deployment.replaces, deployment.change)
    return [*problems, *window_conditions(deployment, at)]


def redeploy_change_conditions(replaced: Deployment, change=None) -> list[str]:
    """Under which change ``replaced`` may be rolled back: its own while approved or implemented (backing a change
    out is part of it; its schedule must still cover the moment, which the windows check), or ``change``, an
    approved emergency change."""
    from releases.choices import CHANGE_AUTHORISED_STATES, ChangeState, ChangeType

    if change is None or change.pk == replaced.change_id:
        own = replaced.change
        if own is None or own.state in (*CHANGE_AUTHORISED_STATES, ChangeState.IMPLEMENTED):
            return []
        return [
            f"change {own.number} is {own.get_state_display().lower()}: roll back under an approved emergency change"
        ]
    problems = []
    if change.change_type != ChangeType.EMERGENCY:
        problems.append(
            f"change {change.number} is {change.change_type}: a rollback under another change needs an emergency one"
        )
    if change.state not in CHANGE_AUTHORISED_STATES:
        problems.append(f"change {change.number} is {change.get_state_display().lower()}, not approved")
    return problems


def window_conditions(deployment: Deployment, at: datetime) -> list[str]:
    """Unmet window and freeze conditions at ``at`` (and the change's schedule, when there is a change)."""
    from releases.scheduling import deployment_permitted

    permission = deployment_permitted(
        [deployment.service], deployment.environment, at, change=deployment.change, override=_override(deployment)
    )
    return permission.reasons


def window_opening(deployment: Deployment, at: datetime) -> tuple[datetime, str] | None:
    """When no window serving the deployment is open at ``at``: when the next one opens, and that time as it
    reads in the window's zone (None when a window is open, or none will open)."""
    from releases.scheduling import next_window_opening

    return next_window_opening(deployment.service, deployment.environment, at)


def irreversible_units(deployment: Deployment) -> list[str]:
    """The release's units that cannot be rolled back and concern this service (or name no CI at all)."""
    if deployment.package_id is None:
        return []
    units = deployment.package.release.units.filter(reversible=False).prefetch_related("configuration_items")
    return [
        str(unit)
        for unit in units
        if not unit.configuration_items.all()
        or any(ci.service_id == deployment.service_id for ci in unit.configuration_items.all())
    ]
