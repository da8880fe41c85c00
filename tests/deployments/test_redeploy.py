"""Rolling back a release that succeeded: a new deployment of an earlier package replaces it (deployments.redeploy)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cmdb.models import ConfigurationItem
from cmdb.selectors import version_matrix
from deployments import redeploy, selectors, services
from deployments.choices import DeploymentState, ElsState, StepKind
from deployments.els import previous_package_redeploy_link
from deployments.models import Deployment, EarlyLifeSupport, Target
from rdm_site.exceptions import InvalidInput, NotAllowed, UnmetConditions
from rdm_site.models import AuditEvent
from releases.choices import ChangeState, ChangeType, PackageState, ReleaseState
from tests.deployments.conftest import drive
from tests.deployments.governed import Governed
from tests.releases.factories import ChangeFactory, PackageFactory, ReleaseFactory, UnitFactory

pytestmark = pytest.mark.django_db


def earlier_success(governed: Governed, version: str = "1.9", days_ago: int = 10) -> Deployment:
    """A package of an earlier release of the service that succeeded in production ``days_ago`` days ago, its
    unit naming the world's application CI as the current release's does."""
    world = governed.world
    release = ReleaseFactory(name="Shop", version=version, services=[world.service], state=ReleaseState.CLOSED)
    UnitFactory(release=release, name="shop-app").configuration_items.set([world.ci])
    package = PackageFactory(release=release, version=version, state=PackageState.VALIDATED)
    finished = timezone.now() - timedelta(days=days_ago)
    return Deployment.objects.create(
        service=world.service,
        environment=world.production,
        process=governed.process,
        model="big_bang",
        package=package,
        version=version,
        state=DeploymentState.SUCCEEDED,
        started_at=finished - timedelta(minutes=5),
        finished_at=finished,
    )


def released(governed: Governed, **plan) -> Deployment:
    """The governed release deployed to production and now in early life support."""
    deployment = governed.plan(**plan)
    services.deployment_start(deployment=deployment, actor=governed.dm)
    deployment = drive(deployment)
    assert governed.world.reload().state == ReleaseState.EARLY_LIFE_SUPPORT
    return deployment


def matrix_versions(governed: Governed) -> list[str]:
    row = next(row for row in version_matrix().rows if row.service == governed.world.service)
    cell = next(cell for cell in row.cells if cell.environment == governed.world.production)
    return cell.versions


def test_rolling_back_a_release_in_early_life_support_restores_the_previous_version_everywhere():
    # given 1.9 ran in production before the release, whose deployment succeeded (through a health gate) and whose
    # watch began
    governed = Governed(health_checks=[{"executor": "wait", "parameters": {"duration_seconds": "0"}}])
    earlier_success(governed)
    deployment = released(governed)
    assert deployment.steps.filter(kind=StepKind.GATE).exists()
    assert matrix_versions(governed) == ["b1"]

    # when a Deployment Manager rolls it back
    rollback = redeploy.deployment_roll_back_release(deployment=deployment, actor=governed.dm, reason="P1: checkout")

    # then a new deployment of 1.9 replaces it, under the same change, fast: no bake time, no gate
    assert (rollback.replaces, rollback.version, rollback.change) == (deployment, "1.9", governed.change)
    assert rollback.fast_rollback
    assert list(rollback.waves.values_list("bake_seconds", flat=True)) == [0]
    assert not rollback.steps.filter(kind=StepKind.GATE).exists()
    assert rollback.state == DeploymentState.QUEUED
    # (the release it replaced keeps its state until the rollback succeeds)
    assert governed.world.reload().state == ReleaseState.EARLY_LIFE_SUPPORT

    # and when it has run
    assert drive(rollback).state == DeploymentState.SUCCEEDED

    # then what runs where shows 1.9 again, the release is rolled back, its change backed out and its watch over
    assert matrix_versions(governed) == ["1.9"]
    release = governed.world.reload()
    assert release.state == ReleaseState.ROLLED_BACK
    assert f"deployment #{rollback.pk} rolled" in release.end_reason
    governed.change.refresh_from_db()
    assert governed.change.state == ChangeState.BACKED_OUT
    assert deployment.early_life_support.state == ElsState.EXITED
    rollback.refresh_from_db()
    assert rollback.follow_up_problem == ""
    assert not EarlyLifeSupport.objects.filter(deployment=rollback).exists(), "1.9 lived through its own watch"
    assert AuditEvent.objects.filter(action="release.mark_rolled_back", object_id=str(governed.release.pk)).exists()
    assert AuditEvent.objects.filter(action="els.exit", reason__contains=f"deployment #{rollback.pk}").exists()


def test_a_rollback_never_passes_a_unit_that_cannot_be_reversed_and_leaves_nothing_behind():
    # given a released deployment whose release includes an irreversible migration of the service's database
    governed = Governed()
    earlier_success(governed)
    deployment = released(governed)
    UnitFactory(release=governed.release, name="drop legacy column", reversible=False)
    before = Deployment.objects.count()

    # when it is rolled back, even on the fast path, then it is refused naming the unit, and nothing is planned
    with pytest.raises(UnmetConditions) as refused:
        redeploy.deployment_roll_back_release(deployment=deployment, actor=governed.dm, reason="P1")
    assert any(
        "drop legacy column" in problem and "cannot be reversed" in problem for problem in refused.value.conditions
    )
    assert Deployment.objects.count() == before


def test_only_those_who_run_deployments_roll_back_and_a_reason_is_needed():
    governed = Governed()
    earlier_success(governed)
    deployment = released(governed)
    people = governed.world.people

    for outsider in (people.rm, people.so, people.viewer):
        with pytest.raises(NotAllowed):
            redeploy.deployment_roll_back_release(deployment=deployment, actor=outsider, reason="P1")
    with pytest.raises(InvalidInput):
        redeploy.deployment_roll_back_release(deployment=deployment, actor=governed.dm, reason=" ")
    assert not deployment.replaced_by.exists()
    assert "roll_back_release" in services.deployment_available_actions(deployment, governed.dm)
    assert "roll_back_release" not in services.deployment_available_actions(deployment, people.viewer)


def test_another_change_must_be_an_approved_emergency_change():
    # given a released deployment and a normal change and an approved emergency change, both covering now
    governed = Governed()
    earlier_success(governed)
    deployment = released(governed)
    now = timezone.now()
    covering = {"planned_start": now - timedelta(minutes=5), "planned_end": now + timedelta(hours=1)}
    normal = ChangeFactory(change_type=ChangeType.NORMAL, state=ChangeState.APPROVED, **covering)
    emergency = ChangeFactory(
        change_type=ChangeType.EMERGENCY, state=ChangeState.APPROVED, services=[governed.world.service], **covering
    )

    # when the rollback names the normal change, then it is refused
    with pytest.raises(UnmetConditions) as refused:
        redeploy.deployment_roll_back_release(deployment=deployment, actor=governed.dm, reason="P1", change=normal)
    assert refused.value.conditions == [
        f"change {normal.number} is normal: a rollback under another change needs an emergency one"
    ]

    # and under the emergency change it runs, implements that change and backs the release's change out
    rollback = redeploy.deployment_roll_back_release(
        deployment=deployment, actor=governed.dm, reason="P1", change=emergency, with_analysis=True
    )
    assert not rollback.fast_rollback
    assert drive(rollback).state == DeploymentState.SUCCEEDED
    emergency.refresh_from_db()
    governed.change.refresh_from_db()
    assert (emergency.state, governed.change.state) == (ChangeState.IMPLEMENTED, ChangeState.BACKED_OUT)


def test_nothing_to_go_back_to_and_only_what_runs_now_is_rolled_back():
    # given a release deployed where nothing ran before
    governed = Governed()
    deployment = released(governed)

    # then there is nothing to roll back to, and the ELS alert offers no rollback
    with pytest.raises(InvalidInput, match="nothing to go back to"):
        redeploy.deployment_roll_back_release(deployment=deployment, actor=governed.dm, reason="P1")
    assert previous_package_redeploy_link(deployment) == ""

    # and given an earlier success, the offer points at the rollback on the deployment's page
    earlier = earlier_success(governed)
    assert previous_package_redeploy_link(deployment) == f"/deployments/{deployment.pk}/#rollout-controls"

    # when it was rolled back, then the restored deployment is what runs, and the replaced one cannot be again
    drive(redeploy.deployment_roll_back_release(deployment=deployment, actor=governed.dm, reason="P1"))
    assert selectors.current_deployment(governed.world.service, governed.world.production).package == earlier.package
    with pytest.raises(UnmetConditions, match="no longer runs there"):
        redeploy.deployment_roll_back_release(deployment=deployment, actor=governed.dm, reason="again")


def test_from_what_runs_where_any_earlier_success_can_be_redeployed_but_not_another_package():
    # given two earlier packages that succeeded in production, and the release now running
    governed = Governed()
    oldest = earlier_success(governed, "1.8", days_ago=20)
    earlier_success(governed, "1.9", days_ago=10)
    deployment = released(governed)
    assert [package.version for package in selectors.redeployable_packages(deployment)] == ["1.9", "1.8"]
    world = governed.world

    # when 1.8 is redeployed from the matrix, then it replaces what runs now
    rollback = redeploy.deployment_redeploy(
        service=world.service, environment=world.production, package=oldest.package, actor=governed.dm, reason="bad"
    )
    assert (rollback.replaces, rollback.version) == (deployment, "1.8")

    # and a package that never succeeded there is refused
    drive(rollback)
    stranger = PackageFactory(release=ReleaseFactory(services=[world.service]), state=PackageState.VALIDATED)
    with pytest.raises(UnmetConditions, match="did not succeed in production before"):
        redeploy.deployment_redeploy(
            service=world.service, environment=world.production, package=stranger, actor=governed.dm, reason="x"
        )


def test_the_deployment_page_offers_the_rollback_to_those_who_run_deployments_and_its_form_runs_it(client):
    # given a released deployment where nothing ran before, then its page offers no rollback
    governed = Governed()
    deployment = released(governed)
    people = governed.world.people
    client.force_login(governed.dm)
    assert 'data-action="roll_back_release"' not in client.get(deployment.get_absolute_url()).content.decode()
    client.force_login(people.viewer)
    assert "Roll back release" not in client.get(deployment.get_absolute_url()).content.decode()

    # and given an earlier success, its page offers the rollback, with a reason, to a Deployment Manager and not to
    # a viewer
    earlier_success(governed)
    client.force_login(people.viewer)
    page = client.get(deployment.get_absolute_url()).content.decode()
    assert 'data-action="roll_back_release"' not in page
    assert "<strong>Roll back release</strong>: viewer may not roll back" in page
    client.force_login(governed.dm)
    page = client.get(deployment.get_absolute_url()).content.decode()
    assert 'data-action="roll_back_release"' in page
    assert "Roll back to 1.9" in page
    assert 'id="action-roll_back_release-reason" name="reason"' in page

    # and when the form is sent, the rollback is planned and started, and the page says so
    url = f"/deployments/{deployment.pk}/do/roll_back_release/"
    response = client.post(url, {"reason": "P1: checkout", "next": deployment.get_absolute_url()}, follow=True)
    rollback = deployment.replaced_by.get()
    assert (rollback.version, rollback.fast_rollback, rollback.state) == ("1.9", True, DeploymentState.QUEUED)
    assert response.status_code == 200
    rollback_page = client.get(rollback.get_absolute_url()).content.decode()
    assert "fast rollback: no bake time, no health-gate analysis" in rollback_page
    assert f"deployment #{deployment.pk}" in rollback_page
    assert f"deployment #{rollback.pk}" in client.get(deployment.get_absolute_url()).content.decode()


def test_from_what_runs_where_a_deployment_manager_redeploys_any_earlier_version(client, django_assert_num_queries):
    # given 1.8 then 1.9 ran in production before the release that runs now
    governed = Governed()
    oldest = earlier_success(governed, "1.8", days_ago=20)
    earlier_success(governed, "1.9", days_ago=10)
    deployment = released(governed)
    world = governed.world
    cell = f"/deployments/running/{world.service.pk}/{world.production.pk}/redeploy/"

    # then the home page's "what runs where" offers it in the cell to a Deployment Manager, not to a viewer
    client.force_login(world.people.viewer)
    assert cell not in client.get("/").content.decode()
    assert client.get(f"/deployments/{deployment.pk}/redeploy/").status_code == 403
    client.force_login(governed.dm)
    assert cell in client.get("/").content.decode()

    # and the cell leads to the form for what runs there, which lists the earlier packages, the last good first
    form_url = client.get(cell).url
    assert form_url == f"/deployments/{deployment.pk}/redeploy/"
    page = client.get(form_url).content.decode()
    assert page.index("1.9 (release") < page.index("1.8 (release")

    # and the form costs the same queries with twice as many earlier packages
    with CaptureQueriesContext(connection) as two:
        client.get(form_url)
    for version in ("1.5", "1.6"):
        earlier_success(governed, version, days_ago=30)
    with django_assert_num_queries(len(two)):
        client.get(form_url)

    # when 1.8 is chosen with a reason, then it is redeployed in place of what runs, and its page opens
    response = client.post(form_url, {"package": oldest.package_id, "reason": "payments broken"})
    rollback = deployment.replaced_by.get()
    assert response.url == rollback.get_absolute_url()
    assert (rollback.version, rollback.fast_rollback) == ("1.8", True)

    # and a form without a reason is answered on the form, and nothing is started
    assert client.post(form_url, {"package": oldest.package_id}).status_code == 422
    assert deployment.replaced_by.count() == 1


def test_what_runs_where_offers_a_redeployment_only_where_another_package_succeeded_before(client):
    # given the release runs in production, and its package had succeeded there once before (a re-run)
    governed = Governed()
    deployment = released(governed)
    Deployment.objects.create(
        service=deployment.service,
        environment=deployment.environment,
        process=governed.process,
        package=deployment.package,
        version=deployment.version,
        state=DeploymentState.SUCCEEDED,
        finished_at=deployment.finished_at - timedelta(days=1),
    )
    world = governed.world
    cell = f"/deployments/running/{world.service.pk}/{world.production.pk}/redeploy/"
    client.force_login(governed.dm)

    # then its cell offers no redeployment: there is nothing else to go back to
    assert selectors.redeployable_packages(deployment) == []
    assert cell not in client.get("/").content.decode()

    # and once an earlier package had succeeded there, the cell offers it
    earlier_success(governed)
    assert (world.service.pk, world.production.pk) in selectors.redeployable_places()
    assert cell in client.get("/").content.decode()


def blue_green_release(target_server, *, blue_runs: str) -> tuple[Governed, Deployment]:
    """Shop in production as two sets: blue (shop-0, shop-1) served ``blue_runs`` until release b1 went to green
    (shop-2, shop-3) in a parallel deployment that cut traffic over; b1 is in early life support."""
    deploy = {"url": target_server.url("/effects/#{Target.Name}/#{Deployment.Version}")}
    governed = Governed(steps=[{"name": "deploy", "executor": "http_call", "parameters": deploy}])
    earlier_success(governed)
    for target, ring in zip(governed.targets, ["blue", "blue", "green", "green"], strict=True):
        Target.objects.filter(pk=target.pk).update(ring=ring)
        traffic = "live" if ring == "blue" else "standby"
        ConfigurationItem.objects.filter(pk=target.ci_id).update(
            version=blue_runs if ring == "blue" else "1.0.0", attributes={"traffic": traffic}
        )
    cutover = {
        "url": target_server.url("/effects/to-green"),
        "body": {"to": "green"},
        "rollback_url": target_server.url("/effects/to-blue"),
        "rollback_body": {"to": "blue"},
    }
    deployment = released(
        governed, model="parallel", phase_plan={"live": "blue", "parallel": "green", "cutover": cutover}
    )
    assert traffic_and_versions(governed) == [("standby", blue_runs)] * 2 + [("live", "b1")] * 2
    return governed, deployment


def traffic_and_versions(governed: Governed) -> list[tuple[str, str]]:
    """(traffic, version) of shop-0 to shop-3 in the CMDB."""
    cis = ConfigurationItem.objects.filter(pk__in=[t.ci_id for t in governed.targets]).order_by("name")
    return [(ci.attributes.get("traffic", ""), ci.version) for ci in cis]


@pytest.mark.usefixtures("local_outbound")
def test_rolling_back_a_blue_green_release_cuts_traffic_back_to_the_set_that_still_runs_the_last_good_version(
    target_server,
):
    # given blue still runs 1.9 on standby, and green serves b1
    governed, deployment = blue_green_release(target_server, blue_runs="1.9")
    before = target_server.effect_counts()

    # when a Deployment Manager rolls b1 back
    rollback = redeploy.deployment_roll_back_release(deployment=deployment, actor=governed.dm, reason="P1: checkout")

    # then the rollback is one cutover back to blue: its call is the cut-back of b1's cutover, and the reverse
    # call is its own cut-back
    assert list(rollback.waves.values_list("name", flat=True)) == ["cutover to blue"]
    assert rollback.phase_plan["cutover_only"] is True
    cutover = rollback.steps.get()
    assert (cutover.parameters["url"], cutover.parameters["body"]) == (
        target_server.url("/effects/to-blue"),
        {"to": "blue"},
    )
    assert cutover.parameters["rollback_url"] == target_server.url("/effects/to-green")
    assert drive(rollback).state == DeploymentState.SUCCEEDED

    # and traffic went back once, no CI of either set was deployed to, and the CMDB says blue serves 1.9 again
    after = target_server.effect_counts()
    assert {path: after[path] - before.get(path, 0) for path in after if after[path] != before.get(path)} == {
        "/effects/to-blue": 1
    }
    assert target_server.requests_to("/effects/to-blue")[0].body == b'{"to": "blue"}'
    assert traffic_and_versions(governed) == [("live", "1.9")] * 2 + [("standby", "b1")] * 2
    assert governed.world.reload().state == ReleaseState.ROLLED_BACK


@pytest.mark.usefixtures("local_outbound")
def test_rolling_back_a_blue_green_release_deploys_the_standby_set_first_when_it_runs_another_version(target_server):
    # given blue, on standby, was since given 1.8 (the CMDB says so), and green serves b1
    governed, deployment = blue_green_release(target_server, blue_runs="1.8")
    before = target_server.effect_counts()

    # when b1 is rolled back to the last good package, 1.9
    rollback = redeploy.deployment_roll_back_release(deployment=deployment, actor=governed.dm, reason="P1: checkout")
    assert list(rollback.waves.values_list("name", flat=True)) == ["parallel set blue", "cutover to blue"]
    assert drive(rollback).state == DeploymentState.SUCCEEDED

    # then 1.9 went to blue only, then traffic was cut back to it; green still runs b1, on standby
    after = target_server.effect_counts()
    assert {path: after[path] - before.get(path, 0) for path in after if after[path] != before.get(path)} == {
        "/effects/shop-0/1.9": 1,
        "/effects/shop-1/1.9": 1,
        "/effects/to-blue": 1,
    }
    assert traffic_and_versions(governed) == [("live", "1.9")] * 2 + [("standby", "b1")] * 2


@pytest.mark.usefixtures("local_outbound")
def test_a_cutover_only_plan_is_refused_when_the_parallel_set_runs_another_version(target_server):
    governed, deployment = blue_green_release(target_server, blue_runs="1.8")
    plan = {**deployment.phase_plan, "live": "green", "parallel": "blue", "cutover_only": True}

    with pytest.raises(InvalidInput) as refused:
        governed.plan(model="parallel", phase_plan=plan, package=earlier_success(governed, "1.7").package)

    assert refused.value.errors == ["cutover_only needs the parallel set to run 1.7 (shop-0 runs 1.8, shop-1 runs 1.8)"]
