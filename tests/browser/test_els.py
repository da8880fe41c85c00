"""Early Life Support in the browser: the demo's ready Web Shop release goes to production (on the real worker), a
P1 opens against it, and its Deployment Manager works the period from the ELS board: the P1 blocks the exit, the
page offers the redeployment of the previous package, the incident is resolved from its own page, and the exit
then moves the release to review. Screenshots at desktop and tablet width.

Governance is set up to allow a production deployment now: the approved change is moved to cover now, a window
opens now, and a freeze in force (the year-end one, in late December) is lifted.
"""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, expect

from cmdb.models import ConfigurationItem, Environment
from deployments import services
from deployments.choices import DeploymentModel, DeploymentState
from deployments.els import previous_package_redeploy_link
from deployments.incidents import incident_open
from deployments.models import Deployment, DeploymentProcess, EarlyLifeSupport, Incident, StepTemplate
from releases.choices import ReleaseState
from releases.models import ChangeRecord, FreezePeriod, Release, ReleaseWindow
from tests.browser.conftest import shot, sign_in
from tests.browser.test_deployments import rollout_violations
from tests.harness.processes import wait_until
from tests.releases.factories import PackageFactory

TABLET = {"width": 768, "height": 1024}


def own_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page's own parts: its header and content (the top bar
    and menu are every page's)."""
    return rollout_violations(page, ".page-header", "#content")


def _governance_open_now(release: Release, production: Environment) -> ChangeRecord:
    """The release's approved change covers now, a production window is open now, no freeze is in force."""
    now = timezone.now()
    change = release.changes.get()
    ChangeRecord.objects.filter(pk=change.pk).update(
        planned_start=now - timedelta(minutes=30), planned_end=now + timedelta(hours=3)
    )
    window = ReleaseWindow.objects.create(
        name="Now, for the test",
        first_date=(now - timedelta(days=1)).date(),
        start_time=(now - timedelta(hours=1)).time().replace(microsecond=0),
        rrule="FREQ=DAILY",
        duration=timedelta(hours=6),
        time_zone="UTC",
    )
    window.environments.set([production])
    FreezePeriod.objects.filter(start__lte=now + timedelta(hours=3), end__gte=now - timedelta(hours=1)).delete()
    change.refresh_from_db()
    return change


@pytest.fixture
def web_shop_in_els(site) -> EarlyLifeSupport:
    """Web Shop 5.1 deployed to production by dan.deploy (on the worker), after Web Shop 5.0 ran there; its
    ELS period started long enough ago for the minimum duration to have passed."""
    release = Release.objects.get(name="Web Shop", state=ReleaseState.READY)
    production = Environment.objects.get(name="production")
    change = _governance_open_now(release, production)
    web_shop = ConfigurationItem.objects.get(name="web-shop", environment=production)
    process = DeploymentProcess.objects.create(service=web_shop.service, name="quick", bake_seconds=0)
    StepTemplate.objects.create(process=process, position=0, name="deploy", executor="simulator", parameters={})
    earlier = PackageFactory(
        release__name="Web Shop",
        release__version="5.0",
        release__policy=release.policy,
        release__services=[web_shop.service],
    )
    Deployment.objects.create(
        service=web_shop.service,
        environment=production,
        process=process,
        package=earlier,
        state=DeploymentState.SUCCEEDED,
        finished_at=timezone.now() - timedelta(days=12),
    )
    deployment = services.deployment_create(
        actor=User.objects.get(username="dan.deploy"),
        process=process,
        environment=production,
        model=DeploymentModel.BIG_BANG,
        package=release.packages.get(),
        change=change,
    )
    services.deployment_start(deployment=deployment, actor=User.objects.get(username="dan.deploy"))
    wait_until(
        lambda: EarlyLifeSupport.objects.filter(deployment=deployment, state="active").exists(),
        timeout=60,
        what="the production deployment to succeed and its early life support to start",
    )
    period = EarlyLifeSupport.objects.get(deployment=deployment)
    started = timezone.now() - timedelta(days=period.min_duration_days, hours=1)
    EarlyLifeSupport.objects.filter(pk=period.pk).update(started_at=started)
    Release.objects.filter(pk=release.pk).update(els_started_at=started)
    period.refresh_from_db()
    return period


def exit_from_the_page(page: Page, reason: str) -> None:
    page.locator('.btn-list button[data-action="exit"]').click()
    dialog = page.locator("#action-exit")
    expect(dialog).to_be_visible()
    dialog.get_by_role("textbox").fill(reason)
    dialog.get_by_role("button", name="Exit").click()


def test_a_deployment_manager_resolves_the_p1_that_blocks_the_exit_then_exits_and_the_release_goes_to_review(
    page: Page, web_shop_in_els
):
    period = web_shop_in_els
    release = period.release
    web_shop = ConfigurationItem.objects.get(name="web-shop", environment=period.deployment.environment)
    incident, _ = incident_open(
        actor=None,
        title="Checkout returns 500",
        severity="p1",
        ci=web_shop,
        source="alertmanager",
        external_id="checkout-500",
    )
    assert incident.deployment == period.deployment  # tied to it by the CI it changed
    sign_in(page, "dan.deploy")

    # the board: Web Shop's period, its P1, the criterion it breaks
    page.goto("/els/")
    card = page.locator(f'[data-els="{period.pk}"]')
    expect(card).to_contain_text("Web Shop in production")
    expect(card.locator('[data-severity="p1"]')).to_have_attribute("data-count", "1")
    blocking = card.locator('[data-criterion="max_open_p1_p2"]')
    expect(blocking).to_have_attribute("data-met", "false")
    expect(blocking).to_contain_text("Open P1/P2 incidents: 1")
    expect(card.locator('[data-criterion="min_duration"]')).to_have_attribute("data-met", "true")
    assert own_violations(page) == []
    shot(page, "els-board-desktop")
    page.set_viewport_size(TABLET)
    shot(page, "els-board-tablet")
    page.set_viewport_size({"width": 1366, "height": 900})

    # the period's page: the rollback offer, and an exit refused with the unmet criterion
    card.get_by_role("link", name=str(period)).click()
    expect(page.locator("h1.page-title")).to_have_text(str(period))
    offer = page.locator("[data-rollback-offer]")
    expect(offer).to_be_visible()
    assert previous_package_redeploy_link(period.deployment)
    expect(offer.locator("[data-rollback-link]")).to_have_attribute(
        "href", previous_package_redeploy_link(period.deployment)
    )
    exit_from_the_page(page, "looks calm")
    expect(page.locator('[data-message-kind="refusal"]')).to_contain_text("cannot exit")
    expect(page.locator('[data-message-kind="condition"]')).to_have_text(["Unmet: open P1/P2 incidents: 1 (limit 0)"])
    assert own_violations(page) == []
    shot(page, "els-detail-p1-desktop")
    page.set_viewport_size(TABLET)
    shot(page, "els-detail-p1-tablet")
    page.set_viewport_size({"width": 1366, "height": 900})
    period.refresh_from_db()
    assert period.state == "active"

    # the incident's page: resolved with what was done
    page.locator(f'[data-incident="{incident.pk}"]').get_by_role("link").click()
    expect(page.locator("[data-correlation-text]")).to_contain_text("by CI web-shop")
    page.locator('.btn-list button[data-action="resolve"]').click()
    dialog = page.locator("#action-resolve")
    expect(dialog).to_be_visible()
    dialog.get_by_role("textbox").fill("Rolled the payment gateway's certificate")
    dialog.get_by_role("button", name="Resolve").click()
    expect(page.locator('[data-message-kind="success"]')).to_contain_text("Resolve: done")
    expect(page.locator(".page-header")).to_contain_text("Resolved")
    assert own_violations(page) == []
    shot(page, "incident-resolved-desktop")
    page.set_viewport_size(TABLET)
    shot(page, "incident-resolved-tablet")
    page.set_viewport_size({"width": 1366, "height": 900})
    incident.refresh_from_db()
    assert incident.state == "resolved"

    # back to the period: every criterion holds, the offer is gone, the exit goes through
    page.get_by_role("link", name=str(period)).click()
    expect(page.locator('[data-criterion][data-met="false"]')).to_have_count(0)
    expect(page.locator("[data-rollback-offer]")).to_have_count(0)
    exit_from_the_page(page, "Quiet since the fix")
    expect(page.locator('[data-message-kind="success"]')).to_contain_text("Exit: done")
    expect(page.locator(".page-header")).to_contain_text("Exited")
    period.refresh_from_db()
    release.refresh_from_db()
    assert period.state == "exited"
    assert release.state == ReleaseState.IN_REVIEW

    # the release's page says so, and the board's exited tab holds the period
    page.goto(release.get_absolute_url())
    expect(page.locator(".page-header")).to_contain_text("In review")
    page.goto("/els/?state=exited")
    expect(page.locator(f'[data-els="{period.pk}"]')).to_contain_text("Exited")
    assert Incident.objects.get(pk=incident.pk).state == "resolved"


def test_a_service_owner_opens_an_incident_from_the_form_and_finds_it_in_the_filtered_list(page: Page):
    sign_in(page, "sophie.owner")
    page.goto("/incidents/")
    page.get_by_role("link", name="New incident").click()

    # a first try without a title: said next to the field, the rest kept
    page.get_by_label("Severity").select_option("p2")
    page.get_by_label("Service and CI").select_option(label="Web Shop: web-shop (production)")
    page.get_by_label("Description").fill("Baskets empty after sign-in")
    page.watch.expected_statuses.add(422)
    page.get_by_role("button", name="Open the incident").click()
    expect(page.locator("#id_title_errors")).to_contain_text("This field is required")
    expect(page.get_by_label("Description")).to_have_value("Baskets empty after sign-in")
    assert own_violations(page) == []
    shot(page, "incident-form-refused-desktop")

    page.get_by_label("Title").fill("Baskets lost at sign-in")
    page.get_by_role("button", name="Open the incident").click()
    expect(page.locator("h1.page-title")).to_contain_text("Baskets lost at sign-in")
    incident = Incident.objects.get(title="Baskets lost at sign-in")
    assert (incident.severity, incident.opened_by.username) == ("p2", "sophie.owner")
    linked = f"Linked to deployment {incident.deployment}" if incident.deployment else "Not linked to a deployment"
    expect(page.locator("[data-correlation-text]")).to_contain_text(linked)  # as RDM found it

    # the list, filtered to Web Shop's open incidents
    page.goto("/incidents/")
    page.get_by_label("Service", exact=True).select_option(label="Web Shop")
    page.get_by_label("Open", exact=True).select_option(label="Open or acknowledged")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("row").filter(has_text="Baskets lost at sign-in")).to_have_count(1)
    assert own_violations(page) == []
    shot(page, "incident-list-desktop")
    page.set_viewport_size(TABLET)
    shot(page, "incident-list-tablet")
