"""What a deployment's lifecycle does to other records (DESIGN.md "How the records relate").

- The change follows a deployment that names one: ``scheduled`` when it is scheduled, ``implementing``
  when it starts, then ``implemented``, ``failed`` or ``backed_out``.
- The release follows its production deployment: ``deploying``, then ``deployed``, ``failed`` or
  ``rolled_back``. Deployments to lower tiers do not move the release.
- Every success updates the versions of the CIs it deployed, in its own environment ("what runs where" is
  true in every environment), and a parallel deployment's success records its set as the live one; a
  production success of a release also takes the post-release baseline and starts its Early Life Support
  (``on_production_success``). A rollback that redeployed an earlier package (``deployments.redeploy``) moves
  no release at its start; its success backs the replaced change out, rolls the replaced release back and ends
  that release's Early Life Support.
- A production deployment's start and end (succeeded, failed or aborted, rolled back) are notified to its
  requester, the release manager and the service owner; lower tiers notify nobody (pipelines deploy there
  all day, and their pages show the outcome).
- Every end stores DORA's facts of the deployment and of the one before it in its service and environment
  (``deployments.dora_facts``: where its change started, whether a hotfix followed it).

Called inside the transaction of the deployment transition, with RDM itself as the actor (the person who
acted is on the deployment's own audit event). At the start, a refusal from ``releases`` refuses the start.
At the end, a refusal does not undo the rollout's outcome (the rollout happened, whatever the paperwork
says): it is recorded on the deployment (``follow_up_problem``) and sent to its requester and the release
manager, who put the paperwork right.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

from deployments import parallel
from deployments.choices import DeploymentModel, DeploymentNotice, DeploymentState
from deployments.dora_facts import dora_facts_record
from deployments.models import Deployment
from deployments.planning import targets_for
from deployments.queue import queue_after_commit
from rdm_site.domain import shortened
from rdm_site.exceptions import DomainError

logger = logging.getLogger(__name__)

FOLLOW_UP_NOTICE = "deployment_follow_up_refused"


def is_production(deployment: Deployment) -> bool:
    from cmdb.choices import EnvironmentTier

    return deployment.environment.tier == EnvironmentTier.PRODUCTION


def _follow(what: str, deployment: Deployment, action: Callable[[], object]) -> None:
    try:
        with transaction.atomic():
            action()
    except DomainError as error:
        logger.warning("deployment %s: could not %s: %s", deployment.pk, what, error)
        follow_up_refused(deployment, f"could not {what}: {error}")


def follow_up_refused(deployment: Deployment, problem: str) -> None:
    """Record on the deployment why the paperwork did not follow it, and tell who must put it right."""
    from rdm_site.notifications import notification_send

    deployment.follow_up_problem = "\n".join(filter(None, [deployment.follow_up_problem, problem]))
    Deployment.objects.filter(pk=deployment.pk).update(follow_up_problem=deployment.follow_up_problem)
    release = deployment.package.release if deployment.package_id else None
    recipients = [user for user in (deployment.requested_by, release and release.release_manager) if user]
    notification_send(
        recipients=recipients,
        kind=FOLLOW_UP_NOTICE,
        subject=f"{deployment} ended {deployment.get_state_display().lower()}, but the records did not follow",
        body=f"{problem}\n\nThe rollout's outcome stands; the change or release needs to be put right by hand.",
        target=deployment,
    )


def _change_scheduled(deployment: Deployment) -> None:
    from releases.choices import ChangeState
    from releases.services import change_schedule

    if deployment.change_id and deployment.change.state == ChangeState.APPROVED:
        change_schedule(change=deployment.change, actor=None)
        deployment.change.refresh_from_db()


def deployment_scheduled(deployment: Deployment, actor) -> None:
    """The change is scheduled with its deployment."""
    _change_scheduled(deployment)


def deployment_started(deployment: Deployment, actor, checklist=None) -> None:
    """The change is implementing; in production the release is deploying (``checklist``: its production
    checklist, evaluated by the start just before)."""
    from releases.choices import ChangeState, ReleaseState
    from releases.services import change_start, release_deploying

    _change_scheduled(deployment)
    if deployment.change_id and deployment.change.state == ChangeState.SCHEDULED:
        change_start(change=deployment.change, actor=None)
    if is_production(deployment) and deployment.package_id and not deployment.replaces_id:
        release = deployment.package.release
        if release.state != ReleaseState.DEPLOYING:
            release_deploying(release=release, actor=None, checklist=checklist)
    if is_production(deployment):
        deployment_notify(deployment, DeploymentNotice.STARTED, actor)


# deployment state at its end -> notification kind
ENDING_NOTICES = {
    DeploymentState.SUCCEEDED: DeploymentNotice.SUCCEEDED,
    DeploymentState.FAILED: DeploymentNotice.FAILED,
    DeploymentState.ABORTED: DeploymentNotice.FAILED,
    DeploymentState.ROLLED_BACK: DeploymentNotice.ROLLED_BACK,
}


def deployment_notify(deployment: Deployment, kind: str, actor=None) -> None:
    """Tell the requester, the release manager and the service owner that the deployment started or ended."""
    from django.contrib.auth.models import User

    from rdm_site.notifications import notification_send

    release = deployment.package.release if deployment.package_id else None
    ids = [deployment.requested_by_id, release and release.release_manager_id, deployment.service.owner_id]
    verb = "started" if kind == DeploymentNotice.STARTED else deployment.get_state_display().lower()
    notification_send(
        recipients=User.objects.filter(pk__in=[pk for pk in ids if pk]),
        kind=kind,
        subject=f"Deployment {deployment} {verb}",
        body=deployment.outcome or (f"Release {release}." if release else ""),
        target=deployment,
        actor=actor,
    )


ENDINGS = {
    # deployment state: (change outcome, release service)
    DeploymentState.SUCCEEDED: ("implemented", "release_deployed"),
    DeploymentState.FAILED: ("failed", "release_failed"),
    DeploymentState.ABORTED: ("failed", "release_failed"),
    DeploymentState.ROLLED_BACK: ("backed_out", "release_rolled_back"),
}


def deployment_ended(deployment: Deployment) -> None:
    """The change and (in production) the release record the outcome; a success updates the CMDB."""
    from releases import services as release_services
    from releases.choices import ChangeState, ReleaseState

    if deployment.state not in ENDINGS:
        return
    dora_facts_record(deployment)
    outcome, release_service = ENDINGS[deployment.state]
    reason = shortened(deployment.outcome or f"deployment #{deployment.pk} {deployment.get_state_display().lower()}")
    if deployment.change_id and deployment.change.state == ChangeState.IMPLEMENTING:
        _follow(
            f"record change {deployment.change.number} {outcome}",
            deployment,
            lambda: release_services.change_complete(
                change=deployment.change,
                actor=None,
                outcome=outcome,
                reason=shortened(f"deployment #{deployment.pk}: {reason}"),
            ),
        )
    if is_production(deployment) and deployment.package_id:
        release = deployment.package.release
        if release.state == ReleaseState.DEPLOYING:
            service = getattr(release_services, release_service)
            extra = {} if deployment.state == DeploymentState.SUCCEEDED else {"reason": reason}
            _follow(f"record release {release} {outcome}", deployment, lambda: service(release=release, **extra))
    if deployment.state == DeploymentState.SUCCEEDED:
        _follow("update the CMDB", deployment, lambda: ci_versions_record(deployment))
        if deployment.model == DeploymentModel.PARALLEL:
            _follow(
                "record the live set in the CMDB",
                deployment,
                lambda: parallel.live_set_record(deployment, targets_for(deployment)),
            )
        if is_production(deployment):
            on_production_success(deployment)
    if is_production(deployment):
        deployment_notify(deployment, ENDING_NOTICES[deployment.state])
    promotion_follow(deployment)


PROMOTION_FOLLOW = "deployments.promotions.promotion_follow_task"


def promotion_follow(deployment: Deployment) -> None:
    """A continuous promotion moves on to its next stage, or stops, with the deployment of its current one: a
    task does it after this commits (starting a deployment is a service, above the engine that ends this one)."""
    if deployment.continuous:
        queue_after_commit(PROMOTION_FOLLOW, deployment.pk)


def on_production_success(deployment: Deployment) -> None:
    """A post-release baseline is taken, and the release's Early Life Support starts; a rollback that restored an
    earlier package instead rolls back the release it replaced (that package lived through its own watch). The CI
    versions are already updated."""
    _follow("take the post-release baseline", deployment, lambda: baseline_after(deployment))
    if deployment.replaces_id:
        replaced_release_rolled_back(deployment)
    else:
        early_life_support_start(deployment)


def replaced_release_rolled_back(deployment: Deployment) -> None:
    """The replaced deployment's change is backed out, its release rolled back, and its Early Life Support ends:
    the version it watched no longer runs."""
    from deployments.els import els_end_by_rollback
    from releases.choices import RELEASE_LIVE_STATES, ChangeOutcome, ChangeState
    from releases.services import change_complete, release_rolled_back

    replaced = deployment.replaces
    reason = shortened(f"deployment #{deployment.pk} rolled {replaced} back to {deployment.version}")
    if replaced.change_id and replaced.change.state == ChangeState.IMPLEMENTED:
        change = replaced.change
        _follow(
            f"record change {change.number} backed out",
            deployment,
            lambda: change_complete(change=change, actor=None, outcome=ChangeOutcome.BACKED_OUT, reason=reason),
        )
    if replaced.package_id and replaced.package.release.state in RELEASE_LIVE_STATES:
        release = replaced.package.release
        _follow(
            f"record release {release} rolled back",
            deployment,
            lambda: release_rolled_back(release=release, reason=reason),
        )
    _follow(
        "end the early life support of the replaced release",
        deployment,
        lambda: els_end_by_rollback(deployment=replaced, reason=reason),
    )


def early_life_support_start(deployment: Deployment) -> None:
    """The deployment's ELS period opens and starts, and the release moves to early life support. A refusal
    (say, a plan without staff) leaves the period scheduled, for a person to start once the plan is right."""
    from deployments.els import els_open, els_start

    if not deployment.package_id:
        return
    _follow("open early life support", deployment, lambda: els_open(deployment=deployment))
    _follow("start early life support", deployment, lambda: els_start(els=deployment.early_life_support, actor=None))


def deployed_versions(deployment: Deployment) -> dict:
    """CI → version it now runs: each target CI the deployment reached runs the deployed version, and (but for
    blue/green) each CI of this environment that a release unit names runs that unit's version (or the
    package's)."""
    from cmdb.models import ConfigurationItem

    versions = {}
    if deployment.version:
        reached = ConfigurationItem.objects.filter(
            deployment_target__steps__deployment=deployment, deployment_target__steps__state="succeeded"
        ).distinct()
        versions.update(dict.fromkeys(reached, deployment.version))
    if deployment.package_id and deployment.model != DeploymentModel.PARALLEL:
        # (blue/green reaches only its parallel set: a unit's CI in the other set keeps what it runs)
        for unit in deployment.package.release.units.prefetch_related("configuration_items"):
            for ci in unit.configuration_items.all():
                if ci.environment_id == deployment.environment_id and (unit.version or deployment.version):
                    versions[ci] = unit.version or deployment.version
    return versions


def ci_versions_record(deployment: Deployment) -> None:
    from cmdb.services import ci_versions_set

    ci_versions_set(versions=deployed_versions(deployment), reason=f"deployed by deployment #{deployment.pk}")


def baseline_after(deployment: Deployment) -> None:
    """The release's post-release baseline when its units name CIs; otherwise (or after a rollback, whose
    package's release ended long ago) a baseline of the CIs deployed."""
    from cmdb.services import baseline_take
    from releases.choices import BaselineKind
    from releases.services import release_baseline_take

    release = deployment.package.release if deployment.package_id and not deployment.replaces_id else None
    if release and release.units.filter(configuration_items__isnull=False).exists():
        release_baseline_take(release=release, actor=None, kind=BaselineKind.POST_RELEASE)
        return
    cis = list(deployed_versions(deployment))
    if cis:
        baseline_take(
            name=f"after deployment #{deployment.pk}",
            actor=None,
            reason=f"post-release baseline of {deployment}",
            cis=cis,
        )
