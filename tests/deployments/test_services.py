"""Services: who may run deployments, refusals with the domain errors, audit, and live events after commit."""

import json
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployments import redeploy, services
from deployments.choices import DeploymentState, StepState
from deployments.events import channel_name
from deployments.models import Deployment, Step, Variable
from deployments.selectors import deployment_events_since
from deployments.variables import MASK
from rdm_site.exceptions import DomainError, IllegalTransition, InvalidInput, NotAllowed
from rdm_site.models import AuditEvent, OutboxEvent
from rdm_site.redis import redis_client
from rdm_site.roles import Role
from tests.deployments.conftest import drive, make_landscape
from tests.factories import UserFactory

ROLE_MAY_RUN = {
    Role.RELEASE_MANAGER: False,
    Role.CHANGE_APPROVER: False,
    Role.EMERGENCY_APPROVER: False,
    Role.DEPLOYMENT_MANAGER: True,
    Role.BUILD_ENGINEER: False,  # only continuous deployments under a standard change (test_governance)
    Role.SERVICE_OWNER: False,
    Role.VIEWER: False,
}


@pytest.mark.parametrize(("role", "allowed"), ROLE_MAY_RUN.items())
def test_who_may_start_a_deployment(landscape, manager, role, allowed):
    land = landscape(targets=1)
    deployment = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    actor = UserFactory(username=f"user-{role.name.lower()}", roles=[role])
    if allowed:
        services.deployment_start(deployment=deployment, actor=actor)
        assert Deployment.objects.get(pk=deployment.pk).state == DeploymentState.QUEUED
    else:
        with pytest.raises(NotAllowed, match="may not start"):
            services.deployment_start(deployment=deployment, actor=actor)


@pytest.mark.parametrize(
    ("control", "kwargs"),
    [
        (services.deployment_pause, {}),
        (services.deployment_resume, {}),
        (services.deployment_rollback, {"reason": "x"}),
        (services.deployment_fail, {"reason": "x"}),
        (services.deployment_abort, {"reason": "x"}),
    ],
)
def test_controls_refuse_an_illegal_move_with_the_state_it_is_in(landscape, manager, control, kwargs):
    land = landscape(targets=1)
    deployment = drive(
        services.deployment_start(
            deployment=services.deployment_create(actor=manager, process=land.process, environment=land.environment),
            actor=manager,
        )
    )
    assert deployment.state == DeploymentState.SUCCEEDED
    with pytest.raises(IllegalTransition, match="it is succeeded"):
        control(deployment=deployment, actor=manager, **kwargs)


def test_a_viewer_may_not_plan_or_answer(landscape, manager):
    land = landscape(targets=1)
    viewer = UserFactory(username="v", roles=[Role.VIEWER])
    with pytest.raises(NotAllowed):
        services.deployment_create(actor=viewer, process=land.process, environment=land.environment)
    with pytest.raises(NotAllowed):
        services.variable_set(actor=viewer, service=land.service, name="X", value="1")


def test_a_secret_variable_is_encrypted_and_its_audit_shows_no_value(landscape, manager):
    land = landscape(targets=1)
    services.variable_set(actor=manager, service=land.service, name="Token", value="t0ps3cret", is_secret=True)
    variable = Variable.objects.get(name="Token")
    assert "t0ps3cret" not in variable.value
    assert variable.plain_value() == "t0ps3cret"
    audit = AuditEvent.objects.get(action="variable.create")
    assert audit.changes == {"value": [None, MASK], "is_secret": [None, True]}


def test_an_environment_value_wins_over_the_default(landscape, manager):
    from deployments.planning import variables_resolve

    land = landscape(targets=1)
    services.variable_set(actor=manager, service=land.service, name="Host", value="default.example")
    services.variable_set(
        actor=manager, service=land.service, name="Host", value="env.example", environment=land.environment
    )
    assert variables_resolve(land.service.pk, land.environment.pk).public == {"Host": "env.example"}


def test_a_target_must_be_a_live_ci(landscape, manager):
    from cmdb.choices import CiState
    from tests.deployments.factories import CiFactory

    land = landscape(targets=1)
    planned = CiFactory(environment=land.environment, service=land.service, state=CiState.PLANNED)
    with pytest.raises(Exception, match="is planned, not live"):
        services.target_create(actor=manager, ci=planned)
    live = CiFactory(environment=land.environment, service=land.service)
    assert services.target_create(actor=manager, ci=live, ring="canary").ring == "canary"


def test_planning_refuses_a_bad_model(landscape, manager):
    land = landscape(targets=1)
    with pytest.raises(InvalidInput, match="the deployment model must be one of big_bang, phased"):
        services.deployment_create(actor=manager, process=land.process, environment=land.environment, model="x")


def test_every_change_is_published_after_commit_and_can_be_replayed(transactional_db):
    # given someone listening on the deployment's channel
    manager = UserFactory(username="dm", roles=[Role.DEPLOYMENT_MANAGER])
    land = make_landscape(targets=2)
    deployment = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    pubsub = redis_client().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel_name(deployment.pk))

    # when it is started and run (committed after each step, as in production)
    services.deployment_start(deployment=deployment, actor=manager)
    drive(deployment)

    # then every event arrived once, in order, with its number; and they can be replayed from any number
    received, deadline = [], time.monotonic() + 2
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)  # None for the (ignored) subscribe confirmation too
        if message:
            received.append(json.loads(message["data"]))
    pubsub.close()
    stored = deployment_events_since(deployment.pk)
    assert received == stored[1:], "all but the 'planned' event, published before anyone listened"
    assert [event["seq"] for event in stored] == list(range(1, len(stored) + 1))
    assert set(stored[0]) == {"seq", "type", "deployment", "wave", "step", "state", "at", "message"}
    assert {(event["type"], event["state"]) for event in stored} >= {
        ("deployment", "queued"),
        ("deployment", "running"),
        ("wave", "running"),
        ("step", "running"),
        ("step", "succeeded"),
        ("wave", "passed"),
        ("deployment", "succeeded"),
    }
    assert deployment_events_since(deployment.pk, after_seq=stored[-2]["seq"]) == stored[-1:]


def test_a_state_moved_meanwhile_is_refused_not_undone(landscape, manager):
    from deployments.engine.base import save_or_refuse
    from rdm_site.exceptions import ConcurrentModification

    land = landscape(targets=1)
    deployment = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    stale = Deployment.objects.get(pk=deployment.pk)
    services.deployment_abort(deployment=deployment, actor=manager, reason="first")
    stale.schedule()
    with pytest.raises(ConcurrentModification, match="changed by someone else"), transaction.atomic():
        save_or_refuse(stale)
    assert Deployment.objects.get(pk=deployment.pk).state == DeploymentState.ABORTED


# --- one transition record ------------------------------------------------------------------------------


def test_every_deployment_transition_of_a_real_run_is_audited_and_put_in_the_outbox(landscape, manager):
    # given a big bang rollout run to the end, and another started then aborted
    land = landscape(targets=2)
    done = drive(
        services.deployment_start(
            deployment=services.deployment_create(actor=manager, process=land.process, environment=land.environment),
            actor=manager,
        )
    )
    aborted = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    services.deployment_schedule(deployment=aborted, actor=manager, scheduled_for=timezone.now() + timedelta(hours=1))
    services.deployment_abort(deployment=aborted, actor=manager, reason="not today")

    # then each transition has its audit event, and each audit event its outbox row
    for deployment, actions in [
        (done, ["deployment.create", "deployment.start", "deployment.run", "deployment.succeed"]),
        (aborted, ["deployment.create", "deployment.schedule", "deployment.abort"]),
    ]:
        events = AuditEvent.objects.filter(object_type="deployments.deployment", object_id=str(deployment.pk))
        assert list(events.order_by("id").values_list("action", flat=True)) == actions
        outbox = OutboxEvent.objects.filter(audit_event__in=events)
        assert sorted(outbox.values_list("event_type", flat=True)) == sorted(actions)


# --- how a service is deployed: every edit audited with the old and new values --------------------------


def test_process_and_step_template_edits_are_audited_with_old_and_new_values(landscape, manager):
    land = landscape(targets=1)
    process = services.process_create(actor=manager, service=land.service, name="web", bake_seconds=30)
    template = services.step_template_create(
        actor=manager, process=process, name="call", executor="http_call", parameters={"url": "https://a.example"}
    )

    services.process_update(process=process, actor=manager, data={"bake_seconds": 60, "name": "web"})
    services.step_template_update(
        template=template, actor=manager, data={"parameters": {"url": "https://evil.example"}}
    )
    services.step_template_delete(template=template, actor=manager)

    changes = dict(
        AuditEvent.objects.filter(action__in=["deploymentprocess.update", "steptemplate.update"]).values_list(
            "action", "changes"
        )
    )
    assert changes == {
        "deploymentprocess.update": {"bake_seconds": [30, 60]},
        "steptemplate.update": {"parameters": [{"url": "https://a.example"}, {"url": "https://evil.example"}]},
    }
    created = AuditEvent.objects.get(action="steptemplate.create")
    assert created.changes["executor"] == [None, "http_call"]
    deleted = AuditEvent.objects.get(action="steptemplate.delete")
    assert deleted.changes["parameters"] == [{"url": "https://evil.example"}, None]
    assert OutboxEvent.objects.filter(event_type="steptemplate.delete").exists()


def test_configuration_is_refused_to_who_may_not_configure(landscape):
    land = landscape(targets=1)
    viewer = UserFactory(username="v", roles=[Role.VIEWER])
    template = land.process.step_templates.get()
    for attempt in [
        lambda: services.process_create(actor=viewer, service=land.service, name="x"),
        lambda: services.process_update(process=land.process, actor=viewer, data={"bake_seconds": 1}),
        lambda: services.step_template_create(actor=viewer, process=land.process, name="x", executor="simulator"),
        lambda: services.step_template_update(template=template, actor=viewer, data={"name": "y"}),
        lambda: services.step_template_delete(template=template, actor=viewer),
        lambda: services.target_update(target=land.targets[0], actor=viewer, data={"ring": "canary"}),
    ]:
        with pytest.raises(NotAllowed, match="v may not"):
            attempt()
    assert not AuditEvent.objects.filter(actor_label="v").exists()


def test_a_step_template_with_an_unknown_executor_is_refused_with_every_problem(landscape, manager):
    land = landscape(targets=1)
    with pytest.raises(InvalidInput) as refused:
        services.step_template_create(actor=manager, process=land.process, name="", executor="teleport")
    assert {message.split(":")[0] for message in refused.value.errors} == {"name", "executor"}


def test_a_target_relabelled_is_audited_and_its_ci_cannot_be_changed(landscape, manager):
    land = landscape(targets=1)
    target = services.target_update(target=land.targets[0], actor=manager, data={"ring": "canary", "enabled": False})
    assert (target.ring, target.enabled) == ("canary", False)
    assert AuditEvent.objects.get(action="target.update").changes == {"ring": ["", "canary"], "enabled": [True, False]}
    with pytest.raises(InvalidInput, match="ci"):
        services.target_update(target=target, actor=manager, data={"ci": land.targets[0].ci})


def test_a_variable_update_is_audited_and_a_secret_never_in_clear(landscape, manager):
    land = landscape(targets=1)
    services.variable_set(actor=manager, service=land.service, name="Url", value="https://old.example")
    services.variable_set(actor=manager, service=land.service, name="Url", value="https://new.example")
    services.variable_set(actor=manager, service=land.service, name="Url", value="https://new.example")  # no change
    services.variable_set(actor=manager, service=land.service, name="Url", value="s3cr3t-1", is_secret=True)
    services.variable_set(actor=manager, service=land.service, name="Url", value="s3cr3t-2", is_secret=True)

    updates = list(AuditEvent.objects.filter(action="variable.update").order_by("id").values_list("changes", flat=True))
    assert updates == [
        {"value": ["https://old.example", "https://new.example"]},
        {"value": ["https://new.example", MASK], "is_secret": [False, True]},
        {"value": [MASK, MASK]},
    ]
    assert not AuditEvent.objects.filter(changes__icontains="s3cr3t").exists()
    assert not AuditEvent.objects.filter(action="variable.edit").exists()


# --- reasons are bounded -------------------------------------------------------------------------------

ESSAY = "x" * 200_000
INTERVENTION = {
    "name": "ask",
    "executor": "manual_intervention",
    "run_once": True,
    "parameters": {"instructions": "Look at the graphs"},
}


@pytest.mark.parametrize(
    "control",
    [
        services.deployment_pause,
        services.deployment_abort,
        services.deployment_rollback,
        services.deployment_fail,
        services.deployment_resume,
    ],
)
def test_a_200000_character_reason_is_refused(landscape, manager, control):
    land = landscape(targets=1)
    deployment = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    services.deployment_start(deployment=deployment, actor=manager)
    Deployment.objects.filter(pk=deployment.pk).update(state=DeploymentState.PAUSED)

    with pytest.raises(InvalidInput, match="Shorten the reason to at most 2000 characters"):
        control(deployment=deployment, actor=manager, reason=ESSAY)
    assert not AuditEvent.objects.filter(reason__startswith="xxxx").exists()


def test_a_200000_character_reason_is_refused_for_an_answer_and_a_deletion(landscape, manager):
    land = landscape(targets=1, steps=[INTERVENTION])
    deployment = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    with pytest.raises(InvalidInput, match="Shorten the reason"):
        services.deployment_delete(deployment=deployment, actor=manager, reason=ESSAY)
    drive(services.deployment_start(deployment=deployment, actor=manager))
    step = deployment.steps.get()
    with pytest.raises(InvalidInput, match="Shorten the reason"):
        services.step_answer(step=step, actor=manager, answer="proceed", reason=ESSAY)


# --- available actions: what is offered is what the services accept --------------------------------------

ROLES = {
    "deployment manager": [Role.DEPLOYMENT_MANAGER],
    "build engineer": [Role.BUILD_ENGINEER],
    "viewer": [Role.VIEWER],
    "no role": [],
}
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
DEPLOYMENT_CALLS = {
    "schedule": lambda d, u: services.deployment_schedule(
        deployment=d, actor=u, scheduled_for=timezone.now() + timedelta(hours=1)
    ),
    "start": lambda d, u: services.deployment_start(deployment=d, actor=u),
    "pause": lambda d, u: services.deployment_pause(deployment=d, actor=u),
    "resume": lambda d, u: services.deployment_resume(deployment=d, actor=u),
    "abort": lambda d, u: services.deployment_abort(deployment=d, actor=u),
    "roll_back": lambda d, u: services.deployment_rollback(deployment=d, actor=u),
    "fail": lambda d, u: services.deployment_fail(deployment=d, actor=u),
    "delete": lambda d, u: services.deployment_delete(deployment=d, actor=u),
    "roll_back_release": lambda d, u: redeploy.deployment_roll_back_release(deployment=d, actor=u, reason="P1"),
}


def _accepted(call, record, actor) -> bool:
    """Whether the service took the action: anything but "not allowed" or "illegal from this state"."""
    try:
        with transaction.atomic():
            call(record, actor)
            transaction.set_rollback(True)
    except (NotAllowed, IllegalTransition):
        return False
    except DomainError:
        return True
    return True


def test_every_deployment_action_is_tried():
    assert set(DEPLOYMENT_CALLS) == set(services.DEPLOYMENT_ACTIONS)
    assert set(services.STEP_ACTIONS) == {"answer"}


@pytest.fixture
def people(db):
    return {name: UserFactory(username=name.replace(" ", "-"), roles=roles) for name, roles in ROLES.items()}


@PROPERTY
@given(
    state=st.sampled_from(DeploymentState.values),
    continuous=st.booleans(),
    who=st.sampled_from([*ROLES, "RDM"]),
    action=st.sampled_from(list(DEPLOYMENT_CALLS)),
)
def test_a_deployment_action_is_offered_exactly_when_its_service_accepts_it(
    landscape, manager, people, state, continuous, who, action
):
    # given a deployment (continuous or not, outside production) in some state, and someone
    land = landscape(targets=1)
    deployment = services.deployment_create(
        actor=manager, process=land.process, environment=land.environment, continuous=continuous
    )
    Deployment.objects.filter(pk=deployment.pk).update(state=state)
    deployment = Deployment.objects.get(pk=deployment.pk)
    actor = people.get(who)

    # when the action is offered (or not), then the service agrees
    offered = action in services.deployment_available_actions(deployment, actor)
    assert offered == _accepted(DEPLOYMENT_CALLS[action], deployment, actor), (state, continuous, who, action)


@PROPERTY
@given(
    state=st.sampled_from(StepState.values),
    intervention=st.booleans(),
    continuous=st.booleans(),
    who=st.sampled_from([*ROLES, "RDM"]),
)
def test_answering_a_step_is_offered_exactly_when_its_service_accepts_it(
    landscape, manager, people, state, intervention, continuous, who
):
    land = landscape(targets=1, steps=[INTERVENTION if intervention else {"name": "deploy", "executor": "simulator"}])
    deployment = services.deployment_create(
        actor=manager, process=land.process, environment=land.environment, continuous=continuous
    )
    Deployment.objects.filter(pk=deployment.pk).update(state=DeploymentState.PAUSED)
    Step.objects.filter(deployment=deployment).update(state=state)
    step = Step.objects.get(deployment=deployment)
    actor = people.get(who)

    offered = "answer" in services.step_available_actions(step, actor)
    answer = lambda s, u: services.step_answer(step=s, actor=u, answer="proceed")  # noqa: E731
    assert offered == _accepted(answer, step, actor), (state, intervention, continuous, who)
