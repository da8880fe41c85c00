"""Change journeys in the browser, on the demo data: the CAB works through its queue (approves one change,
rejects another with a comment, sees the conflict between them), and an Emergency Approver overrides the
year-end freeze for the change that falls in it while a Change Approver is offered no such button.
"""

from playwright.sync_api import expect

from releases.choices import ChangeState, Decision
from releases.models import Approval, ChangeRecord, FreezeOverride
from tests.browser.conftest import axe_violations, forged_post, shot, sign_in

CERTIFICATES = "Rotate the Web Shop TLS certificates"
REINDEX = "Reindex the orders database"


def _decide(page, change: ChangeRecord, verb: str, field: str, text: str) -> None:
    """Two clicks and the comment: the row's button, the dialog's button."""
    row = page.locator(f'tr[data-change="{change.number}"]')
    row.get_by_role("button", name=f"{verb} {change.number}").click()
    dialog = page.get_by_role("dialog", name=f"{verb}: {change.number} {change.title}")
    dialog.get_by_label(field).fill(text)
    dialog.get_by_role("button", name=verb).click()
    expect(page.locator(".rdm-messages")).to_contain_text(f"{verb}: done for {change}")


def test_a_change_approver_works_through_the_cab_queue(page):
    certificates = ChangeRecord.objects.get(title=CERTIFICATES)
    reindex = ChangeRecord.objects.get(title=REINDEX)
    sign_in(page, "carl.cab")
    page.goto("/changes/queue/")
    expect(page.locator("h1.page-title")).to_have_text("Approval queue (CAB)")
    normal = page.locator("#queue-normal")
    for change, other in ((certificates, reindex), (reindex, certificates)):
        row = normal.locator(f'tr[data-change="{change.number}"]')
        expect(row).to_contain_text(change.title)
        expect(row.locator(".rdm-conflict-cell")).to_contain_text(f"Conflict with {other.number}")
    expect(page.locator("#queue-emergency")).to_contain_text("Nothing waiting")  # emergencies are not carl's
    assert axe_violations(page) == []
    shot(page, "change-queue")

    # the conflict, told on the change's page: which change, when both run, on what
    normal.get_by_role("link", name=certificates.number).click()
    conflicts = page.locator(".rdm-conflicts")
    expect(conflicts).to_contain_text("Conflict: 1 other change overlaps this one")
    expect(conflicts.get_by_role("link", name=f"{reindex.number} {REINDEX}")).to_be_visible()
    expect(conflicts).to_contain_text("on service Web Shop")
    assert axe_violations(page) == []
    shot(page, "change-with-conflict")
    page.go_back()

    _decide(page, certificates, "Approve", "Comment", "Staged in test; no overlap with the sale.")
    expect(page).to_have_url("/changes/queue/")
    _decide(page, reindex, "Reject", "Reason (required)", "Clashes with the certificate rotation: move it a day.")
    expect(normal.locator("tbody")).not_to_contain_text(CERTIFICATES)
    expect(normal.locator("tbody")).not_to_contain_text(REINDEX)

    decisions = {
        approval.change.title: (approval.decision, approval.reason, approval.approver.username)
        for approval in Approval.objects.filter(change__in=[certificates, reindex]).select_related("change", "approver")
    }
    assert decisions == {
        CERTIFICATES: (Decision.APPROVED, "Staged in test; no overlap with the sale.", "carl.cab"),
        REINDEX: (Decision.REJECTED, "Clashes with the certificate rotation: move it a day.", "carl.cab"),
    }
    assert ChangeRecord.objects.get(pk=reindex.pk).state == ChangeState.REJECTED

    page.set_viewport_size({"width": 768, "height": 1024})
    page.goto(f"/changes/{reindex.pk}/")
    expect(page.locator('.rdm-approvals tr[data-approver="carl.cab"]')).to_contain_text("Clashes with")
    shot(page, "change-rejected-tablet")


def test_only_an_emergency_approver_overrides_the_freeze_with_a_reason(page):
    change = ChangeRecord.objects.get(release__name="Notifications")
    sign_in(page, "carl.cab")
    page.goto(f"/changes/{change.pk}/")
    expect(page.locator(".card").filter(has_text="Freezes and overrides")).to_contain_text("Year-end freeze")
    expect(page.get_by_role("button", name="Override freeze")).to_have_count(0)
    expect(page.locator(".rdm-withheld")).to_contain_text("Override freeze")
    page.watch.expected_statuses.add(403)
    assert forged_post(page, f"/changes/{change.pk}/do/override_freeze/", {"reason": "sneaky"}) == 403
    assert not FreezeOverride.objects.filter(change=change).exists()

    sign_in(page, "emma.emergency")
    page.goto(f"/changes/{change.pk}/")
    page.get_by_role("button", name="Override freeze").click()
    dialog = page.get_by_role("dialog", name=f"Override freeze: {change.number} {change.title}")
    dialog.get_by_label("Reason (required)").fill("Delivery reports are failing for every customer.")
    dialog.get_by_role("button", name="Override freeze").click()
    expect(page.locator(".rdm-messages")).to_contain_text("Override freeze: done")
    expect(page.locator("[data-override]")).to_contain_text("Delivery reports are failing for every customer.")
    override = FreezeOverride.objects.get(change=change)
    assert (override.granted_by.username, override.reason) == (
        "emma.emergency",
        "Delivery reports are failing for every customer.",
    )


def test_a_release_manager_reads_the_windows_next_openings_and_declares_a_freeze(page):
    sign_in(page, "rita.release")
    page.goto("/windows/")
    page.get_by_role("link", name="Production: Tuesday and Thursday nights").click()
    expect(page.locator(".rdm-rule-words")).to_contain_text("every week on Tuesday and Thursday")
    openings = page.locator(".rdm-occurrences tbody tr")
    expect(openings).to_have_count(5)
    expect(openings.first).to_contain_text("22:00")
    expect(page.get_by_role("columnheader", name="Opens (Europe/London)")).to_be_visible()
    assert axe_violations(page) == []
    shot(page, "window-next-openings")

    page.goto("/freezes/")
    page.get_by_role("link", name="New").click()
    page.get_by_label("Name").fill("Black Friday")
    page.get_by_label("Start (UTC)").fill("2027-11-26T00:00")
    page.get_by_label("End (UTC)").fill("2027-11-26T00:00")  # not after the start: refused, values kept
    page.get_by_label("Reason").fill("Peak trading.")
    page.get_by_label("Web Shop").check()
    page.watch.expected_statuses.add(422)
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".invalid-feedback, .rdm-messages")).not_to_have_count(0)
    expect(page.get_by_label("Name")).to_have_value("Black Friday")
    page.get_by_label("End (UTC)").fill("2027-11-30T00:00")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("h1.page-title")).to_have_text("Black Friday")
    expect(page.locator(".card").filter(has_text="The freeze")).to_contain_text("Web Shop")
    shot(page, "freeze-declared")
