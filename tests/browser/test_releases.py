"""Release journeys in the browser: reading the go/no-go checklist and approving, segregation of duties,
planning a release with its units (and editing one), and validating a package; on the demo data.

No release manager may approve a demo release (the demo's one release manager manages and requested all of
them), so the approver of the release awaiting a decision is its service's owner, as the policy allows.
"""

import re
from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from cmdb.choices import EnvironmentTier
from releases import services
from releases.checklist import checklist_evaluate
from releases.choices import PackageState
from releases.models import Approval, Release, ReleasePackage
from tests.browser.conftest import axe_violations, forged_post, shot, sign_in

DIGEST = "4e07408562bedb8b60ce05c1decfe3ad16b72230967de01f640b7e4729b49fce"


def _search() -> Release:
    """The demo release awaiting its service owner's decision, every other production gate green."""
    return Release.objects.get(name="Search", version="2.8")


def test_an_approver_reads_every_gate_with_its_evidence_and_approves_with_a_comment(page):
    release = _search()
    sign_in(page, "oscar.owner")
    page.goto(f"/releases/{release.pk}/")
    expect(page.locator("h1.page-title")).to_have_text("Search 2.8")

    checklist = checklist_evaluate(release, EnvironmentTier.PRODUCTION)
    for gate in checklist.gates:
        row = page.locator(f'.rdm-checklist tr[data-gate="{gate.code}"]')
        expect(row).to_contain_text(gate.title)
        expect(row).to_contain_text("Met" if gate.satisfied else "Unmet")
        expect(row).to_contain_text(gate.status)
        for evidence in gate.evidence:
            expect(row).to_contain_text(evidence.who)
            if evidence.note:
                expect(row).to_contain_text(evidence.note)
    assert [gate.code for gate in checklist.unmet] == ["plan_approved"]  # only the decision is missing
    expect(page.locator('.rdm-checklist tr[data-gate="backups_verified"] a')).to_have_attribute(
        "href", "https://backups.rdm.example/orders-db/latest"
    )
    assert axe_violations(page) == []
    shot(page, "release-awaiting-approval")

    page.get_by_role("button", name="Approve", exact=True).click()
    dialog = page.get_by_role("dialog", name="Approve: Search 2.8")
    dialog.get_by_label("Comment").fill("Stemming fix checked with the search team.")
    dialog.get_by_role("button", name="Approve").click()

    expect(page.locator(".rdm-messages")).to_contain_text("Approve: done for Search 2.8")
    approvals = page.locator(".rdm-approvals")
    expect(approvals.locator('tr[data-approver="oscar.owner"]')).to_contain_text(
        "Stemming fix checked with the search team."
    )
    expect(page.locator(".rdm-timeline")).to_contain_text("release.approve by oscar.owner")
    expect(page.locator(".rdm-timeline")).to_contain_text("submitted → approved")
    expect(page.locator('.rdm-checklist tr[data-gate="plan_approved"]')).to_contain_text("Met")
    approval = Approval.objects.get(release=release)
    assert (approval.approver.username, approval.reason) == (
        "oscar.owner",
        "Stemming fix checked with the search team.",
    )

    page.goto("/approvals/")
    expect(page.get_by_role("row").filter(has_text="Stemming fix checked")).to_contain_text("Release Search 2.8")


def test_the_requester_sees_no_approve_button_and_a_forged_approval_is_refused(page):
    release = _search()
    sign_in(page, "rita.release")
    page.goto(f"/releases/{release.pk}/")
    expect(page.locator("h1.page-title")).to_have_text("Search 2.8")
    expect(page.get_by_role("button", name="Approve", exact=True)).to_have_count(0)
    withheld = page.get_by_role("note")
    expect(withheld).to_contain_text("Not available to you")
    expect(withheld).to_contain_text("they requested it")
    expect(withheld).to_contain_text("segregation of duties")

    page.watch.expected_statuses.add(403)
    assert forged_post(page, f"/releases/{release.pk}/do/approve/", {"reason": "my own"}) == 403
    assert not Approval.objects.filter(release=release, approver__username="rita.release").exists()
    page.set_viewport_size({"width": 768, "height": 1000})
    page.reload()
    shot(page, "release-requester-tablet")


def test_a_release_manager_plans_a_release_with_two_units_and_sees_every_unmet_condition(page):
    sign_in(page, "rita.release")
    page.goto("/releases/")
    expect(page.get_by_role("row").filter(has_text="Search 2.8")).to_contain_text("Submitted")
    shot(page, "releases-list")
    page.get_by_role("link", name="New").click()
    expect(page.get_by_role("heading", name="New release plan")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Checkout")
    page.locator("#id_version").fill("6.0")
    page.get_by_label("Type and policy").select_option(label="Minor release")
    page.get_by_label("Web Shop").check()
    soon = timezone.now() + timedelta(days=1)
    page.get_by_label("Planned start (UTC)").fill(f"{soon:%Y-%m-%dT%H:00}")
    page.get_by_label("Planned end (UTC)").fill(f"{soon + timedelta(hours=2):%Y-%m-%dT%H:00}")
    for number, (name, ci) in enumerate(
        [("web-shop", "web-shop (production)"), ("orders-db", "orders-db (production)")]
    ):
        unit = page.get_by_role("group", name=f"Unit {number + 1}")
        unit.get_by_label("Unit name").fill(name)
        unit.get_by_label("CIs it changes").select_option(label=ci)
    shot(page, "release-new")
    page.get_by_role("button", name="Create the release").click()

    expect(page.get_by_role("heading", name="Checkout 6.0", level=1)).to_be_visible()
    units = page.locator("#units-title").locator("xpath=ancestor::section")
    expect(units.get_by_role("row")).to_have_count(3)
    expect(units).to_contain_text("web-shop")
    expect(units).to_contain_text("orders-db")

    page.get_by_role("button", name="Plan", exact=True).click()
    expect(page.locator(".rdm-messages")).to_contain_text("Plan: done")
    page.get_by_role("button", name="Submit", exact=True).click()
    refusal = page.locator(".rdm-messages")
    expect(refusal).to_contain_text("cannot be submitted")
    conditions = page.locator('[data-message-kind="condition"]')
    expect(conditions).to_have_count(2)
    expect(conditions.nth(0)).to_contain_text("describe the release")
    expect(conditions.nth(1)).to_contain_text(re.compile(r"needs 3 day\(s\) of lead time"))
    shot(page, "release-submit-refused")

    page.get_by_role("link", name="Edit plan").click()
    page.get_by_label("Description").fill("One-page checkout for the shop.")
    later = timezone.now() + timedelta(days=10)
    page.get_by_label("Planned start (UTC)").fill(f"{later:%Y-%m-%dT%H:00}")
    page.get_by_label("Planned end (UTC)").fill(f"{later + timedelta(hours=2):%Y-%m-%dT%H:00}")
    page.get_by_role("group", name="web-shop").get_by_label("Version").fill("6.0.1")
    shot(page, "release-edit")
    page.get_by_role("button", name="Save the plan").click()
    expect(page.locator(".rdm-messages")).to_contain_text("updated")
    expect(units.get_by_role("row").filter(has_text="web-shop")).to_contain_text("6.0.1")
    page.get_by_role("button", name="Submit", exact=True).click()
    expect(page.locator(".rdm-messages")).to_contain_text("Submit: done")
    expect(page.locator(".page-header")).to_contain_text("Submitted")


def test_a_deployment_manager_validates_a_build_its_builder_may_not(page):
    bill = sign_in(page, "bill.build")
    portal = Release.objects.get(name="Customer Portal", version="1.9")
    package = services.package_register(
        release=portal,
        actor=bill,
        version="1.9.0+31",
        artifacts=[{"name": "portal.tar.gz", "uri": "oci://registry.rdm.example/portal:1.9.0", "sha256": DIGEST}],
        commits=[{"sha": "7a1c9e03bd", "message": "Returns in two clicks", "author": "zoe"}],
        work_items=["PORTAL-12"],
    )
    services.package_mark_built(package=package, actor=bill)

    page.goto(f"/packages/{package.pk}/")
    expect(page.get_by_role("heading", name=str(package), level=1)).to_be_visible()
    expect(page.get_by_role("button", name="Validate")).to_have_count(0)
    expect(page.get_by_role("note")).to_contain_text("bill.build may not validate package")
    expect(page.locator(f'code[title="sha256:{DIGEST}"]')).to_be_visible()
    page.watch.expected_statuses.add(403)
    assert forged_post(page, f"/packages/{package.pk}/do/validate/", {"reason": "mine"}) == 403
    package.refresh_from_db()
    assert package.state == PackageState.BUILT

    sign_in(page, "dan.deploy")
    page.goto("/packages/")
    page.get_by_role("link", name="1.9.0+31").click()
    page.get_by_role("button", name="Validate", exact=True).click()
    dialog = page.get_by_role("dialog", name=re.compile("Validate"))
    dialog.get_by_label("Comment").fill("Installed and smoke-tested in staging.")
    dialog.get_by_role("button", name="Validate").click()
    expect(page.locator(".rdm-messages")).to_contain_text("Validate: done")
    expect(page.locator(".page-header")).to_contain_text("Validated")
    expect(page.get_by_text("Validated by")).to_be_visible()
    package = ReleasePackage.objects.get(pk=package.pk)
    assert (package.state, package.validated_by.username) == (PackageState.VALIDATED, "dan.deploy")
