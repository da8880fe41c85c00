"""A blue/green deployment started from the browser: the start form shows the parallel model's fields when it is
chosen, the plan builder's problems appear on their fields, the stored plan shows the parallel set's wave and the
cutover, and the rollout runs on a real worker to success, its cutover a call to the local HTTP target server."""

import pytest
from playwright.sync_api import expect

from cmdb.models import ConfigurationItem, Environment
from deployments.models import Deployment, Target
from releases.models import Release
from tests.browser.conftest import shot, sign_in
from tests.browser.test_deployments import (  # noqa: F401 - fixtures
    ROLLOUT_TIMEOUT,
    _leaving_a_live_page_is_not_a_failure,
    beat,
    rollout_violations,
    web_shop,
)
from tests.deployments.test_rollouts import LOCAL


@pytest.fixture
def blue_green_shop(web_shop):  # noqa: F811
    """Web Shop's two staging nodes as two sets: web-shop (ring blue) serves, web-shop-2 (ring green) idles."""
    staging = Environment.objects.get(name="staging")
    for name, ring, traffic in (("web-shop", "blue", "live"), ("web-shop-2", "green", "standby")):
        ci = ConfigurationItem.objects.get(name=name, environment=staging)
        ConfigurationItem.objects.filter(pk=ci.pk).update(attributes={**(ci.attributes or {}), "traffic": traffic})
        Target.objects.filter(ci=ci).update(ring=ring)
    return web_shop


@pytest.fixture
def local_worker(celery_worker, worker_factory):
    """The site's worker replaced by one that may call the target server on this machine."""
    celery_worker.stop()
    return worker_factory(name="local-worker", concurrency=2, **LOCAL)


def traffic_in_staging(service) -> dict[str, str]:
    cis = ConfigurationItem.objects.filter(environment__name="staging", service=service).order_by("name")
    return {ci.name: (ci.attributes or {}).get("traffic", "") for ci in cis}


def test_a_manager_starts_a_blue_green_deployment_from_the_form_and_traffic_is_cut_over(
    page,
    beat,  # noqa: F811
    blue_green_shop,
    local_worker,
    target_server,
):
    release = Release.objects.get(name="Web Shop", state="ready")
    sign_in(page, "dan.deploy")

    # step 1: the parallel model's fields appear when it is chosen, the phased ones go
    page.goto(f"/deployments/new/?release={release.pk}")
    page.get_by_label("Environment").select_option(label="staging")
    expect(page.get_by_label("Canary targets")).to_be_visible()
    expect(page.get_by_label("Live set")).to_be_hidden()
    page.get_by_label("Parallel (blue/green)").check()
    expect(page.get_by_label("Canary targets")).to_be_hidden()
    expect(page.get_by_role("group", name="Parallel (blue/green): the plan")).to_be_visible()
    page.get_by_label("Sets named by").select_option(label="Ring")
    page.get_by_label("Live set").fill("blue")
    page.get_by_label("Parallel set").fill("blue")
    page.get_by_label("Cutover call URL").fill(target_server.url("/effects/cutover"))
    page.get_by_label("Bake time (seconds)").fill("0")
    shot(page, "blue-green-start-form")

    # the plan builder's problems, each on its field, the parallel model still chosen
    page.watch.expected_statuses.add(422)
    page.get_by_role("button", name="Plan the deployment").click()
    expect(page.locator("#id_parallel_set_errors")).to_have_text("The live and the parallel sets must differ.")
    expect(page.locator("#id_cutover_rollback_url_errors")).to_contain_text("the rollback_url that cuts back")
    expect(page.get_by_label("Live set")).to_have_value("blue")
    assert rollout_violations(page, "form.card") == []
    shot(page, "blue-green-start-form-refused")
    assert not Deployment.objects.filter(package__release=release).exists()

    page.get_by_label("Parallel set").fill("green")
    page.get_by_label("Cut-back call URL").fill(target_server.url("/effects/cutback"))
    page.get_by_role("button", name="Plan the deployment").click()

    # step 2: the stored plan: the parallel set's wave, then the cutover, and the live set in neither
    expect(page.get_by_role("heading", name="Wave 1: parallel set green")).to_be_visible()
    expect(page.get_by_role("heading", name="Wave 2: cutover to green")).to_be_visible()
    waves = page.locator("[data-wave]")
    expect(waves.nth(1)).to_contain_text("cut over to green")
    expect(page.locator('[data-target-name="web-shop"]')).to_have_count(0)
    assert rollout_violations(page) == []
    shot(page, "blue-green-plan-before-start")

    # step 3: started, it runs to success and traffic is cut over once
    page.get_by_role("button", name="Confirm start").click()
    expect(page.locator("[data-rollout-state]")).to_contain_text("Succeeded", timeout=ROLLOUT_TIMEOUT)
    expect(page.locator("#rollout-controls button")).to_have_count(0)
    expect(page.locator("#rollout-summary")).to_contain_text("cutover: url " + target_server.url("/effects/cutover"))
    shot(page, "blue-green-succeeded")
    assert target_server.effect_counts() == {"/effects/cutover": 1}
    assert traffic_in_staging(blue_green_shop) == {"web-shop": "standby", "web-shop-2": "live"}
