"""Services: who may run deployments, refusals with the domain errors, audit, and live events after commit."""

import json
import time

import pytest
from django.db import transaction

from deployments import services
from deployments.choices import DeploymentState
from deployments.events import channel_name
from deployments.models import Deployment, Variable
from deployments.selectors import deployment_events_since
from deployments.variables import MASK
from rdm_site.exceptions import IllegalTransition, InvalidInput, NotAllowed
from rdm_site.models import AuditEvent
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
