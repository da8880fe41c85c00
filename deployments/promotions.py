"""Continuous promotion (DESIGN.md "Deployment models"): a pipeline asks, through the API, for a package to go
through the environments in their promotion order, and RDM takes it there, stage by stage, with nobody clicking.

- One request is one ``Promotion``, with a stage per environment. A production stage runs under a standard
  change created from the request's pre-approved template when the stage starts (approved by the template, its
  schedule the release window open then); a release still planned is submitted (the standard change approves
  its plan) and an approved one marked ready, which is where the production checklist is checked.
- Each stage is a continuous deployment started by ``promotion_create`` (the first) or, when the stage before
  it succeeds, by ``promotion_deployment_ended``: the deployment's end effect queues ``promotion_follow_task``
  after its commit (the worker loads this module from ``DeploymentsConfig.ready``). When that message is lost
  (a worker killed, the broker restarted), the reconciler drives the stage on itself once ``FOLLOW_GRACE`` has
  passed (``promotions_follow_lost``); a stage moves on once, whichever of the two comes first.
- A stage starts only when its gates pass: those of any deployment start (``guards.start_conditions``: the
  checklist the release's policy requires for the tier, the package, windows and freezes). The evidence is
  posted by tools and policy defaults fill the rest; nothing here asks a person.
- The promotion stops at the first stage that could not start (its unmet gate conditions are the reason) or
  whose deployment did not succeed; the reason is on the record and sent to the requester and the
  Deployment Managers. The stages after it never start.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from celery import shared_task
from django.contrib.auth.models import User
from django.db import DatabaseError, transaction
from django.db.models import Prefetch
from django.utils import timezone

from cmdb.choices import EnvironmentTier
from cmdb.models import Environment
from deployments import services
from deployments.choices import (
    DEPLOYMENT_TERMINAL_STATES,
    DeploymentNotice,
    DeploymentState,
    PromotionStageState,
    PromotionState,
)
from deployments.models import DeploymentProcess, Promotion, PromotionStage
from rdm_site.domain import ensure_allowed
from rdm_site.exceptions import DomainError, InvalidInput, UnmetConditions
from rdm_site.permissions import any_permission_problem
from rdm_site.roles import Role
from rdm_site.transitions import transition_record

# How long the standard change of a production stage lasts when no release window bounds it.
CHANGE_HOURS = 4
# How long after a stage's deployment ended its follow message may still be on its way; after that the
# reconciler takes it as lost.
FOLLOW_GRACE = timedelta(seconds=30)


def promotion_list():
    """Promotions with what their pages and the API show, their stages in order (a fixed number of queries)."""
    stages = PromotionStage.objects.select_related("environment", "deployment").order_by("position")
    return Promotion.objects.select_related(
        "package__release", "service", "template", "change", "requested_by"
    ).prefetch_related(Prefetch("stages", queryset=stages))


@transaction.atomic
def promotion_create(
    *,
    actor: User | None,
    package,
    template,
    environments: Sequence | None = None,
    process: DeploymentProcess | None = None,
) -> Promotion:
    """Promote ``package`` through ``environments`` (all of them when None), in their promotion order; the first
    stage starts now, or the promotion stops there with the reason. Raises InvalidInput naming every problem
    with the request."""
    ensure_allowed(
        any_permission_problem(
            actor, [services.RUN, services.RUN_CONTINUOUS], f"promote {package.release} {package.version}"
        )
    )
    problems = []
    process = process or _only_process(package, problems)
    chosen = list(Environment.objects.all()) if environments is None else list(environments)
    if not chosen:
        problems.append("name at least one environment")
    if len({environment.pk for environment in chosen}) != len(chosen):
        problems.append("an environment is named twice")
    if process is not None and not package.release.services.filter(pk=process.service_id).exists():
        problems.append(f"the package {package} is not a release of {process.service}")
    if not template.pre_approved:
        problems.append(f"template {template} is not active and pre-approved")
    elif process is not None and not template.services.filter(pk=process.service_id).exists():
        problems.append(f"template {template} does not cover {process.service}")
    if problems:
        raise InvalidInput("The promotion cannot be requested: " + "; ".join(problems), problems)
    chosen.sort(key=lambda environment: environment.promotion_order)
    promotion = Promotion.objects.create(
        package=package, process=process, service=process.service, template=template, requested_by=actor
    )
    PromotionStage.objects.bulk_create(
        PromotionStage(promotion=promotion, position=position, environment=environment)
        for position, environment in enumerate(chosen)
    )
    names = " → ".join(environment.name for environment in chosen)
    transition_record(actor=actor, action="promotion.create", target=promotion, to_state=promotion.state, reason=names)
    _stage_start(promotion, promotion.stages.order_by("position").first())
    return promotion


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=3)
def promotion_follow_task(deployment_id: int) -> None:
    """Queued by ``deployments.effects.promotion_follow`` when a continuous deployment ends."""
    promotion_deployment_ended(deployment_id=deployment_id)


@transaction.atomic
def promotion_deployment_ended(*, deployment_id: int) -> bool:
    """The stage of the deployment ends with it: on success the next stage starts (or the promotion succeeds),
    otherwise the promotion stops there. Idempotent, whoever calls it and however often: the stage row is locked
    and moves on only while it is running and its deployment has ended. Returns whether it moved."""
    stage = (
        PromotionStage.objects.select_for_update()
        .filter(deployment_id=deployment_id, state=PromotionStageState.RUNNING)
        .select_related("deployment")
        .first()
    )
    if stage is None or stage.deployment.state not in DEPLOYMENT_TERMINAL_STATES:
        return False
    deployment = stage.deployment
    promotion = Promotion.objects.select_for_update().get(pk=stage.promotion_id)
    if deployment.state != DeploymentState.SUCCEEDED:
        outcome = f": {deployment.outcome}" if deployment.outcome else ""
        _stop(promotion, stage, f"deployment #{deployment.pk} {deployment.get_state_display().lower()}{outcome}")
        return True
    _stage_move(stage, "succeed", f"deployment #{deployment.pk} succeeded")
    following = promotion.stages.filter(position__gt=stage.position).order_by("position").first()
    if following is not None:
        _stage_start(promotion, following)
        return True
    promotion.succeed()
    promotion.save()
    transition_record(
        actor=None,
        action="promotion.succeed",
        target=promotion,
        from_state=PromotionState.RUNNING,
        to_state=promotion.state,
        reason=f"{promotion.package.version} reached {stage.environment}",
    )
    return True


def promotions_follow_lost(now: datetime) -> int:
    """Drive on the stages whose deployment ended more than ``FOLLOW_GRACE`` before ``now`` and that are still
    running: their follow message was lost. Run by the reconciler; returns how many stages it moved."""
    ended = (
        PromotionStage.objects.filter(
            state=PromotionStageState.RUNNING,
            deployment__state__in=DEPLOYMENT_TERMINAL_STATES,
            deployment__finished_at__lte=now - FOLLOW_GRACE,
        )
        .order_by("deployment_id")
        .values_list("deployment_id", flat=True)
    )
    return sum(promotion_deployment_ended(deployment_id=deployment_id) for deployment_id in ended)


def _only_process(package, problems: list[str]) -> DeploymentProcess | None:
    processes = list(DeploymentProcess.objects.filter(service__in=package.release.services.all())[:2])
    if len(processes) != 1:
        problems.append(
            "name the deployment process: the release's services have " + ("none" if not processes else "more than one")
        )
        return None
    return processes[0]


def _production_prepare(promotion: Promotion, environment: Environment) -> None:
    """The standard change the production stage runs under, from the template and approved by it, for the
    release window open now; the release submitted (its plan approved by that change) and marked ready."""
    from releases.choices import ChangeType, ReleaseState
    from releases.scheduling import deployment_permitted
    from releases.services import change_create, change_submit, release_mark_ready, release_submit

    start = timezone.now()
    window = deployment_permitted([promotion.service], environment, start).occurrence
    release = promotion.package.release
    change = change_create(
        actor=promotion.requested_by,
        change_type=ChangeType.STANDARD,
        template=promotion.template,
        title=f"Continuous delivery of {release} {promotion.package.version}",
        planned_start=start,
        planned_end=window.end if window else start + timedelta(hours=CHANGE_HOURS),
        services=[promotion.service],
        release=release,
    )
    promotion.change = change_submit(change=change, actor=promotion.requested_by)
    promotion.save(update_fields=["change"])
    if release.state == ReleaseState.PLANNED:
        release = release_submit(release=release, actor=None)
    if release.state == ReleaseState.APPROVED:
        release_mark_ready(release=release, actor=None)


def _stage_start(promotion: Promotion, stage: PromotionStage) -> None:
    """Plan and start the stage's deployment as the requester; a refusal (its gate) stops the promotion."""
    production = stage.environment.tier == EnvironmentTier.PRODUCTION
    try:
        with transaction.atomic():
            if production:
                _production_prepare(promotion, stage.environment)
            deployment = services.deployment_create(
                actor=promotion.requested_by,
                process=promotion.process,
                environment=stage.environment,
                package=promotion.package,
                change=promotion.change if production else None,
                continuous=True,
            )
            services.deployment_start(
                deployment=deployment, actor=promotion.requested_by, reason=f"continuous {promotion}"
            )
    except DomainError as error:
        promotion.change = None  # (when one was created, it went with the refusal)
        conditions = error.conditions if isinstance(error, UnmetConditions) else [str(error)]
        _stop(promotion, stage, "the gate failed: " + "; ".join(conditions))
        return
    stage.deployment = deployment
    _stage_move(stage, "start", f"deployment #{deployment.pk} started")


def _stage_move(stage: PromotionStage, name: str, reason: str) -> None:
    before = stage.state
    getattr(stage, name)()
    stage.save()
    transition_record(
        actor=None,
        action=f"promotionstage.{name}",
        target=stage,
        from_state=before,
        to_state=stage.state,
        reason=reason,
    )


def _stop(promotion: Promotion, stage: PromotionStage, reason: str) -> None:
    """Stop at ``stage`` with ``reason``; tell the requester and the Deployment Managers."""
    from rdm_site.notifications import notification_send

    stage.reason = reason
    _stage_move(stage, "stop", reason)
    promotion.reason = f"stopped at {stage.environment}: {reason}"
    promotion.stop()
    promotion.save()
    transition_record(
        actor=None,
        action="promotion.stop",
        target=promotion,
        from_state=PromotionState.RUNNING,
        to_state=promotion.state,
        reason=promotion.reason,
    )
    managers = User.objects.filter(groups__name=Role.DEPLOYMENT_MANAGER, is_active=True)
    notification_send(
        recipients=[*managers, *([promotion.requested_by] if promotion.requested_by else [])],
        kind=DeploymentNotice.PROMOTION_STOPPED,
        subject=f"{promotion} stopped at {stage.environment}",
        body=promotion.reason,
        target=promotion,
        link=promotion.get_absolute_url(),
    )
