"""How a service is deployed, through the API: processes, step templates, variables (a secret's value never
comes back, nor reaches the audit trail) and targets; every write through its audited service."""

import json

import pytest

from deployments.models import StepTemplate, Variable
from rdm_site.models import AuditEvent
from rdm_site.roles import Role
from tests.deployments.api.conftest import list_queries, session_client, token_client
from tests.deployments.factories import CiFactory, ProcessFactory, ServiceFactory, StepTemplateFactory, TargetFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SECRET = "s3cr3t-Pa55w0rd-that-must-never-show"


def test_a_process_is_created_read_and_edited_through_its_service(dm_api):
    service = ServiceFactory()
    made = dm_api.post("/api/v1/processes/", {"service": service.pk, "name": "web", "bake_seconds": 30}, format="json")
    assert made.status_code == 201, made.content
    process_id = made.json()["id"]
    StepTemplateFactory(process_id=process_id, name="deploy")
    detail = dm_api.get(f"/api/v1/processes/{process_id}/").json()
    assert [step["name"] for step in detail["step_templates"]] == ["deploy"]
    edited = dm_api.patch(f"/api/v1/processes/{process_id}/", {"bake_seconds": 60}, format="json")
    assert edited.json()["bake_seconds"] == 60
    moved = dm_api.patch(f"/api/v1/processes/{process_id}/", {"service": ServiceFactory().pk}, format="json")
    assert moved.json()["service"] == service.pk  # a process stays with its service
    actions = AuditEvent.objects.filter(object_type="deployments.deploymentprocess").values_list("action", flat=True)
    assert list(actions) == ["deploymentprocess.create", "deploymentprocess.update"]
    duplicate = dm_api.post("/api/v1/processes/", {"service": service.pk, "name": "web"}, format="json")
    assert duplicate.status_code == 400
    assert dm_api.delete(f"/api/v1/processes/{process_id}/").status_code == 405


def test_step_templates_are_created_edited_and_deleted(dm_api):
    process = ProcessFactory()
    made = dm_api.post(
        "/api/v1/step-templates/",
        {"process": process.pk, "name": "call", "executor": "simulator", "parameters": {"latency": 0}},
        format="json",
    )
    assert made.status_code == 201, made.content
    url = f"/api/v1/step-templates/{made.json()['id']}/"
    assert dm_api.patch(url, {"retries": 5}, format="json").json()["retries"] == 5
    unknown = dm_api.patch(url, {"executor": "nope"}, format="json")
    assert unknown.status_code == 400
    assert "nope" in str(unknown.json()["errors"])
    assert dm_api.get(f"/api/v1/step-templates/?process={process.pk}").json()["count"] == 1
    assert dm_api.delete(url).status_code == 204
    assert not StepTemplate.objects.filter(process=process).exists()


@pytest.mark.parametrize("parameters", [{"x": "\u0000"}, {"\u0000": 1}, [1, 2], "text"])
def test_step_parameters_that_postgresql_or_the_executor_refuse_are_400(dm_api, parameters):
    process = ProcessFactory()
    response = dm_api.post(
        "/api/v1/step-templates/",
        {"process": process.pk, "name": "x", "executor": "simulator", "parameters": parameters},
        format="json",
    )
    assert response.status_code == 400, response.content


def test_a_secret_value_is_written_but_never_returned_nor_audited(dm_api):
    service = ServiceFactory()
    made = dm_api.post(
        "/api/v1/variables/",
        {"service": service.pk, "name": "DbPassword", "value": SECRET, "is_secret": True},
        format="json",
    )
    assert made.status_code == 201, made.content
    variable_id = made.json()["id"]
    assert made.json()["current_value"] is None
    replaced = dm_api.put(
        f"/api/v1/variables/{variable_id}/", {"value": SECRET + "-2", "is_secret": True}, format="json"
    )
    assert replaced.status_code == 200, replaced.content
    dm_api.patch(f"/api/v1/variables/{variable_id}/", {"is_secret": True}, format="json")
    answers = [
        made,
        replaced,
        dm_api.get(f"/api/v1/variables/{variable_id}/"),
        dm_api.get("/api/v1/variables/"),
        dm_api.get("/api/v1/audit-events/?object_type=deployments.variable"),
    ]
    for answer in answers:
        assert answer.status_code == 200 or answer.status_code == 201
        assert "s3cr3t" not in answer.content.decode()
        assert str(len(SECRET)) not in json.dumps(answer.json().get("current_value", ""))
    audited = json.dumps(list(AuditEvent.objects.values()), default=str)
    assert "s3cr3t" not in audited
    assert Variable.objects.get(pk=variable_id).plain_value() == SECRET + "-2"


def test_a_plain_variable_shows_its_value_and_keeps_its_name(dm_api):
    service = ServiceFactory()
    made = dm_api.post(
        "/api/v1/variables/", {"service": service.pk, "name": "Url", "value": "https://a"}, format="json"
    )
    url = f"/api/v1/variables/{made.json()['id']}/"
    renamed = dm_api.patch(url, {"name": "Other", "value": "https://b"}, format="json").json()
    assert renamed["name"] == "Url"
    assert renamed["current_value"] == "https://b"
    braces = dm_api.post("/api/v1/variables/", {"service": service.pk, "name": "{x}", "value": "1"}, format="json")
    assert braces.status_code == 400


def test_a_live_ci_becomes_a_target_and_is_relabelled(dm_api):
    ci = CiFactory()
    made = dm_api.post("/api/v1/targets/", {"ci": ci.pk, "ring": "canary"}, format="json")
    assert made.status_code == 201, made.content
    assert made.json()["name"] == ci.name
    again = dm_api.post("/api/v1/targets/", {"ci": ci.pk}, format="json")
    assert again.status_code in (400, 422)
    url = f"/api/v1/targets/{made.json()['id']}/"
    assert dm_api.patch(url, {"ring": "main", "enabled": False}, format="json").json()["ring"] == "main"
    assert dm_api.get(f"/api/v1/targets/?ring=main&environment={ci.environment_id}").json()["count"] == 1


def test_configuration_is_refused_to_those_whose_role_does_not_set_up_deployments():
    viewer = session_client(UserFactory(roles=[Role.VIEWER]))
    refused = viewer.post("/api/v1/processes/", {"service": ServiceFactory().pk, "name": "x"}, format="json")
    assert refused.status_code == 403
    assert "may not add a deployment process" in refused.json()["detail"]
    engineer = UserFactory(roles=[Role.BUILD_ENGINEER])
    read_only = token_client(engineer, "read")
    assert read_only.post("/api/v1/targets/", {"ci": CiFactory().pk}, format="json").status_code == 403
    assert read_only.get("/api/v1/targets/").status_code == 200


@pytest.mark.parametrize(
    ("url", "make"),
    [
        ("/api/v1/processes/", lambda: StepTemplateFactory().process),
        ("/api/v1/step-templates/", StepTemplateFactory),
        ("/api/v1/variables/", lambda: Variable.objects.create(service=ServiceFactory(), name="v", value="1")),
        ("/api/v1/targets/", TargetFactory),
    ],
)
def test_configuration_lists_make_the_same_queries_for_3_and_30_rows(dm_api, url, make):
    for _ in range(3):
        make()
    three = list_queries(dm_api, url, 3)
    for _ in range(27):
        make()
    assert list_queries(dm_api, url, 30) == three
