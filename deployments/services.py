"""Every write about deployments that a person or a pipeline asks for: configuration, planning and controls.

Each transition has one service: atomic, re-reads the deployment under a row lock, checks the actor against
the deployment's one rule table (``DEPLOYMENT_ACTIONS``, which ``deployment_available_actions`` reports),
reports every unmet condition at once, moves the state, saves, records the transition and queues the engine
after commit. ``actor=None`` is RDM itself (the reconciler starting a scheduled deployment).

Who may: the Deployment Manager role (``deployments.run_deployment``) runs every deployment; the Build/CI
Engineer role (``deployments.run_continuous_deployment``) only continuous deployments under a standard
change (or outside production, where no change is needed). How a service is deployed (processes, step
templates, variables, targets) holds the URLs and commands that run in production: every edit of it is
recorded with the old and new values (a secret's never in clear).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from deployments import effects, engine, governance, guards
from deployments.choices import (
    DEPLOYMENT_ACTIVE_STATES,
    DeploymentModel,
    DeploymentState,
    InterventionAnswer,
    LogLevel,
    PauseKind,
    StepState,
)
from deployments.engine import Tick
from deployments.executors.manual_intervention import ManualInterventionExecutor
from deployments.models import (
    Deployment,
    DeploymentLock,
    DeploymentProcess,
    Step,
    StepLog,
    StepTemplate,
    Target,
    Variable,
)
from deployments.planning import phase_plan_problems, plan_build
from deployments.queue import advance_after_commit
from deployments.variables import MASK
from rdm_site.actions import ActionRule, action_ensure, actions_available
from rdm_site.changes import audit_value, record_create, record_update
from rdm_site.crypto import encrypt_secret
from rdm_site.domain import bounded_text, ensure_allowed, ensure_conditions, validated
from rdm_site.exceptions import IllegalTransition, InvalidInput, UnmetConditions
from rdm_site.permissions import any_permission_problem, permission_problem
from rdm_site.transitions import transition_record

logger = logging.getLogger(__name__)

RUN = "deployments.run_deployment"
RUN_CONTINUOUS = "deployments.run_continuous_deployment"


def may_plan_deployments(user) -> bool:
    """Whether ``user`` plans deployments at all: which ones they may start, the action rules and guards say."""
    return user.has_perm(RUN) or user.has_perm(RUN_CONTINUOUS)


PROCESS_FIELDS = ("name", "description", "health_checks", "bake_seconds", "rollback_threshold")
STEP_TEMPLATE_FIELDS = (
    "position",
    "name",
    "executor",
    "parameters",
    "target_filter",
    "run_once",
    "rollback_parameters",
    "retries",
    "timeout_seconds",
)
TARGET_FIELDS = ("ring", "group", "enabled")


# --- who may -----------------------------------------------------------------------------------------


def run_problem(actor: User | None, deployment: Deployment, attempt: str) -> str | None:
    """Why ``actor`` may not ``attempt`` on ``deployment``, or None."""
    problem = any_permission_problem(actor, [RUN, RUN_CONTINUOUS], attempt)
    if problem or actor is None or actor.has_perm(RUN):
        return problem
    if deployment.continuous and _under_standard_change(deployment):
        return None
    return (
        f"{actor.get_username()} may not {attempt}: a Build/CI Engineer runs only continuous deployments "
        "under a standard change"
    )


def _under_standard_change(deployment: Deployment) -> bool:
    change = getattr(deployment, "change", None)
    if change is None:
        return not effects.is_production(deployment)
    from releases.choices import ChangeType

    return change.change_type == ChangeType.STANDARD


def _who_runs(deployment: Deployment, actor: User | None, attempt: str) -> list[str | None]:
    return [run_problem(actor, deployment, attempt)]


def _who_runs_its_deployment(step: Step, actor: User | None, attempt: str) -> list[str | None]:
    return [run_problem(actor, step.deployment, attempt)]


# What may be done to a deployment, by whom, from which states: enforced by the services below and reported
# by ``deployment_available_actions`` (windows, freezes and eligibility are conditions, checked on the way).
DEPLOYMENT_ACTIONS = {
    "schedule": ActionRule(_who_runs, "schedule {record}", transition="schedule"),
    "start": ActionRule(_who_runs, "start {record}", transition="start"),
    "pause": ActionRule(_who_runs, "pause {record}", transition="pause"),
    "resume": ActionRule(_who_runs, "resume {record}", transition="resume"),
    "abort": ActionRule(_who_runs, "abort {record}", transition="abort"),
    "roll_back": ActionRule(_who_runs, "roll back {record}", transition="roll_back"),
    # after a success: redeploy an earlier package in its place (``deployments.redeploy``)
    "roll_back_release": ActionRule(
        _who_runs, "roll back {record} to an earlier package", states=(DeploymentState.SUCCEEDED,)
    ),
    # deciding not to roll back a rollout paused for a decision (the engine also fails rollouts itself)
    "fail": ActionRule(_who_runs, "mark {record} failed", states=(DeploymentState.PAUSED,)),
    "delete": ActionRule(_who_runs, "delete {record}", states=(DeploymentState.PLANNED,)),
}

STEP_ACTIONS = {
    "answer": ActionRule(_who_runs_its_deployment, "answer {record}", states=(StepState.RUNNING,)),
}


def deployment_available_actions(deployment: Deployment, actor: User | None) -> list[str]:
    """What ``actor`` may do to ``deployment`` now (the buttons to show)."""
    return actions_available(DEPLOYMENT_ACTIONS, deployment, actor)


def step_available_actions(step: Step, actor: User | None) -> list[str]:
    """What ``actor`` may do to ``step`` now: answer it, when it is a manual intervention waiting."""
    if step.executor != ManualInterventionExecutor.name:
        return []
    return actions_available(STEP_ACTIONS, step, actor)


def _locked(deployment: Deployment) -> Deployment:
    fresh = engine.lock_deployment(deployment.pk)
    if fresh is None:
        raise InvalidInput(f"deployment #{deployment.pk} no longer exists")
    return fresh


def _ensure_configures(actor: User | None, permission: str, attempt: str) -> None:
    ensure_allowed(permission_problem(actor, permission, attempt))


def _removed(instance, fields: tuple[str, ...]) -> dict[str, list[Any]]:
    """What a deleted row held, as ``{field: [value, None]}``."""
    return {name: [audit_value(getattr(instance, name)), None] for name in fields}


# --- configuration: how a service is deployed ---------------------------------------------------------


@transaction.atomic
def process_create(*, actor: User | None, service, **fields: Any) -> DeploymentProcess:
    """A new way to deploy ``service``; ``fields`` are among ``PROCESS_FIELDS``."""
    _ensure_configures(actor, "deployments.add_deploymentprocess", f"add a deployment process to {service}")
    return record_create(
        DeploymentProcess(service=service),
        actor=actor,
        data=fields,
        editable=PROCESS_FIELDS,
        entity="deploymentprocess",
    )


@transaction.atomic
def process_update(*, process: DeploymentProcess, actor: User | None, data: dict[str, Any]) -> DeploymentProcess:
    """Edit a process; deployments already planned keep the plan they copied."""
    process = DeploymentProcess.objects.select_for_update().get(pk=process.pk)
    _ensure_configures(actor, "deployments.change_deploymentprocess", f"change deployment process {process}")
    return record_update(process, actor=actor, data=data, editable=PROCESS_FIELDS, entity="deploymentprocess")


@transaction.atomic
def step_template_create(*, actor: User | None, process: DeploymentProcess, **fields: Any) -> StepTemplate:
    """A new step of ``process``; ``fields`` are among ``STEP_TEMPLATE_FIELDS``."""
    _ensure_configures(actor, "deployments.add_steptemplate", f"add a step to {process}")
    process = DeploymentProcess.objects.select_for_update().get(pk=process.pk)
    return record_create(
        StepTemplate(process=process), actor=actor, data=fields, editable=STEP_TEMPLATE_FIELDS, entity="steptemplate"
    )


@transaction.atomic
def step_template_update(*, template: StepTemplate, actor: User | None, data: dict[str, Any]) -> StepTemplate:
    """Edit a step (its executor, URL, command...): what runs in production next, so the old values are kept."""
    template = StepTemplate.objects.select_for_update().get(pk=template.pk)
    _ensure_configures(actor, "deployments.change_steptemplate", f"change step {template} of {template.process}")
    return record_update(template, actor=actor, data=data, editable=STEP_TEMPLATE_FIELDS, entity="steptemplate")


@transaction.atomic
def step_template_delete(*, template: StepTemplate, actor: User | None) -> None:
    """Remove a step from its process; the steps of planned deployments keep what they copied."""
    template = StepTemplate.objects.select_for_update().get(pk=template.pk)
    _ensure_configures(actor, "deployments.delete_steptemplate", f"delete step {template} of {template.process}")
    transition_record(
        actor=actor,
        target=template,
        action="steptemplate.delete",
        changes=_removed(template, STEP_TEMPLATE_FIELDS),
        object_repr=f"{template.process}: {template}",
    )
    template.delete()


@transaction.atomic
def variable_set(
    *, actor: User | None, service, name: str, value: str, is_secret: bool = False, environment=None
) -> Variable:
    """Create or replace a variable; a secret is encrypted before it is stored and never audited in clear."""
    if not name or "{" in name or "}" in name:
        raise InvalidInput("A variable name is needed, without braces.")
    variable = Variable.objects.select_for_update().filter(service=service, environment=environment, name=name)
    variable = variable.order_by().first()
    if variable is None:
        _ensure_configures(actor, "deployments.add_variable", f"add deployment variable {name} of {service}")
        variable = Variable(service=service, environment=environment, name=name)
        changes = {"value": [None, _shown(value, is_secret)], "is_secret": [None, is_secret]}
    else:
        _ensure_configures(actor, "deployments.change_variable", f"change deployment variable {variable}")
        changes = {}
        if variable.is_secret != is_secret:
            changes["is_secret"] = [variable.is_secret, is_secret]
        old = variable.plain_value()
        if old != value:
            # a secret's change is recorded as a change, never with either value
            changes["value"] = [_shown(old, variable.is_secret), _shown(value, is_secret)]
    if not changes:
        return variable
    action = "variable.update" if variable.pk else "variable.create"
    variable.is_secret = is_secret
    variable.value = encrypt_secret(value) if is_secret else value
    validated(variable)
    variable.save()
    transition_record(actor=actor, target=variable, action=action, changes=changes)
    return variable


def _shown(value: str, is_secret: bool) -> str:
    return MASK if is_secret else value


@transaction.atomic
def target_create(*, actor: User | None, ci, ring: str = "", group: str = "", enabled: bool = True) -> Target:
    """A CI takes part in rollouts. It must be live: the CMDB never runs on imaginary servers."""
    from cmdb.choices import CiState

    _ensure_configures(actor, "deployments.add_target", f"add {ci} as a deployment target")
    problems = []
    if ci.state != CiState.LIVE:
        problems.append(f"{ci} is {ci.get_state_display().lower()}, not live")
    if ci.service_id is None:
        problems.append(f"{ci} belongs to no service")
    if Target.objects.filter(ci=ci).exists():
        problems.append(f"{ci} is already a target")
    ensure_conditions(f"{ci} cannot become a deployment target", problems)
    data = {"ring": ring, "group": group, "enabled": enabled}
    return record_create(Target(ci=ci), actor=actor, data=data, editable=TARGET_FIELDS, entity="target")


@transaction.atomic
def target_update(*, target: Target, actor: User | None, data: dict[str, Any]) -> Target:
    """Relabel a target (ring, group) or take it out of rollouts (``enabled``); its CI stays the same."""
    target = Target.objects.select_for_update().select_related("ci").get(pk=target.pk)
    _ensure_configures(actor, "deployments.change_target", f"change deployment target {target}")
    return record_update(target, actor=actor, data=data, editable=TARGET_FIELDS, entity="target")


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
    fast_rollback: bool = False,
) -> Deployment:
    """Plan a deployment of the process's service to ``environment``: its waves and steps are computed and
    stored now, and shown before it runs. Raises InvalidInput naming every problem with the plan.

    ``package`` is the release package deployed (its version is the deployment's, unless given);
    ``change`` the change record a production deployment implements; ``fast_rollback`` plans a rollback that
    ``replaces`` a deployment without bake time or health-gate analysis (``deployments.redeploy``).
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
        fast_rollback=fast_rollback,
    )
    if package is not None and not version:
        deployment.version = package.version
    ensure_allowed(run_problem(actor, deployment, f"plan a deployment of {process.service}"))
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
    transition_record(actor=actor, action="deployment.create", target=deployment, to_state=deployment.state)
    tick.events.deployment_changed("planned")
    tick.finish()
    return deployment


@transaction.atomic
def deployment_delete(*, deployment: Deployment, actor: User | None, reason: str = "") -> None:
    """Remove a deployment that never left ``planned`` (its waves, steps and events go with it); the audit
    trail keeps its record. One that was scheduled or ran stays: abort it instead."""
    deployment, reason = _controlled(deployment, "delete", actor, reason)
    ensure_conditions(
        f"{deployment} cannot be deleted",
        [f"deployment #{other.pk} replaces it" for other in deployment.replaced_by.all()],
    )
    transition_record(
        actor=actor,
        action="deployment.delete",
        target=deployment,
        from_state=deployment.state,
        reason=reason,
        object_repr=str(deployment),
    )
    deployment.delete()


# --- controls ---------------------------------------------------------------------------------------


def _controlled(deployment: Deployment, action: str, actor: User | None, reason: str) -> tuple[Deployment, str]:
    """The reason bounded, the deployment locked, and the actor and state checked against the rule table."""
    reason = bounded_text(reason, "the reason")
    deployment = _locked(deployment)
    action_ensure(DEPLOYMENT_ACTIONS, action, deployment, actor)
    return deployment, reason


@transaction.atomic
def deployment_schedule(
    *, deployment: Deployment, actor: User | None, scheduled_for: datetime, reason: str = ""
) -> Deployment:
    """Agree a time; the deployment starts by itself then (the reconciler starts it)."""
    deployment, reason = _controlled(deployment, "schedule", actor, reason)
    problems = guards.schedule_conditions(deployment, scheduled_for)
    ensure_conditions(f"{deployment} cannot be scheduled for {scheduled_for:%Y-%m-%d %H:%M}", problems)
    deployment.scheduled_for = scheduled_for
    tick = Tick(deployment)
    tick.transition("schedule", actor=actor, reason=reason or f"for {scheduled_for.isoformat()}")
    effects.deployment_scheduled(deployment, actor)
    tick.finish()
    return deployment


@transaction.atomic
def deployment_start(*, deployment: Deployment, actor: User | None, reason: str = "") -> Deployment:
    """Take the (service, environment) lock and queue the rollout for the engine."""
    deployment, reason = _controlled(deployment, "start", actor, reason)
    checklist = governance.production_checklist(deployment)
    ensure_conditions(f"{deployment} cannot start", guards.start_conditions(deployment, timezone.now(), checklist))
    try:
        with transaction.atomic():
            DeploymentLock.objects.create(
                service_id=deployment.service_id, environment_id=deployment.environment_id, deployment=deployment
            )
    except IntegrityError:
        raise UnmetConditions(f"{deployment} cannot start", guards.lock_conditions(deployment)) from None
    deployment.start_wait, deployment.start_not_before = "", None
    tick = Tick(deployment)
    tick.transition("start", actor=actor, reason=reason)
    effects.deployment_started(deployment, actor, checklist)
    tick.finish()
    advance_after_commit(deployment.pk)
    return deployment


@transaction.atomic
def deployment_wait_record(*, deployment: Deployment, wait: str, not_before: datetime | None = None) -> bool:
    """Why a scheduled deployment whose time came has not started, shown on its page: audited, announced and
    logged only when the reason changes, not each time the reconciler tries. ``not_before``: the reconciler
    does not try again before then (the opening of the window it waits for). True when the reason changed."""
    deployment = _locked(deployment)
    if deployment.state != DeploymentState.SCHEDULED:
        return False
    changed = deployment.start_wait != wait
    deployment.start_wait, deployment.start_not_before = wait, not_before
    tick = Tick(deployment)
    if changed:
        logger.info("deployment %s %s", deployment.pk, wait)
        transition_record(actor=None, action="deployment.wait", target=deployment, reason=wait)
        tick.events.deployment_changed(wait)
    tick.events.flush(start_wait=wait, start_not_before=not_before)
    return changed


@transaction.atomic
def deployment_pause(*, deployment: Deployment, actor: User | None, reason: str = "") -> Deployment:
    """No new step starts; the steps already running finish."""
    deployment, reason = _controlled(deployment, "pause", actor, reason)
    deployment.pause_kind = PauseKind.OPERATOR
    deployment.pause_reason = reason or "paused by an operator"
    tick = Tick(deployment)
    tick.transition("pause", actor=actor, reason=deployment.pause_reason)
    tick.finish()
    return deployment


@transaction.atomic
def deployment_resume(*, deployment: Deployment, actor: User | None, reason: str = "") -> Deployment:
    """Continue where it stopped, once the reason to pause is gone (a freeze over, a decision taken)."""
    deployment, reason = _controlled(deployment, "resume", actor, reason)
    problems = []
    if deployment.pause_kind == PauseKind.DECISION:
        problems.append("the rollout failed and cannot be reversed automatically: roll it back or mark it failed")
    if deployment.pause_kind == PauseKind.INTERVENTION:
        problems.append("a manual intervention waits for an answer")
    problems += guards.resume_conditions(deployment, timezone.now())
    ensure_conditions(f"{deployment} cannot resume", problems)
    deployment.pause_kind, deployment.pause_reason = PauseKind.NONE, ""
    tick = Tick(deployment)
    tick.transition("resume", actor=actor, reason=reason)
    tick.finish()
    advance_after_commit(deployment.pk)
    return deployment


@transaction.atomic
def deployment_abort(*, deployment: Deployment, actor: User | None, reason: str = "") -> Deployment:
    """Stop for good: no new step starts (the one under way finishes); nothing is rolled back."""
    deployment, reason = _controlled(deployment, "abort", actor, reason)
    was_active = deployment.state in DEPLOYMENT_ACTIVE_STATES
    deployment.outcome = reason or "aborted"
    deployment.pause_kind, deployment.pause_reason = PauseKind.NONE, ""
    tick = Tick(deployment)
    tick.transition("abort", actor=actor, reason=deployment.outcome)
    engine.stop(tick, f"the deployment was aborted: {deployment.outcome}", steps=deployment.steps.all())
    if was_active:
        effects.deployment_ended(deployment)
    tick.finish()
    return deployment


@transaction.atomic
def deployment_rollback(*, deployment: Deployment, actor: User | None, reason: str = "") -> Deployment:
    """Roll back now: skip the remaining steps and analysis, undo the waves done, the last one first."""
    deployment, reason = _controlled(deployment, "roll_back", actor, reason)
    ensure_conditions(f"{deployment} cannot be rolled back now", guards.lock_conditions(deployment))
    tick = Tick(deployment)
    engine.rollback_begin(tick, reason or "rolled back by an operator", actor=actor)
    tick.finish()
    return deployment


@transaction.atomic
def deployment_fail(*, deployment: Deployment, actor: User | None, reason: str = "") -> Deployment:
    """Decide not to roll back a paused rollout (an irreversible unit, fix forward): it ends as failed."""
    deployment, reason = _controlled(deployment, "fail", actor, reason)
    deployment.outcome = reason or deployment.outcome or "marked failed by an operator"
    deployment.pause_kind, deployment.pause_reason = PauseKind.NONE, ""
    tick = Tick(deployment)
    tick.transition("fail", actor=actor, reason=deployment.outcome)
    engine.stop(tick, f"the deployment failed: {deployment.outcome}", steps=deployment.steps.all())
    effects.deployment_ended(deployment)
    tick.finish()
    return deployment


@transaction.atomic
def step_answer(*, step: Step, actor: User | None, answer: str, reason: str = "") -> Step:
    """Answer a manual intervention (proceed or abort) before its deadline; the rollout resumes."""
    reason = bounded_text(reason, "the reason")
    deployment = _locked(step.deployment)
    step = Step.objects.select_related("target__ci").get(pk=step.pk)
    step.deployment = deployment
    if step.executor != ManualInterventionExecutor.name:
        raise IllegalTransition(step, "answer", step.state)
    action_ensure(STEP_ACTIONS, "answer", step, actor)
    if answer not in InterventionAnswer.values:
        raise InvalidInput(f"the answer must be one of {', '.join(InterventionAnswer.values)}")
    now = timezone.now()
    problems = []
    if step.manual_answer:
        problems.append(f"it was already answered {step.manual_answer} by {step.answered_by} at {step.answered_at}")
    if step.deadline is not None and now >= step.deadline:
        problems.append(f"its deadline passed at {step.deadline:%Y-%m-%d %H:%M:%S} UTC")
    ensure_conditions(f"{step} cannot be answered", problems)
    step.manual_answer, step.answered_by, step.answered_at, step.due_at = answer, actor, now, now
    step.save(update_fields=["manual_answer", "answered_by", "answered_at", "due_at"])
    who = actor.get_username() if actor else "RDM"
    StepLog.objects.create(step=step, level=LogLevel.INFO, message=f"answered {answer} by {who}")
    transition_record(
        actor=actor,
        action="step.answer",
        target=step,
        reason=f"{step.name}: {answer}" + (f" ({reason})" if reason else ""),
        object_repr=f"{step} of {deployment}",
    )
    tick = Tick(deployment)
    if deployment.state == DeploymentState.PAUSED and deployment.pause_kind == PauseKind.INTERVENTION:
        deployment.pause_kind, deployment.pause_reason = PauseKind.NONE, ""
        tick.transition("resume", actor=actor, reason=f"{step.name} answered {answer}")
    tick.finish()
    advance_after_commit(deployment.pk)
    return step
