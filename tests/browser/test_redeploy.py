"""Rolling a release back in the browser: during the early life support of the demo's Web Shop 5.1 (deployed on the
real worker after an earlier package), a P1 makes its Deployment Manager follow the offer to the deployment's page
and roll it back; the rollback runs on the worker and "what runs where" shows the earlier version again. From that
cell, any earlier version can be redeployed. Screenshots at desktop and tablet width."""

import re

from playwright.sync_api import Page, expect

from cmdb.models import ConfigurationItem
from deployments.choices import DeploymentState
from deployments.incidents import incident_open
from deployments.models import Deployment
from releases.choices import ReleaseState
from releases.models import Release, ReleasePackage
from tests.browser.conftest import axe_violations, shot, sign_in
from tests.browser.test_els import TABLET, web_shop_in_els  # noqa: F401 - the fixture
from tests.harness.processes import wait_until


def test_a_deployment_manager_rolls_web_shop_back_during_els_and_what_runs_where_shows_the_earlier_version(
    page: Page,
    web_shop_in_els,  # noqa: F811 - the fixture imported above
):
    period = web_shop_in_els
    deployment = period.deployment
    earlier = Deployment.objects.get(
        service=deployment.service, environment=deployment.environment, finished_at__lt=deployment.finished_at
    )
    ReleasePackage.objects.filter(pk=earlier.package_id).update(version="5.0.0")
    Deployment.objects.filter(pk=earlier.pk).update(version="5.0.0")
    web_shop = ConfigurationItem.objects.get(name="web-shop", environment=deployment.environment)
    incident_open(actor=None, title="Checkout returns 500", severity="p1", ci=web_shop)
    sign_in(page, "dan.deploy")

    # the period's offer leads to the deployment's page, which offers the rollback to 5.0.0 with a reason
    page.goto(period.get_absolute_url())
    page.locator("[data-rollback-link]").click()
    expect(page).to_have_url(re.compile(rf"/deployments/{deployment.pk}/#rollout-controls$"))
    assert axe_violations(page) == []
    page.locator('#rollout-controls button[data-action="roll_back_release"]').click()
    dialog = page.locator("#action-roll_back_release")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".modal-title")).to_contain_text("Roll back to 5.0.0")
    dialog.get_by_role("textbox").fill("P1: checkout returns 500 since 5.1")
    shot(page, "rollback-confirm-desktop")
    dialog.get_by_role("button", name="Roll back to 5.0.0").click()
    expect(page.locator('[data-message-kind="success"]')).to_contain_text("done")

    # the rollback runs on the worker, fast, and the release is rolled back
    rollback = Deployment.objects.get(replaces=deployment)
    wait_until(
        lambda: Deployment.objects.filter(pk=rollback.pk, state__in=["succeeded", "failed", "rolled_back"]).exists(),
        timeout=60,
        what="the rollback to finish on the worker",
    )
    rollback.refresh_from_db()
    assert rollback.state == DeploymentState.SUCCEEDED
    assert Release.objects.get(pk=period.release_id).state == ReleaseState.ROLLED_BACK
    page.goto(rollback.get_absolute_url())
    expect(page.locator("[data-fast-rollback]")).to_be_visible()
    assert axe_violations(page) == []
    shot(page, "rollback-done-desktop")
    page.set_viewport_size(TABLET)
    shot(page, "rollback-done-tablet")
    page.set_viewport_size({"width": 1366, "height": 900})

    # what runs where: the Web Shop runs 5.0.0 in production again, and its cell offers another redeployment
    page.goto("/")
    cell_link = page.get_by_role("link", name="Redeploy an earlier version of Web Shop in production")
    row = page.locator("#what-runs-where tr", has=page.get_by_role("rowheader", name="Web Shop"))
    expect(row).to_contain_text("5.0.0")
    assert axe_violations(page) == []
    shot(page, "what-runs-where-after-rollback")
    cell_link.click()
    expect(page).to_have_url(re.compile(rf"/deployments/{rollback.pk}/redeploy/$"))
    expect(page.get_by_label("Package")).to_contain_text("release Web Shop")
    assert axe_violations(page) == []
    shot(page, "redeploy-form-desktop")
    page.set_viewport_size(TABLET)
    shot(page, "redeploy-form-tablet")
