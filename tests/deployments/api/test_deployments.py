"""The deployments API: planning by a pipeline, following a rollout (plan, events, steps, logs), every control
as a transition, and bad input answered 400, never 500."""

from datetime import timedelta

import pytest
from django.utils import timezone

from deployments.choices import DeploymentState, StepState
from deployments.models import Deployment, Step, StepLog
from deployments.services import deployment_create
from rdm_site.representations import representation_of
from tests.deployments.api.conftest import list_queries, session_client
from tests.deployments.conftest import drive
from tests.deployments.governed import Governed
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def plan(landscape, actor, **fields):
    return deployment_create(actor=actor, process=landscape.process, environment=landscape.environment, **fields)


def test_a_pipeline_plans_a_deployment_by_service_and_gets_the_stored_plan(landscape, pipeline):
    # given a service with one process and three targets
    world = landscape(targets=3)
    # when the pipeline asks for a phased, continuous deployment naming the service
    response = pipeline.post(
        "/api/v1/deployments/",
        {
            "service": world.service.pk,
            "environment": world.environment.pk,
            "model": "phased",
            "phase_plan": {"canary": 1, "percentages": [100]},
            "continuous": True,
            "version": "2.1.0",
        },
        format="json",
    )
    # then the planned deployment comes back with its waves and steps, and what the pipeline may do next
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "planned"
    assert body["process"] == world.process.pk
    assert [wave["name"] for wave in body["waves"]] == ["canary (1 target)", "100 %"]
    assert sum(len(wave["targets"]) for wave in body["waves"]) == 3
    assert body["waves"][0]["steps"][0]["executor"] == "simulator"
    assert "start" in body["actions"]
    assert "schedule" in body["actions"]
    assert response["ETag"]


def test_a_service_with_several_processes_needs_the_process_named(landscape, pipeline):
    world = landscape()
    world.process.pk = None
    world.process.name = "another"
    world.process.save()
    response = pipeline.post(
        "/api/v1/deployments/",
        {"service": world.service.pk, "environment": world.environment.pk, "continuous": True},
        format="json",
    )
    assert response.status_code == 400
    assert "several deployment processes" in str(response.json()["errors"])


def test_started_through_the_api_it_runs_to_the_end_and_its_events_steps_and_logs_are_readable(landscape, pipeline):
    world = landscape(targets=2)
    created = pipeline.post(
        "/api/v1/deployments/",
        {"process": world.process.pk, "environment": world.environment.pk, "continuous": True},
        format="json",
    ).json()
    started = pipeline.post(f"/api/v1/deployments/{created['id']}/start/", {"reason": "pipeline #12"}, format="json")
    assert started.status_code == 200, started.content
    assert started.json()["state"] == "queued"

    deployment = drive(Deployment.objects.get(pk=created["id"]))
    assert deployment.state == DeploymentState.SUCCEEDED

    detail = pipeline.get(f"/api/v1/deployments/{deployment.pk}/").json()
    assert detail["state"] == "succeeded"
    assert detail["actions"] == ["roll_back_release"], "a success may be rolled back by redeploying an earlier package"
    plan_body = pipeline.get(f"/api/v1/deployments/{deployment.pk}/plan/").json()
    assert plan_body[0]["steps"][0]["state_counts"] == {"succeeded": 2}

    events = pipeline.get(f"/api/v1/deployments/{deployment.pk}/events/?after=0&limit=3").json()
    assert [event["seq"] for event in events["events"]] == [1, 2, 3]
    assert events["more"] is True
    rest = pipeline.get(f"/api/v1/deployments/{deployment.pk}/events/?after={events['last_seq']}").json()
    assert rest["events"][0]["seq"] == 4
    assert rest["more"] is False
    assert rest["events"][-1]["state"] == "succeeded"
    assert rest["last_seq"] == deployment.last_event_seq

    steps = pipeline.get(f"/api/v1/steps/?deployment={deployment.pk}&page_size=1")
    assert steps.status_code == 200
    assert len(steps.json()["results"]) == 1
    assert steps.json()["next"]
    following = pipeline.get(steps.json()["next"]).json()["results"]
    assert following[0]["id"] > steps.json()["results"][0]["id"]
    step = Step.objects.filter(deployment=deployment).first()
    assert pipeline.get(f"/api/v1/steps/{step.pk}/").json()["state"] == StepState.SUCCEEDED
    logs = pipeline.get(f"/api/v1/step-logs/?deployment={deployment.pk}").json()["results"]
    assert logs
    assert all(line["step"] in {s.pk for s in deployment.steps.all()} for line in logs)


def test_the_controls_are_transitions_that_answer_the_fresh_deployment_or_the_state_that_forbids_them(
    landscape, manager, dm_api
):
    world = landscape()
    deployment = plan(world, manager)
    url = f"/api/v1/deployments/{deployment.pk}"
    # a planned deployment cannot be paused: 409 names its state
    refused = dm_api.post(f"{url}/pause/", {"reason": "look"}, format="json")
    assert refused.status_code == 409
    assert "planned" in refused.json()["detail"]
    when = (timezone.now() + timedelta(days=1)).isoformat()
    scheduled = dm_api.post(f"{url}/schedule/", {"scheduled_for": when}, format="json")
    assert scheduled.status_code == 200, scheduled.content
    assert scheduled.json()["state"] == "scheduled"
    assert scheduled.json()["scheduled_for"]
    assert dm_api.post(f"{url}/start/", {}, format="json").json()["state"] == "queued"
    Deployment.objects.filter(pk=deployment.pk).update(state=DeploymentState.RUNNING)
    paused = dm_api.post(f"{url}/pause/", {"reason": "looking at a graph"}, format="json").json()
    assert paused["state"] == "paused"
    assert paused["pause_reason"] == "looking at a graph"
    assert set(paused["actions"]) >= {"resume", "abort", "roll_back", "fail"}
    assert dm_api.post(f"{url}/resume/", {}, format="json").json()["state"] == "running"
    assert dm_api.post(f"{url}/pause/", {}, format="json").status_code == 200
    assert dm_api.post(f"{url}/fail/", {"reason": "fix forward"}, format="json").json()["state"] == "failed"
    # nothing was deployed yet, so rolling back has nothing to undo
    assert dm_api.post(f"{url}/roll-back/", {}, format="json").json()["state"] == "rolled_back"
    another = plan(world, manager)
    aborted = dm_api.post(f"/api/v1/deployments/{another.pk}/abort/", {"reason": "enough"}, format="json").json()
    assert aborted["state"] == "aborted"
    assert aborted["outcome"] == "enough"


def test_schedule_needs_a_time(landscape, manager, dm_api):
    deployment = plan(landscape(), manager)
    response = dm_api.post(f"/api/v1/deployments/{deployment.pk}/schedule/", {}, format="json")
    assert response.status_code == 400
    assert "scheduled_for" in response.json()["errors"]


def test_a_manual_intervention_is_answered_through_its_step(landscape, manager, dm_api):
    world = landscape(
        targets=1,
        steps=[
            {
                "name": "ok?",
                "executor": "manual_intervention",
                "run_once": True,
                "parameters": {"instructions": "Check the shop"},
            }
        ],
    )
    deployment = plan(world, manager)
    dm_api.post(f"/api/v1/deployments/{deployment.pk}/start/", {}, format="json")
    deployment = drive(deployment)
    assert deployment.state == DeploymentState.PAUSED
    waiting = dm_api.get(f"/api/v1/steps/?deployment={deployment.pk}&waiting=true").json()["results"]
    assert len(waiting) == 1
    assert waiting[0]["actions"] == ["answer"]
    answered = dm_api.post(f"/api/v1/steps/{waiting[0]['id']}/answer/", {"answer": "proceed"}, format="json")
    assert answered.status_code == 200, answered.content
    assert answered.json()["manual_answer"] == "proceed"
    assert answered.json()["answered_by"] == "dm"
    assert drive(deployment).state == DeploymentState.SUCCEEDED
    again = dm_api.post(f"/api/v1/steps/{waiting[0]['id']}/answer/", {"answer": "abort"}, format="json")
    assert again.status_code == 409


def test_a_planned_deployment_may_be_deleted_and_a_started_one_not(landscape, manager, dm_api):
    world = landscape()
    planned, started = plan(world, manager), plan(world, manager)
    dm_api.post(f"/api/v1/deployments/{started.pk}/start/", {}, format="json")
    assert dm_api.delete(f"/api/v1/deployments/{planned.pk}/").status_code == 204
    assert not Deployment.objects.filter(pk=planned.pk).exists()
    assert dm_api.delete(f"/api/v1/deployments/{started.pk}/").status_code == 409
    assert dm_api.put(f"/api/v1/deployments/{started.pk}/", {}, format="json").status_code == 405


def test_a_stale_if_match_on_a_control_is_412_and_changes_nothing(landscape, manager, dm_api):
    deployment = plan(landscape(), manager)
    url = f"/api/v1/deployments/{deployment.pk}/"
    etag = dm_api.get(url)["ETag"]
    assert dm_api.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304
    deployment_create(actor=manager, process=deployment.process, environment=deployment.environment)
    dm_api.post(f"{url}schedule/", {"scheduled_for": (timezone.now() + timedelta(hours=2)).isoformat()}, format="json")
    stale = dm_api.post(f"{url}start/", {}, format="json", HTTP_IF_MATCH=etag)
    assert stale.status_code == 412
    assert Deployment.objects.get(pk=deployment.pk).state == DeploymentState.SCHEDULED


def test_a_production_deployment_names_an_approved_change_and_starts_inside_its_window():
    governed = Governed()
    client = session_client(governed.dm)
    fields = {"process": governed.process.pk, "environment": governed.world.production.pk}
    unplanned = client.post("/api/v1/deployments/", {**fields, "package": governed.package.pk}, format="json")
    assert unplanned.status_code == 201
    refused = client.post(f"/api/v1/deployments/{unplanned.json()['id']}/start/", {}, format="json")
    assert refused.status_code == 422
    assert any("change" in condition for condition in refused.json()["conditions"])
    planned = client.post(
        "/api/v1/deployments/", {**fields, "package": governed.package.pk, "change": governed.change.pk}, format="json"
    ).json()
    client.delete(f"/api/v1/deployments/{unplanned.json()['id']}/")
    started = client.post(f"/api/v1/deployments/{planned['id']}/start/", {}, format="json")
    assert started.status_code == 200, started.content
    assert drive(Deployment.objects.get(pk=planned["id"])).state == DeploymentState.SUCCEEDED


def test_a_build_engineer_may_not_run_a_production_deployment_under_a_normal_change():
    governed = Governed()
    deployment = governed.plan()
    engineer = UserFactory(roles=["Build/CI Engineer"])
    response = session_client(engineer).post(f"/api/v1/deployments/{deployment.pk}/start/", {}, format="json")
    assert response.status_code == 403
    assert "standard change" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[1, 2]",
        '{"process": "x", "environment": []}',
        '{"process": 99999999999999999999, "environment": 1}',
        '{"process": PROCESS, "environment": ENV, "phase_plan": {"bake_seconds": "\\u0000"}}',
        '{"process": PROCESS, "environment": ENV, "version": "\\u0000"}',
        '{"process": PROCESS, "environment": ENV, "version": "VERY_LONG"}',
        '{"process": PROCESS, "environment": ENV, "rollback_threshold": 1e308}',
        '{"process": PROCESS, "environment": ENV, "scheduled_for": "99999-01-01T00:00:00Z"}',
        '{"process": PROCESS, "environment": ENV, "model": "phased", "phase_plan": {"percentages": [1e999]}}',
        '{"process": PROCESS, "environment": ENV, "phase_plan": {"bake_seconds": 99999999999999999999999}}',
        '{"process": PROCESS, "environment": ENV, "package": "a-string"}',
    ],
)
def test_bad_input_to_plan_a_deployment_is_400_never_500(landscape, dm_api, body):
    world = landscape()
    body = body.replace("PROCESS", str(world.process.pk)).replace("ENV", str(world.environment.pk))
    body = body.replace("VERY_LONG", "v" * 100_000)
    response = dm_api.post("/api/v1/deployments/", body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v1/deployments/abc/", 404),
        ("/api/v1/deployments/99999999999999999999/", 404),
        ("/api/v1/deployments/?state=nonsense", 400),
        ("/api/v1/deployments/?service=99999999999999999999", 400),
        ("/api/v1/deployments/?created_after=not-a-date", 400),
        ("/api/v1/deployments/DEPLOYMENT/events/?after=-1", 400),
        ("/api/v1/deployments/DEPLOYMENT/events/?after=99999999999999999999", 400),
        ("/api/v1/steps/?deployment=%00", 400),
        ("/api/v1/steps/?cursor=garbage", 404),
        ("/api/v1/step-logs/?deployment=99999999999999999999", 400),
    ],
)
def test_bad_reads_are_answered_never_500(landscape, manager, dm_api, path, expected):
    deployment = plan(landscape(), manager)
    response = dm_api.get(path.replace("DEPLOYMENT", str(deployment.pk)))
    assert response.status_code == expected, response.content[:300]


def test_the_deployments_list_makes_the_same_queries_for_3_and_30_rows(landscape, manager, dm_api):
    world = landscape(targets=1)
    for _ in range(3):
        plan(world, manager)
    three = list_queries(dm_api, "/api/v1/deployments/", 3)
    for _ in range(27):
        plan(world, manager)
    assert list_queries(dm_api, "/api/v1/deployments/", 30) == three


def test_a_retried_request_with_its_idempotency_key_plans_one_deployment(landscape, pipeline):
    world = landscape()
    body = {"process": world.process.pk, "environment": world.environment.pk, "continuous": True}
    first = pipeline.post("/api/v1/deployments/", body, format="json", HTTP_IDEMPOTENCY_KEY="build-77")
    retry = pipeline.post("/api/v1/deployments/", body, format="json", HTTP_IDEMPOTENCY_KEY="build-77")
    assert first.status_code == retry.status_code == 201
    assert retry.json()["id"] == first.json()["id"]
    assert Deployment.objects.count() == 1


def test_webhook_payloads_show_a_deployment_as_its_detail_endpoint_does_without_actions(landscape, manager, dm_api):
    deployment = plan(landscape(), manager)
    shown = representation_of("deployments.deployment", str(deployment.pk))
    detail = dm_api.get(f"/api/v1/deployments/{deployment.pk}/").json()
    assert shown["actions"] == []
    assert {**shown, "actions": detail["actions"]} == detail


@pytest.mark.parametrize(
    "when", ["9999-12-31T23:59:59-10:00", "0001-01-01T00:00:00+05:00", "2030-02-30T00:00:00Z", "", None, 12]
)
def test_out_of_range_times_to_schedule_are_400_never_500(landscape, manager, dm_api, when):
    deployment = plan(landscape(), manager)
    response = dm_api.post(f"/api/v1/deployments/{deployment.pk}/schedule/", {"scheduled_for": when}, format="json")
    assert response.status_code in (400, 422), response.content[:300]


def test_the_steps_and_step_logs_lists_make_the_same_queries_for_3_and_30_rows(landscape, manager, dm_api):
    intervention = {"name": "check", "executor": "manual_intervention", "parameters": {"instructions": "look"}}
    counts = []
    for targets in (3, 30):
        deployment = plan(landscape(targets=targets, steps=[intervention]), manager)
        for step in deployment.steps.all():
            StepLog.objects.create(step=step, message="waiting")
        counts.append(
            (
                list_queries(dm_api, f"/api/v1/steps/?deployment={deployment.pk}", targets),
                list_queries(dm_api, f"/api/v1/step-logs/?deployment={deployment.pk}", targets),
            )
        )
    assert counts[0] == counts[1]
