"""The CMDB API, endpoint by endpoint: lists with their filters, reads with ``actions`` and ETags, writes and
transitions through the services (audited, refused with the services' reasons), impact, relationships, import,
baselines and their diffs, the version matrix."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cmdb import services
from cmdb.api.serializers import IMPACT_PAGE_MAX, IMPACT_PAGE_SIZE, VERSION_MATRIX_PAGE_MAX
from cmdb.choices import CiState, CiType, RelationshipKind
from cmdb.models import ConfigurationItem, Environment, Relationship, Service
from rdm_site.models import AuditEvent
from rdm_site.representations import representation_of
from tests.cmdb.factories import (
    ConfigurationItemFactory,
    EnvironmentFactory,
    RelationshipFactory,
    ServiceFactory,
    blast_radius,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def audited(action: str, record) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(action=action, object_type=record._meta.label_lower, object_id=str(record.pk))
    )


def service_with_stakeholders() -> Service:
    service = ServiceFactory()
    service.stakeholders.set([UserFactory(), UserFactory()])
    return service


# --- lists: filters, search, ordering, and the same queries whatever the page holds -------------------------


@pytest.mark.parametrize(
    ("collection", "make"),
    [
        ("environments", lambda: EnvironmentFactory()),
        ("services", lambda: service_with_stakeholders()),
        ("cis", lambda: ConfigurationItemFactory(owner=ServiceFactory().owner)),
        ("relationships", lambda: RelationshipFactory()),
        ("baselines", lambda: services.baseline_take(name="b", actor=None, service=ServiceFactory())),
    ],
)
def test_a_list_costs_the_same_queries_for_3_rows_as_for_30(collection, make, signed_in, deployment_manager):
    client = signed_in(deployment_manager)

    def queries_for_a_page() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(f"/api/v1/{collection}/").status_code == 200
        return len(captured)

    for _ in range(3):
        make()
    with_3 = queries_for_a_page()
    for _ in range(27):
        make()
    assert queries_for_a_page() == with_3


def test_cis_are_filtered_searched_and_ordered(signed_in, viewer, production, orders, orders_api, planned_ci):
    ConfigurationItemFactory(name="orders-db", environment=EnvironmentFactory(name="staging"), ci_type=CiType.DATABASE)
    client = signed_in(viewer)

    def names(query: str) -> list[str]:
        response = client.get(f"/api/v1/cis/?{query}")
        assert response.status_code == 200, response.content
        return [ci["name"] for ci in response.json()["results"]]

    assert names("state=planned") == ["orders-worker"]
    assert names(f"environment={production.pk}&ordering=-name") == ["orders-worker", "orders-api"]
    assert names("environment_slug=staging") == ["orders-db"]
    assert names("ci_type=database&ci_type=application&service_slug=orders&ordering=name") == [
        "orders-api",
        "orders-worker",
    ]
    assert names("search=worker") == ["orders-worker"]
    assert names("service__isnull=true") == []
    assert client.get("/api/v1/cis/").json()["count"] == 3


def test_a_filter_value_of_the_wrong_type_is_a_400_listing_it(signed_in, viewer):
    response = signed_in(viewer).get("/api/v1/cis/?environment=production&state=gone")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert set(response.json()["errors"]) == {"environment", "state"}


def test_relationships_are_filtered_by_either_end(signed_in, viewer, orders_api, planned_ci):
    database = ConfigurationItemFactory(name="orders-db")
    RelationshipFactory(source=orders_api, target=database)
    RelationshipFactory(source=planned_ci, target=orders_api, kind=RelationshipKind.RUNS_ON)
    client = signed_in(viewer)
    summaries = [rel["summary"] for rel in client.get(f"/api/v1/relationships/?ci={database.pk}").json()["results"]]
    assert summaries == ["orders-api depends on orders-db"]
    assert client.get(f"/api/v1/relationships/?ci={orders_api.pk}").json()["count"] == 2
    assert client.get("/api/v1/relationships/?kind=runs_on").json()["count"] == 1


# --- a CI: read, create, edit, move through its lifecycle --------------------------------------------------


def test_a_ci_reads_with_the_actions_its_reader_may_take_and_an_etag(signed_in, viewer, sophie, orders_api):
    url = f"/api/v1/cis/{orders_api.pk}/"
    as_owner = signed_in(sophie).get(url)
    assert as_owner.status_code == 200
    assert as_owner.json() | {"created": None, "updated": None} == {
        "id": orders_api.pk,
        "name": "orders-api",
        "ci_type": "application",
        "state": "live",
        "version": "2.3.0",
        "attributes": {},
        "owner": None,
        "environment": orders_api.environment_id,
        "service": orders_api.service_id,
        "created": None,
        "updated": None,
        "actions": ["update", "start_maintenance", "retire"],
    }
    assert signed_in(viewer).get(url).json()["actions"] == []
    assert signed_in(sophie).get(url, HTTP_IF_NONE_MATCH=as_owner["ETag"]).status_code == 304


def test_a_webhook_shows_a_ci_as_its_detail_endpoint_does(signed_in, viewer, orders_api):
    detail = signed_in(viewer).get(f"/api/v1/cis/{orders_api.pk}/").json()
    assert representation_of("cmdb.configurationitem", str(orders_api.pk)) == detail


def test_creating_a_ci_goes_through_the_service_and_ignores_a_state_in_the_body(
    signed_in, deployment_manager, production, orders
):
    response = signed_in(deployment_manager).post(
        "/api/v1/cis/",
        {
            "name": "orders-cache",
            "ci_type": "database",
            "environment": production.pk,
            "service": orders.pk,
            "owner": "dan",
            "attributes": {"engine": "redis", "replicas": 2},
            "state": "live",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    created = ConfigurationItem.objects.get(pk=response.json()["id"])
    assert (created.state, created.owner, created.attributes) == (
        CiState.PLANNED,
        deployment_manager,
        {
            "engine": "redis",
            "replicas": 2,
        },
    )
    assert response.json()["actions"] == ["update", "build", "retire"]
    assert len(audited("ci.create", created)) == 1


def test_a_ci_name_is_unique_within_its_environment(signed_in, deployment_manager, orders_api):
    body = {"name": "orders-api", "ci_type": "application", "environment": orders_api.environment_id}
    response = signed_in(deployment_manager).post("/api/v1/cis/", body, format="json")
    assert response.status_code == 400
    assert ConfigurationItem.objects.filter(name="orders-api").count() == 1


def test_editing_a_ci_is_audited_with_what_changed_and_refused_when_stale(signed_in, sophie, orders_api):
    client = signed_in(sophie)
    url = f"/api/v1/cis/{orders_api.pk}/"
    etag = client.get(url)["ETag"]
    response = client.patch(url, {"version": "2.4.0", "state": "retired"}, format="json", HTTP_IF_MATCH=etag)
    assert response.status_code == 200, response.content
    assert (response.json()["version"], response.json()["state"]) == ("2.4.0", "live")
    [event] = audited("ci.update", orders_api)
    assert event.changes == {"version": ["2.3.0", "2.4.0"]}

    stale = client.patch(url, {"version": "2.5.0"}, format="json", HTTP_IF_MATCH=etag)
    assert stale.status_code == 412
    orders_api.refresh_from_db()
    assert orders_api.version == "2.4.0"


def test_a_ci_is_replaced_whole_with_put(signed_in, deployment_manager, orders_api):
    staging = EnvironmentFactory(name="staging")
    body = {"name": "orders-api-v2", "ci_type": "application", "environment": staging.pk, "service": None}
    response = signed_in(deployment_manager).put(f"/api/v1/cis/{orders_api.pk}/", body, format="json")
    assert response.status_code == 200, response.content
    orders_api.refresh_from_db()
    assert (orders_api.name, orders_api.environment, orders_api.service) == ("orders-api-v2", staging, None)


def test_a_service_owner_may_not_edit_a_ci_of_someone_elses_service_and_is_told_why(signed_in, oscar, orders_api):
    response = signed_in(oscar).patch(f"/api/v1/cis/{orders_api.pk}/", {"version": "9"}, format="json")
    assert response.status_code == 403
    assert "may only edit CIs of services they own" in response.json()["detail"]
    orders_api.refresh_from_db()
    assert orders_api.version == "2.3.0"


@pytest.mark.parametrize(
    ("start", "transition", "end"),
    [
        (CiState.PLANNED, "build", CiState.IN_BUILD),
        (CiState.IN_BUILD, "go-live", CiState.LIVE),
        (CiState.LIVE, "start-maintenance", CiState.MAINTENANCE),
        (CiState.MAINTENANCE, "end-maintenance", CiState.LIVE),
        (CiState.LIVE, "retire", CiState.RETIRED),
    ],
)
def test_each_lifecycle_transition_answers_the_fresh_ci(signed_in, sophie, orders, start, transition, end):
    ci = ConfigurationItemFactory(service=orders, state=start)
    response = signed_in(sophie).post(f"/api/v1/cis/{ci.pk}/{transition}/", {"reason": "planned work"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["state"] == end
    assert response["ETag"]
    [event] = audited(f"ci.{transition.replace('-', '_')}", ci)
    assert (event.from_state, event.to_state, event.reason) == (start, end, "planned work")


def test_an_illegal_transition_is_a_409_naming_the_current_state(signed_in, sophie, orders_api):
    response = signed_in(sophie).post(f"/api/v1/cis/{orders_api.pk}/build/", {}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "illegal_transition"
    assert "it is live" in response.json()["detail"]


def test_a_transition_with_too_long_a_reason_is_a_400_and_moves_nothing(signed_in, sophie, planned_ci):
    response = signed_in(sophie).post(f"/api/v1/cis/{planned_ci.pk}/build/", {"reason": "x" * 5000}, format="json")
    assert response.status_code == 400
    planned_ci.refresh_from_db()
    assert planned_ci.state == CiState.PLANNED


def test_cis_are_never_deleted(signed_in, administrator, orders_api):
    assert signed_in(administrator).delete(f"/api/v1/cis/{orders_api.pk}/").status_code == 405


# --- impact and relationships of a CI -------------------------------------------------------------------


def test_the_impact_of_a_ci_lists_who_depends_on_it_nearest_first(signed_in, viewer, orders_api, orders):
    database = ConfigurationItemFactory(name="orders-db", service=ServiceFactory(name="Data"))
    web = ConfigurationItemFactory(name="web-shop", service=ServiceFactory(name="Shop"))
    RelationshipFactory(source=orders_api, target=database)
    RelationshipFactory(source=web, target=orders_api)
    client = signed_in(viewer)

    impact = client.get(f"/api/v1/cis/{database.pk}/impact/").json()
    assert [(hurt["ci"]["name"], hurt["depth"]) for hurt in impact["cis"]] == [("orders-api", 1), ("web-shop", 2)]
    assert [(hurt["service"]["name"], hurt["depth"]) for hurt in impact["services"]] == [
        ("Data", 0),
        ("Orders", 1),
        ("Shop", 2),
    ]
    near = client.get(f"/api/v1/cis/{database.pk}/impact/?max_depth=1").json()
    assert [hurt["ci"]["name"] for hurt in near["cis"]] == ["orders-api"]
    assert client.get(f"/api/v1/cis/{database.pk}/impact/?max_depth=0").status_code == 400
    assert client.get(f"/api/v1/cis/{database.pk}/impact/?max_depth=deep").status_code == 400


def test_a_blast_radius_of_1200_cis_is_counted_in_full_and_listed_a_page_at_a_time(signed_in, viewer, orders_api):
    services = [ServiceFactory(name=f"Hurt {number}") for number in range(3)]
    blast_radius(orders_api, near=200, behind_each=5, services=services)
    client = signed_in(viewer)

    first = client.get(f"/api/v1/cis/{orders_api.pk}/impact/").json()
    assert first["ci_count"] == 1200
    assert first["depths"] == [
        {"depth": 0, "cis": 0, "services": 1},  # its own service
        {"depth": 1, "cis": 200, "services": 3},
        {"depth": 2, "cis": 1000, "services": 0},  # every service was already hurt nearer
    ]
    assert first["service_count"] == 4
    assert [hurt["service"]["name"] for hurt in first["services"]] == ["Orders", "Hurt 0", "Hurt 1", "Hurt 2"]
    assert len(first["cis"]) == IMPACT_PAGE_SIZE
    assert first["cis"][0]["ci"]["name"] == "near-00000"
    assert first["previous"] is None

    seen, page = [], first
    while True:
        seen += [(hurt["ci"]["id"], hurt["depth"]) for hurt in page["cis"]]
        if page["next"] is None:
            break
        page = client.get(page["next"]).json()
    assert len(seen) == len({ci for ci, _ in seen}) == 1200  # every CI once, none repeated
    assert [depth for _, depth in seen] == sorted(depth for _, depth in seen)  # nearest first across pages
    assert page["previous"] is not None

    window = client.get(f"/api/v1/cis/{orders_api.pk}/impact/?limit=50&offset=190").json()
    assert [(hurt["ci"]["id"], hurt["depth"]) for hurt in window["cis"]] == seen[190:240]
    assert window["ci_count"] == 1200
    for wrong in ("limit=0", f"limit={IMPACT_PAGE_MAX + 1}", "offset=-1", "limit=many"):
        assert client.get(f"/api/v1/cis/{orders_api.pk}/impact/?{wrong}").status_code == 400, wrong


def test_the_impact_of_a_huge_blast_radius_costs_the_same_queries_as_a_small_one(signed_in, viewer, orders_api):
    client = signed_in(viewer)
    small_root, large_root = ConfigurationItemFactory(name="small"), ConfigurationItemFactory(name="large")
    blast_radius(small_root, near=2, behind_each=1, services=[ServiceFactory(name="Small")])
    blast_radius(large_root, near=100, behind_each=10, services=[ServiceFactory(name=f"L{n}") for n in range(5)])

    def queries(root) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(f"/api/v1/cis/{root.pk}/impact/").status_code == 200
        return len(captured)

    queries(small_root)  # the session and permissions read once
    assert queries(large_root) == queries(small_root)


def test_the_relationships_of_a_ci_are_those_at_either_end(signed_in, viewer, orders_api, planned_ci):
    database = ConfigurationItemFactory(name="orders-db")
    RelationshipFactory(source=orders_api, target=database)
    RelationshipFactory(source=planned_ci, target=orders_api, kind=RelationshipKind.RUNS_ON)
    RelationshipFactory(source=planned_ci, target=database)
    response = signed_in(viewer).get(f"/api/v1/cis/{orders_api.pk}/relationships/")
    assert sorted(rel["summary"] for rel in response.json()) == [
        "orders-api depends on orders-db",
        "orders-worker runs on orders-api",
    ]


# --- relationships ---------------------------------------------------------------------------------------


def test_a_relationship_is_added_and_removed_through_the_services(signed_in, sophie, orders_api, planned_ci):
    client = signed_in(sophie)
    body = {"source": planned_ci.pk, "kind": "runs_on", "target": orders_api.pk}
    made = client.post("/api/v1/relationships/", body, format="json")
    assert made.status_code == 201, made.content
    assert made.json()["summary"] == "orders-worker runs on orders-api"
    relationship = Relationship.objects.get(pk=made.json()["id"])
    assert len(audited("relationship.create", relationship)) == 1

    assert client.post("/api/v1/relationships/", body, format="json").status_code == 400  # already stated
    assert client.delete(f"/api/v1/relationships/{relationship.pk}/").status_code == 204
    assert not Relationship.objects.exists()
    assert AuditEvent.objects.filter(action="relationship.delete", object_id=str(relationship.pk)).count() == 1


def test_a_ci_cannot_relate_to_itself_nor_relationships_be_edited(signed_in, sophie, orders_api):
    client = signed_in(sophie)
    body = {"source": orders_api.pk, "kind": "depends_on", "target": orders_api.pk}
    assert client.post("/api/v1/relationships/", body, format="json").status_code == 400
    relationship = RelationshipFactory(source=orders_api)
    assert client.patch(f"/api/v1/relationships/{relationship.pk}/", {"kind": "runs_on"}).status_code == 405


# --- baselines ---------------------------------------------------------------------------------------------


def test_a_baseline_is_taken_read_and_diffed_against_a_later_one(signed_in, deployment_manager, orders, orders_api):
    client = signed_in(deployment_manager)
    before = client.post("/api/v1/baselines/", {"name": "before 2.4", "service": orders.pk}, format="json")
    assert before.status_code == 201, before.content
    assert before.json()["taken_by"] == "dan"
    assert [item["ci_name"] for item in before.json()["items"]] == ["orders-api"]
    services.ci_update(ci=orders_api, actor=None, data={"version": "2.4.0"})
    added = ConfigurationItemFactory(name="orders-worker", service=orders)
    after = client.post("/api/v1/baselines/", {"name": "after 2.4", "cis": [orders_api.pk, added.pk]}, format="json")
    assert after.status_code == 201, after.content

    listed = client.get("/api/v1/baselines/").json()["results"]
    assert [(baseline["name"], baseline["item_count"]) for baseline in listed] == [("after 2.4", 2), ("before 2.4", 1)]
    assert client.get(f"/api/v1/baselines/{after.json()['id']}/").json()["item_count"] == 2
    diff = client.get(f"/api/v1/baselines/{before.json()['id']}/diff/{after.json()['id']}/")
    assert diff.status_code == 200, diff.content
    assert [item["ci_name"] for item in diff.json()["added"]] == ["orders-worker"]
    assert diff.json()["removed"] == []
    assert diff.json()["changed"] == [
        {
            "ci_id": orders_api.pk,
            "ci_name": "orders-api",
            "environment_name": "production",
            "changes": {"version": ["2.3.0", "2.4.0"]},
        }
    ]


@pytest.mark.parametrize("other", ["999999", "abc", str(2**70)])
def test_a_diff_against_no_baseline_is_a_404(signed_in, viewer, orders, other):
    baseline = services.baseline_take(name="b", actor=None, service=orders)
    response = signed_in(viewer).get(f"/api/v1/baselines/{baseline.pk}/diff/{other}/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "nothing"},
        {"name": "two", "service": 1, "environment": 1},
        {"name": "unknown", "cis": [999999]},
        {"name": "empty", "cis": []},
        {"name": "not ids", "cis": ["orders-api"]},
        {"name": "x" * 201, "cis": [1]},
    ],
)
def test_a_baseline_needs_exactly_one_known_scope(signed_in, deployment_manager, orders_api, body):
    response = signed_in(deployment_manager).post("/api/v1/baselines/", body, format="json")
    assert response.status_code == 400, response.content


# --- the version matrix ------------------------------------------------------------------------------------


def test_the_version_matrix_shows_each_services_versions_per_environment(signed_in, viewer, production, orders_api):
    staging = EnvironmentFactory(name="staging", promotion_order=1)
    ConfigurationItemFactory(name="orders-api", environment=staging, service=orders_api.service, version="2.4.0")
    matrix = signed_in(viewer).get("/api/v1/version-matrix/").json()
    assert [environment["name"] for environment in matrix["environments"]] == ["staging", "production"]
    [row] = matrix["rows"]
    assert row["service"]["name"] == "Orders"
    assert [(cell["environment"], cell["versions"]) for cell in row["cells"]] == [
        (staging.pk, ["2.4.0"]),
        (production.pk, ["2.3.0"]),
    ]


def test_the_version_matrix_comes_a_page_of_services_at_a_time(signed_in, viewer, production):
    services = [ServiceFactory(name=f"Service {n}") for n in range(5)]
    for service in services:
        ConfigurationItemFactory(name=f"{service.slug}-app", environment=production, service=service, version="1.0")
    client = signed_in(viewer)

    first = client.get("/api/v1/version-matrix/?limit=2").json()
    assert [row["service"]["name"] for row in first["rows"]] == ["Service 0", "Service 1"]
    assert (first["service_count"], first["previous"]) == (5, None)
    second = client.get(first["next"]).json()
    assert [row["service"]["name"] for row in second["rows"]] == ["Service 2", "Service 3"]
    last = client.get(second["next"]).json()
    assert [row["service"]["name"] for row in last["rows"]] == ["Service 4"]
    assert last["next"] is None
    assert "offset=2" in last["previous"]

    chosen = client.get(f"/api/v1/version-matrix/?service={services[3].pk}&service={services[1].pk}").json()
    assert [row["service"]["name"] for row in chosen["rows"]] == ["Service 1", "Service 3"]
    assert chosen["service_count"] == 2


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        f"limit={VERSION_MATRIX_PAGE_MAX + 1}",
        "offset=-1",
        f"offset={2**63}",  # past what PostgreSQL takes
        "service=abc",
        f"service={2**63}",
    ],
)
def test_a_bad_page_of_the_version_matrix_is_refused_with_the_field_named(signed_in, viewer, query):
    response = signed_in(viewer).get(f"/api/v1/version-matrix/?{query}")
    assert response.status_code == 400, response.content
    assert query.split("=")[0] in response.json()["errors"]


# --- environments and services: laid out by administrators ----------------------------------------------


def test_an_administrator_lays_out_environments_and_services(signed_in, administrator, sophie, oscar):
    client = signed_in(administrator)
    environment = client.post(
        "/api/v1/environments/", {"name": "Pre-production", "tier": "staging", "promotion_order": 3}, format="json"
    )
    assert environment.status_code == 201, environment.content
    assert environment.json()["slug"] == "pre-production"
    moved = client.patch(f"/api/v1/environments/{environment.json()['id']}/", {"promotion_order": 4}, format="json")
    assert moved.json()["promotion_order"] == 4
    assert len(audited("environment.update", Environment.objects.get(slug="pre-production"))) == 1

    service = client.post(
        "/api/v1/services/",
        {"name": "Payments", "owner": "sophie", "stakeholders": ["oscar"], "criticality": "critical"},
        format="json",
    )
    assert service.status_code == 201, service.content
    assert (service.json()["slug"], service.json()["stakeholders"]) == ("payments", ["oscar"])
    handed_over = client.patch(f"/api/v1/services/{service.json()['id']}/", {"owner": "oscar"}, format="json")
    assert handed_over.json()["owner"] == "oscar"
    assert Service.objects.get(slug="payments").owner == oscar
    assert client.delete(f"/api/v1/services/{service.json()['id']}/").status_code == 405


def test_an_unknown_owner_is_a_400(signed_in, administrator):
    response = signed_in(administrator).post("/api/v1/services/", {"name": "X", "owner": "nobody"}, format="json")
    assert response.status_code == 400
    assert "owner" in response.json()["errors"]


# --- the import ----------------------------------------------------------------------------------------------


def test_a_json_import_upserts_cis_and_relationships(signed_in, sophie, production, orders, orders_api):
    rows = [
        {"name": "orders-db", "environment": "production", "type": "database", "state": "live", "service": "Orders"},
        {"name": "orders-api", "environment": "production", "version": "2.4.0", "depends_on": ["orders-db"]},
    ]
    response = signed_in(sophie).post("/api/v1/cis/import/", rows, format="json")
    assert response.status_code == 200, response.content
    result = response.json()
    assert [ci["name"] for ci in result["created"]] == ["orders-db"]
    assert [(ci["name"], ci["version"]) for ci in result["updated"]] == [("orders-api", "2.4.0")]
    assert [rel["summary"] for rel in result["relationships_added"]] == ["orders-api depends on orders-db"]

    again = signed_in(sophie).post("/api/v1/cis/import/", rows, format="json").json()
    assert (len(again["created"]), len(again["updated"]), len(again["unchanged"])) == (0, 0, 2)


def test_a_csv_import_is_sent_as_the_body_or_as_a_file(signed_in, sophie, production, orders):
    client = signed_in(sophie)
    body = "name,environment,type,service\norders-queue,production,other,Orders\n"
    as_body = client.post("/api/v1/cis/import/", body, content_type="text/csv")
    assert as_body.status_code == 200, as_body.content
    assert [ci["name"] for ci in as_body.json()["created"]] == ["orders-queue"]

    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("cmdb.csv", body.replace("queue", "cron").encode(), content_type="text/csv")
    as_file = client.post("/api/v1/cis/import/", {"file": upload}, format="multipart")
    assert as_file.status_code == 200, as_file.content
    assert [ci["name"] for ci in as_file.json()["created"]] == ["orders-cron"]


def test_an_import_with_bad_rows_names_each_and_imports_nothing(signed_in, sophie, production, orders):
    body = (
        "name,environment,type,service\n"
        "orders-ok,production,application,Orders\n"
        "orders-x,moon,application,Orders\n"
        "orders-y,production,teapot,Orders\n"
    )
    response = signed_in(sophie).post("/api/v1/cis/import/", body, content_type="text/csv")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"where": "line 3", "reason": "unknown environment 'moon'"},
        {"where": "line 4", "reason": response.json()["errors"][1]["reason"]},
    ]
    assert "unknown type 'teapot'" in response.json()["errors"][1]["reason"]
    assert not ConfigurationItem.objects.filter(name="orders-ok").exists()


def test_a_service_owner_imports_only_into_services_she_owns(signed_in, oscar, production, orders):
    rows = [{"name": "sneaky", "environment": "production", "type": "application", "service": "Orders"}]
    response = signed_in(oscar).post("/api/v1/cis/import/", rows, format="json")
    assert response.status_code == 400
    assert "may only edit CIs of services they own" in response.json()["errors"][0]["reason"]
    assert not ConfigurationItem.objects.filter(name="sneaky").exists()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"name,environment\nbad\x00name,production\n", "text/csv"),
        (b'[{"name": "bad\\u0000name", "environment": "production"}]', "application/json"),
        (b'[{"name": "a", "environment": "production", "attributes": {"k\\u0000": 1}}]', "application/json"),
        (b"name,environment\n\xff\xfe,production\n", "text/csv"),
        (b'[{"name": "a", "environment": "production", "version": ' + b"9" * 5000 + b"}]", "application/json"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json"),
        (b"{not json", "application/json"),
        (b'{"name": "a"}', "application/json"),
        (b"", "text/csv"),
        (b'name,environment,type,attributes\na,production,server,"{""n"": 1e999}"\n', "text/csv"),
        (b'name,environment,type,attributes\na,production,server,"{""n"": ' + b"9" * 5000 + b'}"\n', "text/csv"),
        (
            b'[{"name": "a", "environment": "production", "type": "server", "attributes": {"n": NaN}}]',
            "application/json",
        ),
    ],
)
def test_an_import_no_one_can_store_is_a_400_never_a_500(signed_in, sophie, production, body, content_type):
    response = signed_in(sophie).post("/api/v1/cis/import/", body, content_type=content_type)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert not ConfigurationItem.objects.exists()


def test_an_import_in_another_media_type_is_a_415(signed_in, sophie):
    response = signed_in(sophie).post("/api/v1/cis/import/", "<cis/>", content_type="application/xml")
    assert response.status_code == 415


def test_an_import_file_must_say_its_format(signed_in, sophie):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("cmdb.txt", b"name,environment\n")
    response = signed_in(sophie).post("/api/v1/cis/import/", {"file": upload}, format="multipart")
    assert response.status_code == 400
    assert signed_in(sophie).post("/api/v1/cis/import/", {}, format="multipart").status_code == 400


# --- input nobody can store is refused with a 400, never a 500 --------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"name": "bad\x00name"},
        {"attributes": {"note": "bad\x00"}},
        {"attributes": {"bad\x00key": 1}},
        {"attributes": ["not", "an", "object"]},
        {"attributes": {"deep": [[[[{"n": float("inf")}]]]]}},
        {"name": "x" * 100_000},
        {"version": ["2.4"]},
        {"name": 12, "ci_type": True},
        {"environment": "production"},
        {"environment": 2**70},
        {"environment": -1},
        {"service": {"id": 1}},
        {"owner": "bad\x00user"},
        {"owner": 7},
        {"ci_type": "teapot"},
    ],
)
def test_a_ci_nobody_can_store_is_a_400(signed_in, deployment_manager, production, change):
    body = {"name": "cache", "ci_type": "database", "environment": production.pk, **change}
    payload = json.dumps(body, allow_nan=True)
    response = signed_in(deployment_manager).post("/api/v1/cis/", payload, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert not ConfigurationItem.objects.exists()


def test_an_attribute_number_too_large_for_a_float_is_a_400(signed_in, deployment_manager, production):
    payload = (
        f'{{"name": "cache", "ci_type": "database", "environment": {production.pk}, "attributes": {{"n": 1e999}}}}'
    )
    response = signed_in(deployment_manager).post("/api/v1/cis/", payload, content_type="application/json")
    assert response.status_code == 400, response.content


@pytest.mark.parametrize("path", ["cis/abc/", f"cis/{2**70}/", "cis/-1/", "baselines/1.5/", "services/%00/"])
def test_ids_of_another_type_are_a_404(signed_in, viewer, path):
    response = signed_in(viewer).get(f"/api/v1/{path}")
    assert response.status_code == 404


@pytest.mark.parametrize(
    "query",
    ["search=%00", "name=%00", f"environment={2**70}", "ordering=%00", "ci_type=%00", "page=%00", "page_size=-1"],
)
def test_nasty_list_parameters_never_give_a_500(signed_in, viewer, orders_api, query):
    response = signed_in(viewer).get(f"/api/v1/cis/?{query}")
    assert response.status_code in (200, 400, 404), response.content


def test_a_retried_import_with_its_idempotency_key_imports_once(signed_in, sophie, production, orders):
    client = signed_in(sophie)
    body = "name,environment,type,service\norders-queue,production,other,Orders\n"
    first = client.post("/api/v1/cis/import/", body, content_type="text/csv", HTTP_IDEMPOTENCY_KEY="sync-42")
    retry = client.post("/api/v1/cis/import/", body, content_type="text/csv", HTTP_IDEMPOTENCY_KEY="sync-42")
    assert first.status_code == retry.status_code == 200, first.content
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert len(audited("ci.create", ConfigurationItem.objects.get(name="orders-queue"))) == 1


@pytest.mark.parametrize(
    "body",
    [
        "name,environment,type\norders\r-x,production,server\n",
        'name,environment,type\n"orders,production,server\n',
        "name,environment,type\n" + "x" * 200_000 + ",production,server\n",
    ],
)
def test_a_csv_the_csv_module_cannot_read_is_a_400_naming_the_line(signed_in, sophie, production, body):
    response = signed_in(sophie).post("/api/v1/cis/import/", body, content_type="text/csv")
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["where"].startswith("line ")


def test_retiring_a_ci_live_cis_depend_on_is_a_422_and_an_administrator_overrides_it(
    signed_in, sophie, administrator, orders
):
    db = ConfigurationItemFactory(service=orders, name="orders-db", state=CiState.LIVE)
    RelationshipFactory(source=ConfigurationItemFactory(name="orders-web", state=CiState.LIVE), target=db)
    refused = signed_in(sophie).post(f"/api/v1/cis/{db.pk}/retire/", {"reason": "old"}, format="json")
    assert refused.status_code == 422
    assert "orders-web" in refused.json()["conditions"][0]
    overridden = signed_in(administrator).post(
        f"/api/v1/cis/{db.pk}/retire/", {"reason": "replaced", "override_dependents": True}, format="json"
    )
    assert overridden.status_code == 200, overridden.content
    assert overridden.json()["state"] == CiState.RETIRED
