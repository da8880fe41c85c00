"""CMDB journeys in the browser on the demo data: a service owner reads what breaks when the shared database
breaks (graph and table) and imports a file with one bad row; a release manager takes a baseline and compares
it with the demo's first one.

The shared database is production's ``orders-db`` (Payments'), on which four services' applications depend.
"""

from playwright.sync_api import expect

from cmdb.models import Baseline, ConfigurationItem
from tests.browser.conftest import axe_violations, shot, sign_in
from tests.cmdb.factories import ServiceFactory, blast_radius

BAD_IMPORT = (
    "name,environment,type,version,service\n"
    "web-shop-cache,production,other,7.4,Web Shop\n"
    "web-shop-queue,production,spaceship,1.0,Web Shop\n"
)


def test_a_service_owner_reads_the_impact_of_the_shared_database_and_a_bad_import_changes_nothing(page):
    sign_in(page, "sophie.owner")
    page.goto("/cis/?name=orders-db")
    page.get_by_role("row").filter(has_text="production").get_by_role("link", name="orders-db").click()
    expect(page.locator("h1.page-title")).to_have_text("orders-db (production)")
    expect(page.get_by_role("button", name="Retire")).to_have_count(0)  # Payments' CI, not hers
    expect(page.locator(".rdm-relationships")).to_contain_text("web-shop")
    page.get_by_role("link", name="Impact", exact=True).click()

    expect(page.locator("h1.page-title")).to_have_text("Impact of orders-db (production)")
    services = page.locator(".rdm-impacted-services")
    for service in ("Payments", "Web Shop", "Customer Portal", "Notifications"):
        expect(services.locator(f'[data-service="{service}"]')).to_be_visible()
    table = page.locator(".rdm-impact-table")
    for ci, service in (("web-shop", "Web Shop"), ("customer-portal", "Customer Portal"), ("payments-api", "Payments")):
        expect(table.locator(f'tr[data-ci="{ci}"]')).to_contain_text(service)
    expect(table.locator('tr[data-ci="web-shop"]')).to_contain_text("web-shop depends on orders-db")
    expect(page.locator("#impact-graph canvas").first).to_be_attached()  # cytoscape drew the graph
    box = page.locator("#impact-graph").bounding_box()
    assert (box["width"] > 600, box["height"] > 300) == (True, True)
    assert axe_violations(page) == []
    shot(page, "cmdb-impact-orders-db")
    page.set_viewport_size({"width": 768, "height": 1000})
    shot(page, "cmdb-impact-orders-db-tablet")
    page.set_viewport_size({"width": 1366, "height": 900})

    page.goto("/cis/")
    page.get_by_role("link", name="Import CIs").click()
    before = ConfigurationItem.objects.count()
    page.watch.expected_statuses.add(422)  # the form comes back with the problems
    page.get_by_label("File (.csv or .json)").set_input_files(
        files=[{"name": "web-shop.csv", "mimeType": "text/csv", "buffer": BAD_IMPORT.encode()}]
    )
    page.get_by_role("button", name="Import").click()
    problems = page.locator(".rdm-import-problems")
    expect(problems).to_contain_text("Nothing was imported: 1 problem")
    expect(problems.locator('tr[data-where="line 3"]')).to_contain_text("Line 3")
    expect(problems.locator('tr[data-where="line 3"]')).to_contain_text("unknown type 'spaceship'")
    assert ConfigurationItem.objects.count() == before
    assert not ConfigurationItem.objects.filter(name="web-shop-cache").exists()


def test_a_release_manager_takes_a_baseline_and_compares_it_with_the_first_one(page):
    ConfigurationItem.objects.filter(name="orders-db", environment__name="production").update(version="PostgreSQL 18")
    sign_in(page, "rita.release")
    page.goto("/baselines/")
    page.get_by_role("link", name="New").click()
    page.get_by_label("Name", exact=True).fill("payments after the upgrade")
    page.get_by_label("Service", exact=True).select_option(label="Payments")
    page.get_by_label("Reason", exact=True).fill("orders-db moved to PostgreSQL 18")
    page.get_by_role("button", name="Take the baseline").click()
    expect(page.locator("h1.page-title")).to_have_text("payments after the upgrade")
    expect(page.locator(".rdm-messages")).to_contain_text("Baseline payments after the upgrade taken")

    after = Baseline.objects.get(name="payments after the upgrade")
    page.get_by_label("Earlier baseline").select_option(str(Baseline.objects.get(name="initial").pk))
    page.get_by_label("Later baseline").select_option(str(after.pk))
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("h1.page-title")).to_have_text("initial → payments after the upgrade")
    changed = page.locator('.rdm-diff-changed tbody[data-ci="orders-db"]').filter(has_text="production")
    version = changed.get_by_role("row").filter(has_text="version")
    expect(version.locator(".rdm-diff-old")).to_have_text("PostgreSQL 17")
    expect(version.locator(".rdm-diff-new")).to_have_text("PostgreSQL 18")
    expect(page.locator(".rdm-diff-removed")).to_contain_text("web-shop")  # not a Payments CI
    assert axe_violations(page) == []


def test_a_service_owner_reads_a_blast_radius_of_1200_cis_a_page_at_a_time(page):
    root = ConfigurationItem.objects.get(name="orders-db", environment__name="production")
    blast_radius(root, near=200, behind_each=5, services=[ServiceFactory(name=f"Batch {n}") for n in range(3)])
    sign_in(page, "sophie.owner")
    page.goto(f"/cis/{root.pk}/impact/")

    expect(page.locator('[data-total="cis"]')).to_have_text("1,204")  # and the demo's four
    expect(page.locator("#impact-graph-note")).to_have_text(
        "Graph shows the nearest 200 of 1,204 CIs hurt; the table lists them all."
    )
    expect(page.locator("#impact-graph canvas").first).to_be_attached()
    table = page.locator(".rdm-impact-table")
    expect(table.locator("tbody tr")).to_have_count(50)
    page.locator(".rdm-pagination").get_by_role("link", name="Next").click()
    expect(page.locator(".rdm-pagination")).to_contain_text("Page 2 of 25")
    expect(table.locator("tbody tr")).to_have_count(50)
    assert axe_violations(page) == []
    shot(page, "cmdb-impact-1200")
