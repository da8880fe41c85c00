"""Deployments in the browser, through Django's test client: who may see and do what (a forged control changes
nothing), the start's refusals listing every unmet condition, scheduling for a window from the page, step logs
followed from a line on, and lists that filter by state, service, environment, model and date and whose query count
does not grow with their rows."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cmdb.choices import EnvironmentTier
from cmdb.models import ConfigurationItem
from deployments import guards, services
from deployments.choices import DeploymentModel, DeploymentState
from deployments.models import Deployment, StepLog
from rdm_site.roles import Role
from tests.deployments.conftest import drive, make_landscape
from tests.deployments.governed import Governed
from tests.deployments.test_parallel import blue_green
from tests.factories import UserFactory

INTERVENTION = {
    "name": "check",
    "executor": "manual_intervention",
    "parameters": {"instructions": "Look at the shop.", "deadline_minutes": 30},
    "run_once": True,
}


@pytest.fixture
def viewer(db):
    return UserFactory(username="vv", roles=[Role.VIEWER])


def detail(deployment: Deployment) -> str:
    return reverse("deployments:deployment_detail", args=[deployment.pk])


def transition(deployment: Deployment, action: str) -> str:
    return reverse("deployments:deployment_transition", args=[deployment.pk, action])


def test_a_viewer_reads_every_page_but_gets_no_control_and_a_forged_one_changes_nothing(client, manager, viewer):
    land = make_landscape()
    deployment = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    client.force_login(viewer)

    for url in (
        reverse("deployments:deployment_list"),
        reverse("deployments:service_deployments", args=[land.service.pk]),
        detail(deployment),
        reverse("deployments:deployment_live", args=[deployment.pk]),
        reverse("deployments:deployment_progress", args=[deployment.pk]),
    ):
        assert client.get(url).status_code == 200, url
    page = client.get(detail(deployment)).content.decode()
    assert "Confirm start" not in page
    assert "Discard this plan" not in page
    assert "Not available to you" in page
    assert client.get(reverse("deployments:deployment_create")).status_code == 403

    assert client.post(transition(deployment, "start"), {"reason": "forged"}).status_code == 403
    assert client.post(transition(deployment, "abort"), {"reason": "forged"}).status_code == 403
    assert client.post(reverse("deployments:deployment_discard", args=[deployment.pk])).status_code == 403
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.PLANNED


def test_a_manual_intervention_is_answered_by_a_manager_and_refused_to_a_viewer(client, manager, viewer):
    land = make_landscape(targets=1, steps=[INTERVENTION])
    deployment = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    services.deployment_start(deployment=deployment, actor=manager)
    deployment = drive(deployment)
    step = deployment.steps.get(name="check")
    answer = reverse("deployments:step_transition", args=[step.pk, "answer"])

    client.force_login(viewer)
    page = client.get(detail(deployment)).content.decode()
    assert "Look at the shop." in page
    assert "Send the answer" not in page
    assert client.post(answer, {"answer": "proceed"}).status_code == 403
    step.refresh_from_db()
    assert step.manual_answer == ""

    client.force_login(manager)
    assert "Send the answer" in client.get(detail(deployment)).content.decode()
    response = client.post(answer, {"answer": "proceed", "reason": "looked", "next": detail(deployment)})
    assert response.status_code == 302
    assert response["Location"] == detail(deployment)
    step.refresh_from_db()
    assert step.manual_answer == "proceed"


def _in_two_waves(manager, land) -> Deployment:
    """A phased deployment of the landscape: half the targets, then the rest."""
    return services.deployment_create(
        actor=manager,
        process=land.process,
        environment=land.environment,
        model=DeploymentModel.PHASED,
        phase_plan={"percentages": [50, 100]},
    )


def test_a_baking_wave_counts_down_and_the_rollout_is_paused_then_rolled_back_from_its_page(client, manager):
    deployment = _in_two_waves(manager, make_landscape(targets=2, bake_seconds=600))
    services.deployment_start(deployment=deployment, actor=manager)
    deployment = drive(deployment)
    client.force_login(manager)

    def offered(page: str) -> set[str]:
        """The controls on the page, each opening a confirmation that asks for a reason or a comment."""
        names = {name for name in ("pause", "resume", "abort", "roll_back", "fail") if f'id="action-{name}"' in page}
        assert all(f'id="action-{name}-reason"' in page for name in names)
        return names

    page = client.get(detail(deployment)).content.decode()
    assert "Baking: <span data-countdown=" in page
    assert "left before the health gate" in page
    assert offered(page) == {"pause", "abort", "roll_back"}

    client.post(transition(deployment, "pause"), {"reason": "checking the canary"})
    page = client.get(detail(deployment)).content.decode()
    assert offered(page) == {"resume", "abort", "roll_back", "fail"}
    assert ">Mark failed</button>" in page

    response = client.post(transition(deployment, "roll_back"), {"reason": "the canary's errors doubled"}, follow=True)
    deployment = drive(deployment)
    assert deployment.state == DeploymentState.ROLLED_BACK
    assert "the canary&#x27;s errors doubled" in response.content.decode()  # the reason, in the timeline


def test_a_start_refused_shows_every_unmet_condition_and_the_plan_stays(client, manager):
    # a production deployment without a package, a change or a window
    land = make_landscape(tier=EnvironmentTier.PRODUCTION)
    deployment = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    client.force_login(manager)

    page = client.get(detail(deployment)).content.decode()
    assert "Not met" in page
    assert "a production deployment names the approved change it implements" in page

    response = client.post(transition(deployment, "start"), {"reason": ""}, follow=True)
    conditions = [str(message) for message in response.context["messages"] if "condition" in message.tags]
    assert conditions == guards.start_conditions(deployment, deployment.created)
    assert len(conditions) >= 3
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.PLANNED


def test_a_plan_is_scheduled_from_its_page_for_a_time_in_the_window_and_the_guards_answer_for_that_time(db, client):
    governed = Governed()  # a window from an hour ago for six hours, a change from half an hour ago for four
    deployment = governed.plan()
    client.force_login(governed.dm)
    assert 'data-action="schedule"' in client.get(detail(deployment)).content.decode()

    def schedule(when):
        form = {"scheduled_for": f"{when:%Y-%m-%dT%H:%M}", "reason": "agreed with the shop", "next": detail(deployment)}
        return client.post(transition(deployment, "schedule"), form, follow=True)

    # after the window and the change: refused, every unmet condition shown, still planned
    late = (timezone.now() + timedelta(hours=7)).replace(second=0, microsecond=0)
    response = schedule(late)
    conditions = [str(message) for message in response.context["messages"] if "condition" in message.tags]
    assert conditions == guards.schedule_conditions(deployment, late)
    assert len(conditions) >= 2
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.PLANNED

    # within both: scheduled, and the page answers each guard for now and for that time
    when = (timezone.now() + timedelta(hours=2)).replace(second=0, microsecond=0)
    page = schedule(when).content.decode()
    deployment.refresh_from_db()
    assert (deployment.state, deployment.scheduled_for) == (DeploymentState.SCHEDULED, when)
    assert f"At {when:%Y-%m-%d %H:%M} UTC" in page
    assert f'Scheduled for</div><div class="datagrid-content">{when:%Y-%m-%d %H:%M} UTC' in page
    assert page.count('<span class="badge rdm-state-succeeded">Met</span>') == 4 + 3  # starting now; at that time
    assert "Not met" not in page


def test_a_governed_release_is_planned_from_the_form_then_started(db, client, django_capture_on_commit_callbacks):
    governed = Governed()
    client.force_login(governed.dm)
    create = reverse("deployments:deployment_create")
    form = client.get(create, {"release": governed.release.pk})
    assert form.status_code == 200
    assert form.context["form"]["process"].initial == governed.process

    response = client.post(
        create,
        {
            "release": governed.release.pk,
            "process": governed.process.pk,
            "environment": governed.world.production.pk,
            "model": "phased",
            "canary": "1",
            "percentages": "50, 100",
            "bake_seconds": "0",
            "change": governed.change.pk,
        },
    )
    deployment = Deployment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == detail(deployment)
    assert deployment.package == governed.package
    assert deployment.phase_plan == {"canary": 1, "percentages": [50, 100], "bake_seconds": 0}
    page = client.get(detail(deployment)).content.decode()
    assert "Not met" not in page
    assert page.count('data-wave="') == deployment.waves.count() == 3

    with django_capture_on_commit_callbacks(execute=False):
        client.post(transition(deployment, "start"), {"reason": ""})
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.QUEUED


def test_a_release_with_a_built_package_offers_to_deploy_it_to_those_who_plan_deployments(db, client, viewer):
    governed = Governed()
    start = f'href="{reverse("deployments:deployment_create")}?release={governed.release.pk}"'
    client.force_login(governed.dm)
    assert start in client.get(governed.release.get_absolute_url()).content.decode()
    client.force_login(viewer)
    assert start not in client.get(governed.release.get_absolute_url()).content.decode()


def test_a_plan_the_service_refuses_is_shown_again_with_the_reason(client, manager):
    land = make_landscape()
    client.force_login(manager)
    response = client.post(
        reverse("deployments:deployment_create"),
        {"process": land.process.pk, "environment": land.environment.pk, "model": "phased"},
    )
    assert response.status_code == 422
    assert "A phased deployment needs rings, or percentages" in response.content.decode()
    assert not Deployment.objects.exists()


def test_a_planned_deployment_is_discarded(client, manager):
    land = make_landscape()
    deployment = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    client.force_login(manager)
    response = client.post(reverse("deployments:deployment_discard", args=[deployment.pk]), {"reason": "wrong model"})
    assert response.status_code == 302
    assert not Deployment.objects.filter(pk=deployment.pk).exists()


def test_step_logs_are_followed_from_the_last_line_seen(client, manager):
    land = make_landscape(targets=1)
    deployment = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    services.deployment_start(deployment=deployment, actor=manager)
    step = drive(deployment).steps.get()
    lines = list(StepLog.objects.filter(step=step).order_by("id"))
    assert lines
    logs = reverse("deployments:step_logs", args=[deployment.pk, step.pk])
    client.force_login(manager)

    first = client.get(logs).content.decode()
    assert all(line.message in first for line in lines)
    assert 'id="step-log-lines"' in first
    later = client.get(logs, {"after": lines[-1].pk}).content.decode()
    assert "data-log=" not in later
    assert "End of the log." in later
    assert "hx-trigger" not in later  # the step is finished: no more polling


def test_the_list_filters_by_state_service_environment_model_and_date(client, manager):
    first, second = make_landscape(), make_landscape()
    phased = _in_two_waves(manager, first)
    earlier = services.deployment_create(actor=manager, process=second.process, environment=second.environment)
    services.deployment_start(deployment=earlier, actor=manager)
    Deployment.objects.filter(pk=earlier.pk).update(created=timezone.now() - timedelta(days=30))
    client.force_login(manager)

    def listed(**filters) -> set[int]:
        response = client.get(reverse("deployments:deployment_list"), filters)
        assert response.status_code == 200
        return {row.record.pk for row in response.context["table"].page.object_list}

    assert listed() == {phased.pk, earlier.pk}
    assert listed(state=DeploymentState.QUEUED) == {earlier.pk}
    assert listed(service=first.service.pk) == {phased.pk}
    assert listed(environment=second.environment.pk) == {earlier.pk}
    assert listed(model=DeploymentModel.PHASED) == {phased.pk}
    cut = (timezone.now() - timedelta(days=10)).date().isoformat()  # a date, as typed in the filter form
    assert listed(created_before=cut) == {earlier.pk}
    assert listed(created_after=cut) == {phased.pk}
    form = client.get(reverse("deployments:deployment_list")).content.decode()
    for name in ("state", "service", "environment", "model", "created_after", "created_before"):
        assert f'name="{name}"' in form, name


@pytest.mark.parametrize("url_name", ["deployments:deployment_list", "deployments:service_deployments"])
def test_a_list_makes_as_many_queries_for_ten_times_the_rows(client, manager, url_name):
    land = make_landscape(targets=2)
    client.force_login(manager)
    url = reverse(url_name, args=[land.service.pk] if "service" in url_name else [])

    def queries_with(rows: int) -> int:
        while Deployment.objects.count() < rows:
            services.deployment_create(actor=manager, process=land.process, environment=land.environment)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    assert queries_with(2) == queries_with(20)


@pytest.mark.usefixtures("local_outbound")
def test_a_blue_green_plan_is_taken_from_the_form_and_each_problem_shown_on_its_field(client, manager, target_server):
    land = blue_green(target_server)
    client.force_login(manager)
    create = reverse("deployments:deployment_create")
    chosen = {"process": land.process.pk, "environment": land.environment.pk, "model": "parallel", "set_by": "ring"}
    cutover = {"cutover_url": target_server.url("/effects/cutover"), "cutover_method": "PUT"}

    # the plan builder's problems, each on its field: the same set twice, no cut-back
    response = client.post(create, {**chosen, **cutover, "live_set": "blue", "parallel_set": "blue"})
    assert response.status_code == 422
    assert response.context["form"].errors == {
        "parallel_set": ["The live and the parallel sets must differ."],
        "cutover_rollback_url": ["Cutover must give the rollback_url that cuts back: it is the rollback."],
    }
    assert 'aria-describedby="id_parallel_set_errors"' in response.content.decode()

    # a cutover call that is not HTTP, and a parallel set the CMDB says is serving
    chosen |= {
        "live_set": "blue",
        "parallel_set": "green",
        "cutover_rollback_url": target_server.url("/effects/cutback"),
    }
    response = client.post(create, {**chosen, "cutover_url": "ftp://lb.example/switch"})
    assert response.context["form"].errors == {"cutover_url": ["Cutover: url: must be an http or https URL."]}
    ConfigurationItem.objects.filter(pk=land.targets[2].ci_id).update(attributes={"traffic": "live"})
    response = client.post(create, {**chosen, **cutover})
    assert list(response.context["form"].errors) == ["parallel_set"]
    assert "is live in the CMDB" in response.context["form"].errors["parallel_set"][0]
    assert not Deployment.objects.exists()

    # a right plan is stored as the API takes it, and its page shows the parallel set's wave and the cutover
    ConfigurationItem.objects.filter(pk=land.targets[2].ci_id).update(attributes={})
    response = client.post(create, {**chosen, **cutover, "bake_seconds": "5"})
    deployment = Deployment.objects.get()
    assert response.status_code == 302
    assert deployment.phase_plan == {
        "set_by": "ring",
        "live": "blue",
        "parallel": "green",
        "cutover": {
            "url": target_server.url("/effects/cutover"),
            "method": "PUT",
            "rollback_url": chosen["cutover_rollback_url"],
        },
        "bake_seconds": 5,
    }
    page = client.get(detail(deployment)).content.decode()
    assert "Wave 1: parallel set green" in page
    assert "Wave 2: cutover to green" in page


def test_sets_named_by_a_ci_attribute_need_its_name(client, manager):
    land = make_landscape()
    client.force_login(manager)
    response = client.post(
        reverse("deployments:deployment_create"),
        {"process": land.process.pk, "environment": land.environment.pk, "model": "parallel", "set_by": "attribute:"},
    )
    assert response.context["form"].errors == {"set_attribute": ["Name the CI attribute whose values name the sets."]}
