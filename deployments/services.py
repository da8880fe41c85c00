"""Every write about deployments that a person or a pipeline asks for: configuration, planning and controls.

Each transition has one service: atomic, re-reads the deployment under a row lock, checks the actor's
permission, reports every unmet condition at once, moves the state, saves, audits and queues the engine
after commit. ``actor=None`` is RDM itself (the reconciler starting a scheduled deployment).

Who may: the Deployment Manager role (``deployments.run_deployment``) runs every deployment; the Build/CI
Engineer role (``deployments.run_continuous_deployment``) only continuous deployments under a standard
change (or outside production, where no change is needed).
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_fsm import can_proceed

from deployments import effects, engine, guards
from deployments.choices import (
    DEPLOYMENT_ACTIVE_STATES,
    STEP_OPEN_STATES,
    DeploymentModel,
    InterventionAnswer,
    LogLevel,
    PauseKind,
    StepState,
)
from deployments.engine import Tick
from deployments.executors.manual_intervention import ManualInterventionExecutor
from deployments.models import Deployment, DeploymentLock, DeploymentProcess, Step, StepLog, Target, Variable
from deployments.planning import phase_plan_problems, plan_build
from rdm_site.audit import audit_record
from rdm_site.crypto import encrypt_secret
from rdm_site.exceptions import IllegalTransition, InvalidInput, NotAllowed, UnmetConditions

RUN = "deployments.run_deployment"
RUN_CONTINUOUS = "deployments.run_continuous_deployment"
CONFIGURE = "deployments.change_deploymentprocess"


# --- who may -----------------------------------------------------------------------------------------


def run_problem(actor: User | None, deployment: Deployment, attempt: str) -> str | None:
    """Why ``actor`` may not ``attempt`` on ``deployment``, or None."""
    if actor is None or actor.has_perm(RUN):
        return None
    if actor.has_perm(RUN_CONTINUOUS):
        if deployment.continuous and _under_standard_change(deployment):
            return None
        return (
            f"{actor.get_username()} may not {attempt}: a Build/CI Engineer runs only continuous deployments "
            "under a standard change"
        )
    return f"{actor.get_username()} may not {attempt}: that needs the Deployment Manager role"


def _under_standard_change(deployment: Deployment) -> bool:
    change = getattr(deployment, "change", None)
    if change is None:
        return not effects.is_production(deployment)
    from releases.choices import ChangeType

    return change.change_type == ChangeType.STANDARD


def _ensure_may_run(actor: User | None, deployment: Deployment, attempt: str) -> None:
    problem = run_problem(actor, deployment, attempt)
    if problem:
        raise NotAllowed(problem)


def _locked(deployment: Deployment) -> Deployment:
    fresh = engine.lock_deployment(deployment.pk)
    if fresh is None:
        raise InvalidInput(f"deployment #{deployment.pk} no longer exists")
    return fresh


def _ensure_can(deployment: Deployment, transition: str) -> None:
    if not can_proceed(getattr(deployment, transition)):
        raise IllegalTransition(deployment, transition, deployment.state)


def _advance_after_commit(deployment: Deployment) -> None:
    from deployments.tasks import deployment_advance_task

    deployment_id = deployment.pk
    transaction.on_commit(lambda: deployment_advance_task.delay(deployment_id))


# --- configuration -----------------------------------------------------------------------------------


@transaction.atomic
def variable_set(
    *, actor: User | None, service, name: str, value: str, is_secret: bool = False, environment=None
) -> Variable:
    """Create or replace a variable; a secret is encrypted before it is stored and never audited in clear."""
    if actor is not None and not actor.has_perm(CONFIGURE):
        raise NotAllowed(f"{actor.get_username()} may not set deployment variables")
    if not name or "{" in name or "}" in name:
        raise InvalidInput("A variable name is needed, without braces.")
    variable, created = Variable.objects.select_for_update().get_or_create(
        service=service, environment=environment, name=name, defaults={"value": "", "is_secret": is_secret}
    )
    variable.is_secret = is_secret
    variable.value = encrypt_secret(value) if is_secret else value
    variable.full_clean()
    variable.save()
    shown = "(secret)" if is_secret else value
    audit_record(
        actor=actor,
        action="variable.create" if created else "variable.edit",
        target=variable,
        changes={"value": shown, "is_secret": is_secret},
    )
    return variable


@transaction.atomic
def target_create(*, actor: User | None, ci, ring: str = "", group: str = "", enabled: bool = True) -> Target:
    """A CI takes part in rollouts. It must be live: the CMDB never runs on imaginary servers."""
    from cmdb.choices import CiState

    if actor is not None and not actor.has_perm("deployments.add_target"):
        raise NotAllowed(f"{actor.get_username()} may not add deployment targets")
    problems = []
    if ci.state != CiState.LIVE:
        problems.append(f"{ci} is {ci.get_state_display().lower()}, not live")
    if ci.service_id is None:
        problems.append(f"{ci} belongs to no service")
    if Target.objects.filter(ci=ci).exists():
        problems.append(f"{ci} is already a target")
    if problems:
        raise UnmetConditions(f"{ci} cannot become a deployment target", problems)
    target = Target(ci=ci, ring=ring, group=group, enabled=enabled)
    target.full_clean()
    target.save()
    audit_record(actor=actor, action="target.create", target=target, changes={"ring": ring, "group": group})
    return target


# --- planning ---------------------------------------------------------------------------------------


@transaction.atomic
def deployment_create(
    *,
    actor: User | None,
    process: DeploymentProcess,
    environment,
    model: str = DeploymentModel.BIG_BANG,
    version: str = "",
    phase_plan: dict | None = None,
    rollback_threshold: float | None = None,
    continuous: bool = False,
    replaces: Deployment | None = None,
    scheduled_for: datetime | None = None,
    package=None,
    change=None,
) -> Deployment:
    """Plan a deployment of the process's service to ``environment``: its waves and steps are computed and
    stored now, and shown before it runs. Raises InvalidInput naming every problem with the plan.

    ``package`` is the release package deployed (its version is the deployment's, unless given);
    ``change`` the change record a production deployment implements.
    """
    deployment = Deployment(
        service=process.service,
        environment=environment,
        process=process,
        model=model,
        version=version,
        phase_plan=phase_plan or {},
        rollback_threshold=process.rollback_threshold if rollback_threshold is None else rollback_threshold,
        continuous=continuous,
        replaces=replaces,
        requested_by=actor,
        scheduled_for=scheduled_for,
        package=package,
        change=change,
    )
    if package is not None and not version:
        deployment.version = package.version
    _ensure_may_run(actor, deployment, f"plan a deployment of {process.service}")
    problems = []
    if package is not None and not package.release.services.filter(pk=process.service_id).exists():
        problems.append(f"the package {package} is not a release of {process.service}")
    if change is not None and change.services.exists() and not change.services.filter(pk=process.service_id).exists():
        problems.append(f"the change {change} does not cover {process.service}")
    if model not in DeploymentModel.values:
        problems.append(f"the deployment model must be one of {', '.join(DeploymentModel.values)}")
    else:
        problems += phase_plan_problems(model, deployment.phase_plan)
    if not 0 <= deployment.rollback_threshold <= 1:
        problems.append("the rollback threshold is a share of targets, from 0 to 1")
    if problems:
        raise InvalidInput("The deployment cannot be planned: " + "; ".join(problems), problems)
    deployment.save()
    plan_build(deployment)
    tick = Tick(deployment)
    audit_record(actor=actor, action="deployment.plan", target=deployment, to_state=deployment.state)
    tick.events.deployment_changed("planned")
    tick.finish()
    return deployment


# --- controls ---------------------------------------------------------------------------------------


@transaction.atomic
def deployment_schedule(
    *, deployment: Deployment, actor: User | None, scheduled_for: datetime, reason: str = ""
) -> Deployment:
    """Agree a time; the deployment starts by itself then (the reconciler starts it)."""
    deployment = _locked(deployment)
    _ensure_may_run(actor, deployment, f"schedule {deployment}")
    _ensure_can(deployment, "schedule")
    problems = guards.schedule_conditions(deployment, scheduled_for)
    if problems:
        raise UnmetConditions(f"{deployment} cannot be scheduled for {scheduled_for:%Y-%m-%d %H:%M}", problems)
    deployment.scheduled_for = scheduled_for
    tick = Tick(deployment)
    tick.transition("schedule", actor=actor, reason=reason or f"for {scheduled_for.isoformat()}")
    effects.deployment_scheduled(deployment, actor)
    tick.finish()
    return deployment


@transaction.atomic
def deployment_start(*, deployment: Deployment, actor: User | None, reason: str = "") -> Deployment:
    """Take the (service, environment) lock and queue the rollout for the engine."""
    deployment = _locked(deployment)
    _ensure_may_run(actor, deployment, f"start {deployment}")
    _ensure_can(deployment, "start")
    problems = guards.start_conditions(deployment, timezone.now())
    if problems:
        raise UnmetConditions(f"{deployment} cannot start", problems)
    try:
        with transaction.atomic():
            DeploymentLock.objects.create(
                service_id=deployment.service_id, environment_id=deployment.environment_id, deployment=deployment
            )
    except IntegrityError:
        raise UnmetConditions(f"{deployment} cannot start", guards.lock_conditions(deployment)) from None
    tick = Tick(deployment)
    tick.transition("start", actor=actor, reason=reason)
    effects.deployment_started(deployment, actor)
    tick.finish()
    _advance_after_commit(deployment)
    return deployment


@transaction.atomic
def deployment_pause(*, deployment: Deployment, actor: User | None, reason: str = "") -> Deployment:
    """No new step starts; the steps already running finish."""
    deployment = _locked(deployment)
    _ensure_may_run(actor, deployment, f"pause {deployment}")
    _ensure_can(deployment, "pause")
    deployment.pause_kind = PauseKind.OPERATOR
    deployment.pause_reason = reason or "paused by an operator"
    tick = Tick(deployment)
    tick.transition("pause", actor=actor, reason=deployment.pause_reason)
    tick.finish()
    return deployment


@transaction.atomic
def deployment_resume(*, deployment: Deployment, actor: User | None, reason: str = "") -> Deployment:
    """Continue where it stopped, once the reason to pause is gone (a freeze over, a decision taken)."""
    deployment = _locked(deployment)
    _ensure_may_run(actor, deployment, f"resume {deployment}")
    _ensure_can(deployment, "resume")
    problems = []
    if deployment.pause_kind == PauseKind.DECISION:
        problems.append("the rollout failed and cannot be reversed automatically: roll it back or mark it failed")
    if deployment.pause_kind == PauseKind.INTERVENTION:
        problems.append("a manual intervention waits for an answer")
    problems += guards.resume_conditions(deployment, timezone.now())
    if problems:
        raise UnmetConditions(f"{deployment} cannot resume", problems)
    deployment.pause_kind, deployment.pause_reason = PauseKind.NONE, ""
    tick = Tick(deployment)
    tick.transition("resume", actor=actor, reason=reason)
    tick.finish()
    _advance_after_commit(deployment)
    return deployment


@transaction.atomic
def deployment_abort(*, deployment: Deployment, actor: User | None, reason: str = "") -> Deployment:
    """Stop for good: no new step starts (the one under way finishes); nothing is rolled back."""
    deployment = _locked(deployment)
    _ensure_may_run(actor, deployment, f"abort {deployment}")
    _ensure_can(deployment, "abort")
    was_active = deployment.state in DEPLOYMENT_ACTIVE_STATES
    deployment.outcome = reason or "aborted"
    deployment.pause_kind, deployment.pause_reason = PauseKind.NONE, ""
    tick = Tick(deployment)
    tick.transition("abort", actor=actor, reason=deployment.outcome)
    engine.skip_open(tick, deployment.steps.all(), "the deployment was aborted")
    for wave in deployment.waves.filter(state__in=["running", "verifying"]):
        wave.outcome = "aborted"
        engine.wave_transition(tick, wave, "fail", "aborted")
    if was_active:
        effects.deployment_ended(deployment)
    tick.finish()
    return deployment


@transaction.atomic
def deployment_rollback(*, deployment: Deployment, actor: User | None, reason: str = "") -> Deployment:
    """Roll back now: skip the remaining steps and analysis, undo the waves done, the last one first."""
    deployment = _locked(deployment)
    _ensure_may_run(actor, deployment, f"roll back {deployment}")
    _ensure_can(deployment, "roll_back")
    problems = guards.lock_conditions(deployment)
    if problems:
        raise UnmetConditions(f"{deployment} cannot be rolled back now", problems)
    tick = Tick(deployment)
    engine.rollback_begin(tick, reason or "rolled back by an operator", actor=actor)
    tick.finish()
    return deployment


@transaction.atomic
def deployment_fail(*, deployment: Deployment, actor: User | None, reason: str = "") -> Deployment:
    """Decide not to roll back a paused rollout (an irreversible unit, fix forward): it ends as failed."""
    deployment = _locked(deployment)
    _ensure_may_run(actor, deployment, f"mark {deployment} failed")
    if deployment.state != "paused":
        raise IllegalTransition(deployment, "fail", deployment.state)
    deployment.outcome = reason or deployment.outcome or "marked failed by an operator"
    deployment.pause_kind, deployment.pause_reason = PauseKind.NONE, ""
    tick = Tick(deployment)
    tick.transition("fail", actor=actor, reason=deployment.outcome)
    engine.skip_open(tick, deployment.steps.all(), "the deployment failed")
    effects.deployment_ended(deployment)
    tick.finish()
    return deployment


@transaction.atomic
def step_answer(*, step: Step, actor: User | None, answer: str, reason: str = "") -> Step:
    """Answer a manual intervention (proceed or abort) before its deadline; the rollout resumes."""
    deployment = _locked(step.deployment)
    _ensure_may_run(actor, deployment, f"answer a manual intervention of {deployment}")
    step = Step.objects.get(pk=step.pk)
    if step.executor != ManualInterventionExecutor.name:
        raise InvalidInput(f"{step} is not a manual intervention")
    if answer not in InterventionAnswer.values:
        raise InvalidInput(f"the answer must be one of {', '.join(InterventionAnswer.values)}")
    if step.state not in STEP_OPEN_STATES or step.state == StepState.PENDING:
        raise IllegalTransition(step, "answer", step.state)
    now = timezone.now()
    problems = []
    if step.manual_answer:
        problems.append(f"it was already answered {step.manual_answer} by {step.answered_by} at {step.answered_at}")
    if step.deadline is not None and now >= step.deadline:
        problems.append(f"its deadline passed at {step.deadline:%Y-%m-%d %H:%M:%S} UTC")
    if problems:
        raise UnmetConditions(f"{step} cannot be answered", problems)
    step.manual_answer, step.answered_by, step.answered_at, step.due_at = answer, actor, now, now
    step.save(update_fields=["manual_answer", "answered_by", "answered_at", "due_at"])
    who = actor.get_username() if actor else "RDM"
    StepLog.objects.create(step=step, level=LogLevel.INFO, message=f"answered {answer} by {who}")
    audit_record(
        actor=actor,
        action="deployment.intervention_answer",
        target=deployment,
        reason=f"{step.name}: {answer}" + (f" ({reason})" if reason else ""),
    )
    tick = Tick(deployment)
    if deployment.state == "paused" and deployment.pause_kind == PauseKind.INTERVENTION:
        deployment.pause_kind, deployment.pause_reason = PauseKind.NONE, ""
        tick.transition("resume", actor=actor, reason=f"{step.name} answered {answer}")
    tick.finish()
    _advance_after_commit(deployment)
    return step
