"""Admin pages: every model is listed and shown, secrets never appear, controls go through the services."""

import pytest
from django.urls import reverse

from deployments import services
from deployments.models import (
    Deployment,
    DeploymentEvent,
    DeploymentLock,
    DeploymentProcess,
    Step,
    StepLog,
    Target,
    Variable,
    Wave,
)
from rdm_site.crypto import decrypt_secret
from tests.deployments.conftest import drive
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
    "model", [DeploymentProcess, Variable, Target, Deployment, Wave, Step, StepLog, DeploymentEvent, DeploymentLock]
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
        {"action": "deployment_start", "_selected_action": [deployment.pk]},
        follow=True,
    )
    assert response.status_code == 200
    deployment.refresh_from_db()
    assert deployment.state == "queued"

    # an illegal control is refused with the service's message
    response = admin_client.post(
        reverse("admin:deployments_deployment_changelist"),
        {"action": "deployment_resume", "_selected_action": [deployment.pk]},
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
