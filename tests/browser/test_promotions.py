"""Continuous promotions in the browser: the viewer finds the Promotions page from the Deployments menu, reads a
promotion that stopped at staging (the stages as a row of steps, each a card with its deployment or why it
stopped) and one that reached production. Screenshots at desktop and tablet width; axe finds nothing serious."""

import pytest
from playwright.sync_api import Page, expect

from releases.choices import GateCode
from tests.browser.conftest import axe_violations, shot, sign_in
from tests.deployments.promotion_world import CONTINUOUS_GATES, drive_promotion, make_pipeline

TABLET = {"width": 768, "height": 1024}


@pytest.fixture
def site(transactional_db, web_server):
    """The live server on an empty database: the test builds its own pipeline and drives it here."""
    return web_server


def test_a_viewer_reads_a_stopped_and_a_finished_promotion(page: Page):
    gates = {**CONTINUOUS_GATES, "staging": [GateCode.TESTS_PASSED, GateCode.BACKUPS_VERIFIED]}
    pipeline = make_pipeline(gates=gates)
    stopped = drive_promotion(pipeline.request())
    finished = drive_promotion(pipeline.request(environments=pipeline.environments[:2]))
    sign_in(page, pipeline.world.people.viewer.username)

    page.goto("/")
    page.get_by_role("button", name="Deployments").click()
    page.get_by_role("link", name="Promotions").click()
    expect(page.get_by_role("heading", name="Promotions")).to_be_visible()
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(2)
    shot(page, "promotions-list")

    page.get_by_role("link", name=str(stopped.pk), exact=True).click()
    expect(page.locator("[data-promotion-reason]")).to_contain_text("stopped at staging")
    expect(page.locator('[data-stage="staging"] [data-stage-reason]')).to_contain_text("no backup evidence posted")
    expect(page.locator('[data-stage="production"]')).to_contain_text("Not reached.")
    expect(page.locator(".steps .step-item")).to_have_count(4)
    violations = axe_violations(page)
    assert violations == [], violations
    shot(page, "promotion-stopped")
    page.set_viewport_size(TABLET)
    shot(page, "promotion-stopped-tablet")

    page.goto(finished.get_absolute_url())
    expect(page.locator('[data-stage="test"]')).to_contain_text("Succeeded")
    assert axe_violations(page) == []
    shot(page, "promotion-succeeded-tablet")
