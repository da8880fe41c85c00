"""CI import from CSV and JSON: all or nothing, every problem with its place, re-import as update."""

import json

import pytest
from django.core.management import CommandError, call_command

from cmdb.choices import CiState, RelationshipKind
from cmdb.exceptions import ImportFailed, NotAllowed
from cmdb.models import ConfigurationItem, Relationship
from cmdb.services import ci_import
from tests.cmdb.factories import ConfigurationItemFactory, EnvironmentFactory, ServiceFactory

pytestmark = pytest.mark.django_db

HEADER = "name,environment,type,version,state,service,owner,attributes,depends_on,runs_on,part_of,connects_to\n"
# web-shop names CIs defined further down; app-cluster names one of another environment, already in the CMDB.
CSV = HEADER + (
    'web-shop,production,application,5.0.1,live,Web Shop,sophie,"{""replicas"": 3}",'
    "orders-db;payments-api,app-cluster,,\n"
    "payments-api,production,application,2.3.2,live,Payments,oscar,,orders-db,app-cluster,,\n"
    "orders-db,production,database,17,live,Payments,,,,,,\n"
    "app-cluster,production,cluster,,,,,,,,,shared-net@staging\n"
)


@pytest.fixture
def cmdb(sophie, oscar):
    """Two environments, two services, and a network CI in staging that the files point at."""
    production = EnvironmentFactory(name="production")
    staging = EnvironmentFactory(name="staging")
    ServiceFactory(name="Web Shop", owner=sophie)
    ServiceFactory(name="Payments", owner=oscar)
    return {"production": production, "network": ConfigurationItemFactory(name="shared-net", environment=staging)}


def imported(name: str, environment: str = "production") -> ConfigurationItem:
    return ConfigurationItem.objects.select_related("service", "owner").get(name=name, environment__name=environment)


def relationships() -> set[tuple[str, str, str]]:
    return set(Relationship.objects.values_list("source__name", "kind", "target__name"))


def test_a_csv_file_creates_cis_and_relationships_even_to_cis_further_down(cmdb, deployment_manager, audit_calls):
    # when the file is imported
    result = ci_import(source=CSV, file_format="csv", actor=deployment_manager)
    # then every CI exists as the file says
    assert [ci.name for ci in result.created] == ["web-shop", "payments-api", "orders-db", "app-cluster"]
    shop = imported("web-shop")
    assert (shop.ci_type, shop.version, shop.state) == ("application", "5.0.1", CiState.LIVE)
    assert (shop.service.name, shop.owner.username, shop.attributes) == ("Web Shop", "sophie", {"replicas": 3})
    assert imported("app-cluster").state == CiState.PLANNED  # no state given: a new CI starts planned
    # and so does every relationship, including one to a CI of another environment
    assert relationships() == {
        ("web-shop", "depends_on", "orders-db"),
        ("web-shop", "depends_on", "payments-api"),
        ("web-shop", "runs_on", "app-cluster"),
        ("payments-api", "depends_on", "orders-db"),
        ("payments-api", "runs_on", "app-cluster"),
        ("app-cluster", "connects_to", "shared-net"),
    }
    assert len(result.relationships_added) == 6
    # and each CI's import is audited
    assert [call["target"].name for call in audit_calls if call["action"] == "ci.create"] == [
        "web-shop",
        "payments-api",
        "orders-db",
        "app-cluster",
    ]


def test_importing_again_updates_in_place_without_duplicates(cmdb, deployment_manager):
    # given the file imported once
    ci_import(source=CSV, file_format="csv", actor=deployment_manager)
    # when the same file comes again / then nothing changes
    again = ci_import(source=CSV, file_format="csv", actor=deployment_manager)
    assert (len(again.created), len(again.updated), len(again.unchanged), len(again.relationships_added)) == (
        0,
        0,
        4,
        0,
    )
    # when a version changes in the file / then that CI alone is updated, and nothing is duplicated
    newer = CSV.replace("web-shop,production,application,5.0.1", "web-shop,production,application,5.0.2")
    result = ci_import(source=newer, file_format="csv", actor=deployment_manager)
    assert [ci.name for ci in result.updated] == ["web-shop"]
    assert imported("web-shop").version == "5.0.2"
    assert ConfigurationItem.objects.filter(environment__name="production").count() == 4
    assert Relationship.objects.count() == 6


def test_a_bad_row_is_reported_by_line_and_nothing_of_the_file_is_imported(cmdb, deployment_manager):
    # given a file whose lines 3 and 4 are wrong, among good lines
    source = HEADER + (
        "good-one,production,server,,,,,,,,,\n"
        "lost,nowhere,server,,,,,,,,,\n"
        'broken,production,server,,,,,"{not json",,,,\n'
        "good-two,production,server,,,,,,ghost,,,\n"
    )
    # when it is imported / then every problem is named with its line
    with pytest.raises(ImportFailed) as failure:
        ci_import(source=source, file_format="csv", actor=deployment_manager)
    assert [where for where, _ in failure.value.errors] == ["line 3", "line 4", "line 5"]
    message = str(failure.value)
    assert "line 3: unknown environment 'nowhere'" in message
    assert "line 4: attributes are not valid JSON" in message
    assert "line 5: depends_on names 'ghost', which is neither in the file nor in the CMDB" in message
    # and not even the good lines were imported
    assert not ConfigurationItem.objects.filter(environment=cmdb["production"]).exists()


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ("x,production,,,,,,,,,,\n", "line 2: type is required for a new CI"),
        ("x,production,gizmo,,,,,,,,,\n", "line 2: unknown type 'gizmo'"),
        ("x,production,server,,asleep,,,,,,,\n", "line 2: unknown state 'asleep'"),
        ("x,production,server,,,Nope,,,,,,\n", "line 2: unknown service 'Nope'"),
        ("x,production,server,,,,nobody,,,,,\n", "line 2: unknown user 'nobody'"),
        ('x,production,server,,,,,"[1]",,,,\n', "line 2: attributes must be a JSON object"),
        ("x,production,server,,,,,,x,,,\n", "line 2: 'x' cannot depends_on itself"),
        (
            "x,production,server,,,,,,,,,\nx,production,server,,,,,,,,,\n",
            "line 3: CI 'x' in 'production' appears earlier",
        ),
        (",production,server,,,,,,,,,\n", "line 2: name is required"),
        ("x,production,server,,,,,,,,,,extra\n", "line 2: the row has more cells than the header has columns"),
    ],
)
def test_each_kind_of_bad_row_is_explained(cmdb, deployment_manager, rows, problem):
    with pytest.raises(ImportFailed, match=problem):
        ci_import(source=HEADER + rows, file_format="csv", actor=deployment_manager)


def test_an_unknown_column_is_reported_on_the_header_line(cmdb, deployment_manager):
    with pytest.raises(ImportFailed, match=r"line 1: unknown columns \['colour'\]"):
        ci_import(source="name,environment,colour\nx,production,red\n", file_format="csv", actor=deployment_manager)


def test_a_state_in_the_file_moves_an_existing_ci_by_its_lifecycle_only(cmdb, deployment_manager, audit_calls):
    # given a live CI
    ci_import(source=CSV, file_format="csv", actor=deployment_manager)
    audit_calls.clear()
    # when the file says it is under maintenance / then it moves there, as an audited transition
    ci_import(source=HEADER + "orders-db,production,,,maintenance,,,,,,,\n", file_format="csv", actor=None)
    assert imported("orders-db").state == CiState.MAINTENANCE
    assert [(call["action"], call["from_state"], call["to_state"]) for call in audit_calls] == [
        ("ci.start_maintenance", CiState.LIVE, CiState.MAINTENANCE)
    ]
    # when a file asks for a state no single transition reaches / then it is refused
    with pytest.raises(ImportFailed, match="line 2: maintenance cannot become planned"):
        ci_import(source=HEADER + "orders-db,production,,,planned,,,,,,,\n", file_format="csv", actor=None)


def test_a_json_file_imports_the_same_way_and_reports_items_by_index(cmdb, deployment_manager):
    # given a JSON list with attributes as objects and relationships as lists
    items = [
        {"name": "search-api", "environment": "production", "type": "application", "version": "2.7", "state": "live"},
        {"name": "search-index", "environment": "production", "type": "storage", "attributes": {"shards": 3}},
    ]
    items[0]["depends_on"] = ["search-index", "shared-net@staging"]
    # when it is imported / then the CIs and relationships exist
    result = ci_import(source=json.dumps(items), file_format="json", actor=deployment_manager)
    assert len(result.created) == 2
    assert imported("search-index").attributes == {"shards": 3}
    assert relationships() == {("search-api", "depends_on", "search-index"), ("search-api", "depends_on", "shared-net")}
    # when an item is wrong / then it is named by its index
    items[1]["depends_on"] = "search-api"
    with pytest.raises(ImportFailed, match="item 1: depends_on must be a list of CI names"):
        ci_import(source=json.dumps(items), file_format="json", actor=deployment_manager)
    with pytest.raises(ImportFailed, match="not valid JSON"):
        ci_import(source="[{", file_format="json", actor=deployment_manager)


def test_a_service_owner_imports_their_own_services_cis_only(cmdb, sophie):
    # when Sophie imports a file holding a CI of her service and one of Oscar's
    with pytest.raises(ImportFailed) as failure:
        ci_import(source=CSV, file_format="csv", actor=sophie)
    # then the rows of Oscar's service and of no service are refused, with the reason
    assert [where for where, _ in failure.value.errors] == ["line 3", "line 4", "line 5"]
    assert "'Payments' (owned by oscar)" in failure.value.errors[0].reason
    assert not ConfigurationItem.objects.filter(environment=cmdb["production"]).exists()
    # when her file holds only her own CIs / then it is imported
    ci_import(
        source=HEADER + "web-shop,production,application,5.0.1,,Web Shop,,,,,,\n", file_format="csv", actor=sophie
    )
    assert imported("web-shop").version == "5.0.1"


def test_a_viewer_may_not_import(cmdb, viewer):
    with pytest.raises(NotAllowed, match=r"cmdb\.import_configurationitems"):
        ci_import(source=CSV, file_format="csv", actor=viewer)


def test_the_ci_import_command_imports_a_file_as_a_user(cmdb, deployment_manager, tmp_path, capsys):
    path = tmp_path / "cmdb.csv"
    path.write_text(CSV)
    call_command("ci_import", str(path), "--as", "dan")
    assert "4 CI(s) created, 0 updated, 0 unchanged, 6 relationship(s) added." in capsys.readouterr().out
    assert imported("web-shop").service.name == "Web Shop"
    assert RelationshipKind.CONNECTS_TO in {kind for _, kind, _ in relationships()}


def test_the_ci_import_command_lists_every_problem_and_fails(cmdb, deployment_manager, tmp_path, capsys):
    path = tmp_path / "cmdb.txt"
    path.write_text(json.dumps([{"name": "x", "environment": "nowhere"}]))
    with pytest.raises(CommandError, match="cannot tell the format"):
        call_command("ci_import", str(path), "--as", "dan")
    with pytest.raises(CommandError, match=r"nothing was imported: 1 problem\(s\)"):
        call_command("ci_import", str(path), "--format", "json", "--as", "dan")
    assert "cmdb.txt, item 0: unknown environment 'nowhere'" in capsys.readouterr().err


def test_an_import_may_not_retire_a_ci_that_live_cis_depend_on(cmdb, deployment_manager):
    # given a live database that a live app depends on
    db = ConfigurationItemFactory(name="shared-db", environment=cmdb["production"], state=CiState.LIVE)
    app = ConfigurationItemFactory(name="shop-app", environment=cmdb["production"], state=CiState.LIVE)
    Relationship.objects.create(source=app, target=db, kind=RelationshipKind.DEPENDS_ON)
    # when a file retires the database / then the row is named and nothing changes
    with pytest.raises(ImportFailed) as failure:
        ci_import(
            source=HEADER + "shared-db,production,,,retired,,,,,,,\n", file_format="csv", actor=deployment_manager
        )
    assert [where for where, _ in failure.value.errors] == ["line 2"]
    assert "shared-db cannot retire: live CIs still depend on it: shop-app (production)" in str(failure.value)
    assert ConfigurationItem.objects.get(pk=db.pk).state == CiState.LIVE
