"""The dashboard, the notifications dropdown and the tokens page, in Chromium on the demo data."""

import re

from playwright.sync_api import expect

from rdm_site.dashboard import PIPELINE_STATES
from rdm_site.models import ApiToken, Notification
from rdm_site.notifications import notification_send
from releases.models import Approval, Release
from releases.selectors import changes_awaiting_decision_by
from tests.browser.conftest import axe_violations, shot, sign_in


def test_a_release_manager_reads_the_dashboard(page):
    sign_in(page, "rita.release")
    page.goto("/")
    pipeline = page.locator("#pipeline")
    expect(pipeline.get_by_role("heading", name="Release pipeline")).to_be_visible()
    for state in ("Draft", "Submitted", "Ready", "Deploying", "Closed"):
        expect(pipeline.get_by_role("heading", name=state)).to_be_visible()
    for state in PIPELINE_STATES:
        count = Release.objects.filter(state=state).count()
        expect(pipeline.locator(f'li[data-state="{state}"] > h3 .badge')).to_have_text(str(count))
        expect(pipeline.locator(f'li[data-state="{state}"] .rdm-release-card')).to_have_count(min(count, 3))
    expect(page.get_by_role("heading", name="Needs my action")).to_be_visible()
    expect(page.get_by_role("heading", name="The next 28 days")).to_be_visible()
    expect(page.locator("[data-viewer-zone]")).not_to_have_text("")
    expect(page.get_by_role("heading", name="What runs where")).to_be_visible()
    expect(page.locator("#what-runs-where tbody tr").first).to_be_visible()
    expect(page.locator("#active-deployments")).to_be_attached()
    assert axe_violations(page) == []
    page.set_viewport_size({"width": 768, "height": 1000})
    shot(page, "dashboard-tablet")


def test_the_notifications_dropdown_lists_unread_ones_and_marks_all_read(page):
    rita = sign_in(page, "rita.release")
    notification_send(recipients=[rita], kind="test", subject="Release Shop 2.4 awaits your decision", link="/")
    page.goto("/")
    toggle = page.locator("#notifications-menu > a")
    unread = Notification.objects.filter(recipient=rita, read_at__isnull=True).count()
    expect(toggle).to_contain_text(f"{unread} unread")
    toggle.click()
    menu = page.locator("#notifications-menu-items")
    expect(menu.get_by_text("Release Shop 2.4 awaits your decision")).to_be_visible()
    shot(page, "notifications-dropdown")
    page.get_by_role("button", name="Mark all read").click()
    expect(page.locator("#notifications-menu > a")).not_to_contain_text("unread")
    assert not Notification.objects.filter(recipient=rita, read_at__isnull=True).exists()


def test_a_token_is_made_shown_once_and_revoked(page):
    dan = sign_in(page, "dan.deploy")
    page.goto("/tokens/")
    page.get_by_label("Name").fill("jenkins-shop")
    page.get_by_label("deployments: configure, plan and run deployments").check()
    page.get_by_label("Expires on").fill("2099-12-31")
    page.get_by_role("button", name="Make token").click()
    secret = page.get_by_label("Secret")
    prefix = ApiToken.objects.get(owner=dan, name="jenkins-shop").prefix
    expect(secret).to_have_value(re.compile(rf"^{prefix}_\S{{20,}}$"))
    expect(page.get_by_role("button", name="Copy")).to_be_visible()
    row = page.locator('tr[data-token="jenkins-shop"]')
    expect(row).to_contain_text("deployments")
    expect(row).to_contain_text("Active")
    shot(page, "token-made")

    page.goto("/tokens/")
    expect(page.get_by_label("Secret")).to_have_count(0)
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator('tr[data-token="jenkins-shop"]')).to_contain_text("Revoked")
    assert ApiToken.objects.get(owner=dan, name="jenkins-shop").revoked_at is not None


def test_a_change_approver_approves_from_needs_my_action_in_two_clicks(page):
    carl = sign_in(page, "carl.cab")
    waiting = changes_awaiting_decision_by(carl)
    assert waiting, "the demo has a change waiting for the CAB"
    change = waiting[0]
    page.goto("/")
    needs = page.locator("#needs-my-action")
    expect(needs.get_by_role("heading", name="Changes to approve")).to_be_visible()
    needs.get_by_role("button", name=f"Approve {change.number}").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Comment").fill("Low risk, rollback rehearsed.")
    dialog.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    expect(page.locator(".alert-success")).to_be_visible()
    expect(page.locator(f'#needs-my-action [data-change="{change.number}"]')).to_have_count(0)
    assert Approval.objects.filter(change=change, approver=carl, decision="approved").exists()
