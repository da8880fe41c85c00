"""Admin pages: every model is listed and shown, secrets never appear, controls go through the services."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from deployments import services
from deployments.models import (
    Deployment,
    DeploymentEvent,
    DeploymentLock,
    DeploymentProcess,
    Step,
    StepLog,
    StepTemplate,
    Target,
    Variable,
    Wave,
)
from rdm_site.crypto import decrypt_secret
from rdm_site.models import AuditEvent
from rdm_site.roles import Role
from tests.deployments.conftest import drive
from tests.deployments.governed import Governed
from tests.factories import UserFactory

SECRET = "pa55w0rd-in-the-vault"


@pytest.fixture
def admin_client(client, db):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def ran(landscape, manager, target_server, local_outbound):
    land = landscape(
        targets=2,
        steps=[
            {"name": "call", "executor": "http_call", "parameters": {"url": target_server.url("/effects/a?k=#{Key}")}}
        ],
    )
    services.variable_set(actor=manager, service=land.service, name="Key", value=SECRET, is_secret=True)
    deployment = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    services.deployment_start(deployment=deployment, actor=manager)
    return drive(deployment)


@pytest.mark.parametrize(
    "model",
    [
        DeploymentProcess,
        StepTemplate,
        Variable,
        Target,
        Deployment,
        Wave,
        Step,
        StepLog,
        DeploymentEvent,
        DeploymentLock,
    ],
)
def test_every_page_shows_without_a_secret(admin_client, ran, model):
    opts = model._meta
    listing = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert listing.status_code == 200
    assert SECRET not in listing.content.decode()
    row = model.objects.first()
    if row is not None:
        page = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk]))
        assert page.status_code == 200
        assert SECRET not in page.content.decode()


def test_a_secret_variable_is_stored_encrypted_and_never_shown_back(admin_client, landscape):
    land = landscape(targets=1)
    response = admin_client.post(
        reverse("admin:deployments_variable_add"),
        {"service": land.service.pk, "environment": "", "name": "Token", "is_secret": "on", "value": SECRET},
    )
    assert response.status_code == 302
    variable = Variable.objects.get(name="Token")
    assert variable.value != SECRET
    assert decrypt_secret(variable.value) == SECRET
    page = admin_client.get(reverse("admin:deployments_variable_change", args=[variable.pk]))
    assert SECRET not in page.content.decode()

    # saving the form again without a value keeps the secret
    admin_client.post(
        reverse("admin:deployments_variable_change", args=[variable.pk]),
        {"service": land.service.pk, "environment": "", "name": "Token", "is_secret": "on", "value": ""},
    )
    variable.refresh_from_db()
    assert variable.plain_value() == SECRET


def test_admin_actions_call_the_services(admin_client, landscape, manager):
    land = landscape(targets=1)
    deployment = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    response = admin_client.post(
        reverse("admin:deployments_deployment_changelist"),
        {"action": "start", "_selected_action": [deployment.pk]},
        follow=True,
    )
    assert response.status_code == 200
    deployment.refresh_from_db()
    assert deployment.state == "queued"

    # an illegal control is refused with the service's message
    response = admin_client.post(
        reverse("admin:deployments_deployment_changelist"),
        {"action": "resume", "_selected_action": [deployment.pk]},
        follow=True,
    )
    assert "Cannot resume deployment" in response.content.decode()


def test_a_deployment_is_planned_from_the_admin(admin_client, landscape):
    land = landscape(targets=3)
    response = admin_client.post(
        reverse("admin:deployments_deployment_add"),
        {
            "process": land.process.pk,
            "environment": land.environment.pk,
            "version": "3.1",
            "model": "phased",
            "phase_plan": '{"canary": 1, "percentages": [100]}',
            "rollback_threshold": "0",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    deployment = Deployment.objects.get()
    assert deployment.waves.count() == 2
    assert deployment.requested_by.username == "root"


def test_planning_problems_show_on_the_admin_form(admin_client, landscape):
    land = landscape(targets=2)
    response = admin_client.post(
        reverse("admin:deployments_deployment_add"),
        {
            "process": land.process.pk,
            "environment": land.environment.pk,
            "model": "phased",
            "phase_plan": '{"percentages": [50, 10]}',
            "rollback_threshold": "0",
        },
    )
    assert response.status_code == 200
    assert "percentages are cumulative and must rise" in response.content.decode()
    assert not Deployment.objects.exists()


# --- as a Deployment Manager (staff, no superuser) --------------------------------------------------


@pytest.fixture
def dm_client(client, db):
    user = UserFactory(username="dm-staff", is_staff=True, roles=[Role.DEPLOYMENT_MANAGER])
    client.force_login(user)
    client.user = user
    return client


def test_a_production_deployment_is_planned_scheduled_and_started_from_the_admin(client, db):
    # given a green release with an approved change, and its Deployment Manager signed in to the admin
    governed = Governed()
    dm = governed.dm
    dm.is_staff = True
    dm.save()
    client.force_login(dm)
    when = governed.change.planned_start + timedelta(minutes=5)

    # when they plan it with the package, the change and a time, then schedule it at that time
    response = client.post(
        reverse("admin:deployments_deployment_add"),
        {
            "process": governed.process.pk,
            "environment": governed.world.production.pk,
            "package": governed.package.pk,
            "change": governed.change.pk,
            "model": "big_bang",
            "phase_plan": "{}",
            "rollback_threshold": "0",
            "scheduled_for_0": when.strftime("%Y-%m-%d"),
            "scheduled_for_1": when.strftime("%H:%M:%S"),
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    deployment = Deployment.objects.get()
    assert (deployment.package, deployment.change) == (governed.package, governed.change)
    response = client.post(
        reverse("admin:deployments_deployment_changelist"),
        {"action": "schedule_at_the_planned_time", "_selected_action": [deployment.pk]},
        follow=True,
    )

    # then it is scheduled (the change with it), and it can be started from the same list
    deployment.refresh_from_db()
    assert deployment.state == "scheduled", [str(m) for m in response.context["messages"]]
    governed.change.refresh_from_db()
    assert governed.change.state == "scheduled"
    client.post(
        reverse("admin:deployments_deployment_changelist"),
        {"action": "start", "_selected_action": [deployment.pk]},
    )
    deployment.refresh_from_db()
    assert deployment.state == "queued"


def test_a_time_typed_in_the_admin_schedules_a_deployment(dm_client, landscape, manager):
    land = landscape(targets=1)
    deployment = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    when = timezone.now().replace(microsecond=0, second=0) + timedelta(hours=2)

    asked = dm_client.post(
        reverse("admin:deployments_deployment_changelist"),
        {"action": "schedule_at_a_time", "_selected_action": [deployment.pk]},
    )
    assert "When (UTC" in asked.content.decode()
    dm_client.post(
        reverse("admin:deployments_deployment_changelist"),
        {
            "action": "schedule_at_a_time",
            "_selected_action": [deployment.pk],
            "apply": "1",
            "reason": when.strftime("%Y-%m-%d %H:%M"),
        },
    )

    deployment.refresh_from_db()
    assert (deployment.state, deployment.scheduled_for) == ("scheduled", when)


def test_a_planned_deployment_is_deleted_from_the_admin_and_the_deletion_audited(dm_client, landscape, manager):
    # given a deployment that never left planned, and one that started
    land = landscape(targets=2)
    planned = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    started = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    services.deployment_start(deployment=started, actor=manager)

    # when the Deployment Manager deletes both in the admin
    for deployment in (planned, started):
        dm_client.post(reverse("admin:deployments_deployment_delete", args=[deployment.pk]), {"post": "yes"})

    # then the planned one is gone (audited), and the started one stays, with the refusal shown
    assert list(Deployment.objects.values_list("pk", flat=True)) == [started.pk]
    refusal = dm_client.post(
        reverse("admin:deployments_deployment_delete", args=[started.pk]), {"post": "yes"}, follow=True
    )
    assert "Cannot delete deployment" in refusal.content.decode()
    listing = dm_client.get(reverse("admin:deployments_deployment_changelist"))
    assert "delete_selected" not in listing.content.decode()
    audit = AuditEvent.objects.get(action="deployment.delete")
    assert (audit.object_id, audit.actor_label, audit.from_state) == (str(planned.pk), "dm-staff", "planned")


@pytest.mark.parametrize("model", [Step, Target, Deployment, Wave])
def test_a_changelist_costs_the_same_queries_for_3_and_33_rows(dm_client, landscape, manager, model):
    # given 3 rows: three targets in one deployment, or three one-target deployments
    per_target = model in (Step, Target)
    land = None if per_target else landscape(targets=1)

    def planned(count: int) -> None:
        for _ in range(1 if per_target else count):
            where = landscape(targets=count) if per_target else land
            services.deployment_create(actor=manager, process=where.process, environment=where.environment)

    def changelist_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = dm_client.get(reverse(f"admin:deployments_{model._meta.model_name}_changelist"))
        assert response.status_code == 200
        return len(queries)

    planned(3)
    assert model.objects.count() == 3
    few = changelist_queries()

    # when there are 33
    planned(30)
    assert model.objects.count() == 33

    # then listing them costs the same
    assert changelist_queries() == few


def test_a_step_template_edited_in_the_admin_goes_through_its_service_and_is_audited(dm_client, landscape):
    # given a process whose step calls a URL
    land = landscape(targets=1)
    template = land.process.step_templates.get()
    page = dm_client.get(reverse("admin:deployments_steptemplate_change", args=[template.pk]))
    form = page.context["adminform"].form

    # when the Deployment Manager points it somewhere else
    data = {name: form.initial.get(name) for name in form.fields}
    data.update(parameters='{"url": "https://new.example/deploy"}', timeout_seconds="", run_once="")
    response = dm_client.post(reverse("admin:deployments_steptemplate_change", args=[template.pk]), data)

    # then the edit is the service's, with the old and new values audited
    assert response.status_code == 302, response.context["adminform"].form.errors
    audit = AuditEvent.objects.get(action="steptemplate.update")
    assert audit.changes == {"parameters": [{}, {"url": "https://new.example/deploy"}]}
    assert audit.actor_label == "dm-staff"


def test_the_process_page_lists_its_steps_read_only(dm_client, landscape):
    land = landscape(targets=1)
    template = land.process.step_templates.get()
    page = dm_client.get(reverse("admin:deployments_deploymentprocess_change", args=[land.process.pk]))
    inline = page.context["inline_admin_formsets"][0]
    assert inline.has_change_permission is False
    assert inline.has_add_permission is False
    assert reverse("admin:deployments_steptemplate_change", args=[template.pk]) in page.content.decode()


def test_a_target_edited_in_the_admin_is_audited_and_a_refusal_keeps_the_form(dm_client, landscape):
    land = landscape(targets=1)
    target = land.targets[0]
    response = dm_client.post(
        reverse("admin:deployments_target_change", args=[target.pk]), {"ring": "canary", "group": "", "enabled": "on"}
    )
    assert response.status_code == 302
    assert AuditEvent.objects.get(action="target.update").changes == {"ring": ["", "canary"]}

    # a CI that is not live is refused on the add form, with what was typed kept
    from cmdb.choices import CiState
    from tests.deployments.factories import CiFactory

    planned = CiFactory(state=CiState.PLANNED)
    response = dm_client.post(
        reverse("admin:deployments_target_add"), {"ci": planned.pk, "ring": "blue", "enabled": "on"}
    )
    assert response.status_code == 200
    assert "not live" in response.content.decode()
    assert 'value="blue"' in response.content.decode()


def test_a_manual_intervention_is_answered_from_the_step_list(dm_client, landscape, manager):
    land = landscape(
        targets=1,
        steps=[
            {"name": "ask", "executor": "manual_intervention", "run_once": True, "parameters": {"instructions": "?"}}
        ],
    )
    deployment = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    drive(services.deployment_start(deployment=deployment, actor=manager))
    step = deployment.steps.get()

    dm_client.post(
        reverse("admin:deployments_step_changelist"), {"action": "answer_proceed", "_selected_action": [step.pk]}
    )

    step.refresh_from_db()
    assert (step.manual_answer, step.answered_by.username) == ("proceed", "dm-staff")
