"""The CMDB in the browser, with Django's test client on the demo CMDB: who sees which button, what a forged
POST gets (403, nothing changed), imports that fail as a whole with every bad row named, impact, baselines,
and lists whose query count does not grow with their rows.
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cmdb import selectors
from cmdb.api.parsers import IMPORT_MAX_BYTES
from cmdb.choices import CiState, Criticality
from cmdb.demo import demo_cmdb_load
from cmdb.models import Baseline, ConfigurationItem, Service
from cmdb.services import baseline_take
from cmdb.views import IMPACT_GRAPH_NODES, IMPACT_TABLE_ROWS
from tests.cmdb.factories import ConfigurationItemFactory, EnvironmentFactory, ServiceFactory, blast_radius

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(demo_users):
    demo_cmdb_load()
    return demo_users


def _ci(name: str, environment: str = "production") -> ConfigurationItem:
    return ConfigurationItem.objects.get(name=name, environment__name=environment)


def _upload(content: bytes | str, name: str = "cis.csv") -> dict:
    raw = content.encode() if isinstance(content, str) else content
    return {"file": SimpleUploadedFile(name, raw, content_type="text/csv")}


# --- every page reads ----------------------------------------------------------------------------


def test_a_viewer_reads_every_cmdb_page_without_a_single_action(client, people):
    client.force_login(people["vera.viewer"])
    orders_db, payments = _ci("orders-db"), Service.objects.get(name="Payments")
    initial = Baseline.objects.get(name="initial")
    pages = [
        reverse("cmdb:service_list"),
        payments.get_absolute_url(),
        reverse("cmdb:ci_list"),
        orders_db.get_absolute_url(),
        reverse("cmdb:ci_impact", args=[orders_db.pk]),
        reverse("cmdb:environment_list"),
        reverse("cmdb:baseline_list"),
        initial.get_absolute_url(),
        f"{reverse('cmdb:baseline_diff')}?before={initial.pk}&after={initial.pk}",
    ]
    for page in pages:
        answer = client.get(page)
        assert answer.status_code == 200, page
        html = answer.content.decode()
        assert "/do/" not in html, page
        assert reverse("cmdb:ci_import") not in html, page
        assert reverse("cmdb:service_update", args=[payments.pk]) not in html, page
        assert reverse("cmdb:baseline_create") not in html, page


def test_the_service_page_shows_owner_stakeholders_and_cis_per_environment(client, people):
    client.force_login(people["vera.viewer"])
    html = client.get(Service.objects.get(name="Web Shop").get_absolute_url()).content.decode()
    assert "sophie.owner" in html
    assert 'class="badge rdm-badge"' in html
    for environment in ("dev", "test", "staging", "production"):
        assert f'data-environment="{environment}"' in html
    assert "No release touches this service yet." in html


def test_the_ci_page_lists_attributes_and_relationships_both_ways(client, people):
    client.force_login(people["vera.viewer"])
    html = client.get(_ci("orders-db").get_absolute_url()).content.decode()
    assert "<code>engine</code></th><td>postgresql</td>" in html
    assert html.count('data-direction="outgoing"') == 1  # runs on db-server-1
    assert html.count('data-direction="incoming"') == 4  # four applications depend on it


# --- lifecycle transitions -----------------------------------------------------------------------


def test_the_owner_of_the_service_gets_the_lifecycle_buttons_and_others_the_reason(client, people):
    orders_db = _ci("orders-db")  # Payments' database, owned by oscar.owner
    client.force_login(people["oscar.owner"])
    html = client.get(orders_db.get_absolute_url()).content.decode()
    assert reverse("cmdb:ci_transition", args=[orders_db.pk, "start_maintenance"]) in html
    assert reverse("cmdb:ci_transition", args=[orders_db.pk, "retire"]) in html
    assert "go_live" not in html  # the state does not allow it

    client.force_login(people["sophie.owner"])
    html = client.get(orders_db.get_absolute_url()).content.decode()
    assert "/do/" not in html
    assert "Service Owners may only edit CIs of services they own" in html


def test_a_transition_goes_through_the_service_and_a_forged_one_is_refused(client, people):
    orders_db = _ci("orders-db")
    url = reverse("cmdb:ci_transition", args=[orders_db.pk, "start_maintenance"])
    client.force_login(people["sophie.owner"])
    assert client.post(url, {"reason": "disk swap"}).status_code == 403
    orders_db.refresh_from_db()
    assert orders_db.state == CiState.LIVE

    client.force_login(people["oscar.owner"])
    answer = client.post(url, {"reason": "disk swap"})
    assert answer.status_code == 302
    assert answer["Location"] == orders_db.get_absolute_url()
    orders_db.refresh_from_db()
    assert orders_db.state == CiState.MAINTENANCE


# --- impact ----------------------------------------------------------------------------------------


def test_the_impact_page_lists_the_services_hurt_and_the_graph_data(client, people):
    orders_db = _ci("orders-db")
    client.force_login(people["sophie.owner"])
    html = client.get(reverse("cmdb:ci_impact", args=[orders_db.pk])).content.decode()
    for service in ("Payments", "Web Shop", "Customer Portal", "Notifications"):
        assert f'data-service="{service}"' in html
    assert 'data-ci="web-shop"' in html
    assert "web-shop <em>depends on</em> orders-db" in html
    assert '<script id="impact-data" type="application/json">' in html
    assert "rdm/impact-graph.js" in html


def test_each_ci_hurt_further_away_shows_its_path_from_the_broken_one(client, people):
    server = _ci("db-server-1")
    client.force_login(people["vera.viewer"])
    html = client.get(reverse("cmdb:ci_impact", args=[server.pk])).content.decode()
    web_shop = html[html.index('<tr data-ci="web-shop">') :].split("</tr>", 1)[0]
    assert "<td>2</td>" in web_shop
    assert "db-server-1 → orders-db → web-shop" in web_shop
    assert "web-shop <em>depends on</em> orders-db" in web_shop


def test_the_impact_depth_is_checked_as_the_api_checks_it(client, people):
    orders_db = _ci("orders-db")
    client.force_login(people["vera.viewer"])
    one_hop = client.get(reverse("cmdb:ci_impact", args=[orders_db.pk]), {"max_depth": 1}).content.decode()
    assert 'data-ci="web-shop"' in one_hop
    assert 'data-ci="edge-lb"' not in one_hop  # customer-portal connects through it, two hops away
    refused = client.get(reverse("cmdb:ci_impact", args=[orders_db.pk]), {"max_depth": 500})
    assert refused.status_code == 200
    assert "Hops to follow:" in refused.content.decode()


def test_a_huge_blast_radius_shows_its_totals_a_page_of_the_table_and_the_nearest_in_the_graph(client, people):
    root = _ci("orders-db")
    blast_radius(root, near=200, behind_each=5, services=[ServiceFactory(name=f"Hurt {n}") for n in range(3)])
    client.force_login(people["vera.viewer"])
    url = reverse("cmdb:ci_impact", args=[root.pk])
    everything = selectors.ci_impact(root).ci_count  # the demo's own dependents as well as the 1,200
    assert everything > 1200

    page = client.get(url)
    html = page.content.decode()
    assert f'data-total="cis">{everything:,}<' in html
    assert f"Graph shows the nearest {IMPACT_GRAPH_NODES} of {everything:,} CIs hurt" in html
    graph = page.context["graph_data"]
    assert len(graph["nodes"]) == IMPACT_GRAPH_NODES + 1  # and the broken CI
    drawn = {node["id"] for node in graph["nodes"]}
    assert all(edge["source"] in drawn and edge["target"] in drawn for edge in graph["edges"])
    first_rows = [step.ci.pk for step in page.context["rows"]]
    assert len(first_rows) == IMPACT_TABLE_ROWS
    assert html.count("<tr data-ci=") == IMPACT_TABLE_ROWS
    assert 'data-depth="2"' in html

    last_number = -(-everything // IMPACT_TABLE_ROWS)
    last = client.get(url, {"page": last_number})
    last_rows = last.context["rows"]
    assert 0 < len(last_rows) <= IMPACT_TABLE_ROWS
    assert not {step.ci.pk for step in last_rows} & set(first_rows)
    far = last_rows[-1]
    assert far.depth >= 2
    assert far.path[0].name == "orders-db"  # traced back to the broken CI even on the last page
    assert len(far.path) == far.depth + 1
    assert client.get(url, {"page": "x"}).context["page_obj"].number == 1


# --- import ----------------------------------------------------------------------------------------

GOOD_CSV = "name,environment,type,version,service\nledger-db,production,database,PostgreSQL 17,Payments\n"
ONE_BAD_ROW = (
    "name,environment,type,version,service\n"
    "ledger-db,production,database,PostgreSQL 17,Payments\n"
    "ledger-api,production,spaceship,1.0,Payments\n"
)


def test_an_import_creates_the_cis_and_says_how_many(client, people):
    client.force_login(people["oscar.owner"])
    answer = client.post(reverse("cmdb:ci_import"), _upload(GOOD_CSV), follow=True)
    assert answer.redirect_chain[-1][0] == reverse("cmdb:ci_list")
    assert "1 CIs created, 0 updated" in answer.content.decode()
    assert _ci("ledger-db").service.name == "Payments"


def test_one_bad_row_is_named_and_nothing_is_imported(client, people):
    client.force_login(people["oscar.owner"])
    before = ConfigurationItem.objects.count()
    answer = client.post(reverse("cmdb:ci_import"), _upload(ONE_BAD_ROW))
    assert answer.status_code == 422
    html = answer.content.decode()
    assert "Nothing was imported: 1 problem" in html
    assert '<tr data-where="line 3"><td class="text-nowrap">Line 3</td><td>unknown type &#x27;spaceship&#x27;' in html
    assert ConfigurationItem.objects.count() == before


def test_rows_of_services_one_does_not_own_are_refused(client, people):
    client.force_login(people["sophie.owner"])
    answer = client.post(reverse("cmdb:ci_import"), _upload(GOOD_CSV))
    assert answer.status_code == 422
    assert "Service Owners may only edit CIs of services they own" in answer.content.decode()
    assert not ConfigurationItem.objects.filter(name="ledger-db").exists()


@pytest.mark.parametrize(
    ("content", "name", "problem"),
    [
        (b"x" * (IMPORT_MAX_BYTES + 1), "big.csv", "The file is too large"),
        ("name,environment\nbücher-db,production\n".encode("latin-1"), "cis.csv", "The file is not UTF-8 text"),
        (b"name,environment\n", "cis.xlsx", "Name the file .csv or .json"),
    ],
)
def test_files_that_cannot_be_read_are_refused_before_any_row(client, people, content, name, problem):
    client.force_login(people["oscar.owner"])
    before = ConfigurationItem.objects.count()
    answer = client.post(reverse("cmdb:ci_import"), _upload(content, name))
    assert answer.status_code == 422
    assert problem in answer.content.decode()
    assert ConfigurationItem.objects.count() == before


def test_the_import_page_shows_the_columns_and_a_sample(client, people):
    client.force_login(people["dan.deploy"])
    html = client.get(reverse("cmdb:ci_import")).content.decode()
    assert "<code>depends_on</code>" in html
    assert "orders-db,production,database" in html
    assert reverse("cmdb:ci_import") in client.get(reverse("cmdb:ci_list")).content.decode()


def test_a_viewer_cannot_import_even_by_a_forged_post(client, people):
    client.force_login(people["vera.viewer"])
    before = ConfigurationItem.objects.count()
    assert client.get(reverse("cmdb:ci_import")).status_code == 403
    assert client.post(reverse("cmdb:ci_import"), _upload(GOOD_CSV)).status_code == 403
    assert ConfigurationItem.objects.count() == before


# --- services --------------------------------------------------------------------------------------


def test_only_those_the_service_lets_edit_a_service_see_and_use_the_form(client, people):
    payments = Service.objects.get(name="Payments")
    url = reverse("cmdb:service_update", args=[payments.pk])
    client.force_login(people["oscar.owner"])  # owns it, but services are laid out by administrators
    assert url not in client.get(payments.get_absolute_url()).content.decode()
    assert client.get(url).status_code == 403
    data = {"name": "Payments", "slug": "payments", "owner": payments.owner.pk, "criticality": Criticality.LOW}
    assert client.post(url, data).status_code == 403
    payments.refresh_from_db()
    assert payments.criticality == Criticality.CRITICAL

    client.force_login(people["admin"])
    assert url in client.get(payments.get_absolute_url()).content.decode()
    answer = client.post(url, {**data, "stakeholders": [people["rita.release"].pk]})
    assert answer.status_code == 302
    payments.refresh_from_db()
    assert payments.criticality == Criticality.LOW
    assert list(payments.stakeholders.values_list("username", flat=True)) == ["rita.release"]


# --- baselines -------------------------------------------------------------------------------------


def test_a_baseline_is_taken_from_the_browser_by_those_allowed(client, people):
    payments = Service.objects.get(name="Payments")
    client.force_login(people["vera.viewer"])
    assert client.post(reverse("cmdb:baseline_create"), {"name": "x", "service": payments.pk}).status_code == 403

    client.force_login(people["rita.release"])
    assert reverse("cmdb:baseline_create") in client.get(reverse("cmdb:baseline_list")).content.decode()
    production = _ci("orders-db").environment
    both = client.post(
        reverse("cmdb:baseline_create"), {"name": "x", "service": payments.pk, "environment": production.pk}
    )
    assert both.status_code == 422
    assert "Choose either a service or an environment." in both.content.decode()
    answer = client.post(reverse("cmdb:baseline_create"), {"name": "before 2.4", "service": payments.pk})
    baseline = Baseline.objects.get(name="before 2.4")
    assert answer["Location"] == baseline.get_absolute_url()
    assert baseline.items.count() == ConfigurationItem.objects.filter(service=payments).count()


def test_the_diff_shows_what_was_added_removed_and_changed_side_by_side(client, people):
    initial = Baseline.objects.get(name="initial")
    orders_db = _ci("orders-db")
    ConfigurationItem.objects.filter(pk=orders_db.pk).update(version="PostgreSQL 18")
    ConfigurationItemFactory(name="ledger-db", environment=orders_db.environment, service=orders_db.service)
    later = baseline_take(name="later", actor=None, cis=ConfigurationItem.objects.all())
    client.force_login(people["vera.viewer"])
    html = client.get(reverse("cmdb:baseline_diff"), {"before": initial.pk, "after": later.pk}).content.decode()
    assert "1 CI added, 0 removed, 1 changed" in html
    assert '<tbody data-ci="orders-db">' in html
    assert '<td class="rdm-diff-old">PostgreSQL 17</td>' in html
    assert '<td class="rdm-diff-new">PostgreSQL 18</td>' in html
    assert '<tr data-ci="ledger-db">' in html


# --- query counts ----------------------------------------------------------------------------------


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def _grow(count: int) -> None:
    environment = EnvironmentFactory(name="load")
    for _ in range(count):
        ConfigurationItemFactory(environment=environment, service=ServiceFactory())
        EnvironmentFactory()


@pytest.mark.parametrize(
    "url_name", ["cmdb:service_list", "cmdb:ci_list", "cmdb:environment_list", "cmdb:baseline_list"]
)
def test_lists_make_as_many_queries_for_ten_times_the_rows(client, people, url_name):
    client.force_login(people["vera.viewer"])
    url = reverse(url_name)
    _grow(3)
    baseline_take(name="few", actor=None, cis=ConfigurationItem.objects.all())
    few = _queries(client, url)
    _grow(27)
    for number in range(9):
        baseline_take(name=f"more {number}", actor=None, cis=ConfigurationItem.objects.all())
    assert _queries(client, url) == few
