"""Rolling back a release that succeeded: a new deployment of an earlier package that ``replaces`` the one that
runs now (DESIGN.md "State machines"; during Early Life Support, or any time after).

- Who: whoever runs the replaced deployment (``DEPLOYMENT_ACTIONS["roll_back_release"]``): a Deployment Manager;
  a Build/CI Engineer only a continuous deployment under a standard change (or outside production).
- What: a package of the service that succeeded in that environment before the deployment it replaces. From a
  deployment, "the last good package": the newest such success before it. From "what runs where", any of them.
- Under: the replaced deployment's change, while it is approved or implemented and its schedule covers the
  moment (backing a change out is part of carrying it out), or an emergency change named for the rollback.
- Never past a unit that cannot be reversed: the rollback is refused, naming the replaced release's
  irreversible units (the rule the engine applies to a failed rollout, ``governance.irreversible_units``).
- The fast path (unless ``with_analysis``): the replaced deployment's waves without bake time or health-gate
  analysis, recorded on the new deployment (``fast_rollback``). Windows, freezes and the one-at-a-time lock still hold.
- A parallel (blue/green) deployment is replaced by taking traffic back to its standby set
  (``parallel.switched_back_plan``): a cutover-only deployment when the CMDB says that set still runs the restored
  version, otherwise the version is deployed there first; the set that ran the replaced version is never touched.
  Its success records which set serves (CI attribute ``traffic``) like any parallel deployment's.
- It is planned and started at once, in one transaction: a refusal leaves nothing behind. When it succeeds,
  ``effects`` restores the CI versions, rolls the replaced release back, backs its change out and ends its
  Early Life Support.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from deployments import engine, governance, parallel
from deployments.choices import DeploymentModel
from deployments.models import Deployment
from deployments.planning import targets_for
from deployments.selectors import current_deployment, last_good_package, redeployable_packages
from deployments.services import DEPLOYMENT_ACTIONS, RUN, RUN_CONTINUOUS, deployment_create, deployment_start
from rdm_site.actions import action_ensure
from rdm_site.domain import ensure_allowed, ensure_conditions, require_text
from rdm_site.exceptions import InvalidInput
from rdm_site.permissions import any_permission_problem


@transaction.atomic
def deployment_redeploy(
    *, service, environment, package, actor: User | None, reason: str, change=None, with_analysis: bool = False
) -> Deployment:
    """Redeploy ``package`` (one that succeeded there before) to ``environment``, replacing what runs there now."""
    ensure_allowed(any_permission_problem(actor, [RUN, RUN_CONTINUOUS], f"roll back {service} in {environment}"))
    replaced = current_deployment(service, environment)
    if replaced is None:
        raise InvalidInput(f"No package of {service} runs in {environment}: there is nothing to roll back.")
    return _redeploy(
        replaced=replaced, package=package, actor=actor, reason=reason, change=change, with_analysis=with_analysis
    )


@transaction.atomic
def deployment_roll_back_release(
    *,
    deployment: Deployment,
    actor: User | None,
    reason: str,
    package=None,
    change=None,
    with_analysis: bool = False,
) -> Deployment:
    """Roll back a deployment that succeeded: redeploy ``package``, by default the last good one before it."""
    return _redeploy(
        replaced=deployment, package=package, actor=actor, reason=reason, change=change, with_analysis=with_analysis
    )


def _redeploy(*, replaced: Deployment, package, actor, reason: str, change, with_analysis: bool) -> Deployment:
    """Check, plan and start the redeployment of ``package`` (None: the last good one) in place of ``replaced``."""
    replaced = engine.lock_deployment(replaced.pk)
    action_ensure(DEPLOYMENT_ACTIONS, "roll_back_release", replaced, actor)
    reason = require_text(reason, "why the release is rolled back")
    package = package or last_good_package(replaced)
    if package is None:
        raise InvalidInput(
            f"No earlier package succeeded in {replaced.environment} before {replaced}: there is nothing to go back "
            "to; fix forward."
        )
    problems = []
    current = current_deployment(replaced.service_id, replaced.environment_id)
    if current is not None and current.pk != replaced.pk:
        problems.append(f"{replaced} no longer runs there: deployment #{current.pk} replaced it")
    elif package.pk not in {earlier.pk for earlier in redeployable_packages(replaced)}:
        problems.append(f"the package {package} did not succeed in {replaced.environment} before {replaced}")
    irreversible = governance.irreversible_units(replaced)
    if irreversible:
        problems.append(
            f"{', '.join(irreversible)} cannot be reversed: redeploying {package.version} would not undo it"
        )
    problems += governance.redeploy_change_conditions(replaced, change)
    ensure_conditions(f"{replaced} cannot be rolled back to {package.version}", problems)
    phase_plan = replaced.phase_plan
    if replaced.model == DeploymentModel.PARALLEL:
        phase_plan = parallel.switched_back_plan(phase_plan, targets_for(replaced), package.version)
    redeployment = deployment_create(
        actor=actor,
        process=replaced.process,
        environment=replaced.environment,
        model=replaced.model,
        phase_plan=phase_plan,
        rollback_threshold=replaced.rollback_threshold,
        continuous=replaced.continuous,
        replaces=replaced,
        package=package,
        change=change or replaced.change,
        fast_rollback=not with_analysis,
    )
    return deployment_start(deployment=redeployment, actor=actor, reason=reason)
