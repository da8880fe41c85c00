"""The API's platform resources: users with roles, the OpenAPI schema and self-hosted docs."""

import pytest

from tests.factories import UserFactory


@pytest.mark.django_db
def test_users_list_shows_roles_to_any_role(client, demo_users):
    client.force_login(demo_users["vera.viewer"])
    response = client.get("/api/v1/users/", {"groups__name": "Service Owner"})
    assert response.status_code == 200
    body = response.json()
    assert [user["username"] for user in body["results"]] == ["oscar.owner", "sophie.owner"]
    assert body["results"][0]["roles"] == ["Service Owner"]


@pytest.mark.django_db
def test_users_list_refused_without_sign_in_or_role(client):
    assert client.get("/api/v1/users/").status_code == 401
    client.force_login(UserFactory(username="no.role"))
    assert client.get("/api/v1/users/").status_code == 403


@pytest.mark.django_db
def test_users_are_read_only_through_the_api(client, demo_users):
    client.force_login(demo_users["admin"])
    assert client.post("/api/v1/users/", {"username": "x"}).status_code == 405


@pytest.mark.django_db
def test_openapi_schema_and_docs_are_served_without_a_cdn(client, demo_users):
    assert client.get("/api/schema/").status_code == 401
    client.force_login(demo_users["vera.viewer"])
    schema = client.get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    assert "/api/v1/users/" in schema.json()["paths"]
    docs = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs
    assert "cdn" not in docs.lower()
    assert "unpkg" not in docs.lower()


@pytest.mark.django_db
def test_errors_come_as_rfc_9457_problem_details(client, demo_users):
    refused = client.get("/api/v1/users/")
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["status"] == 401
    assert refused.json()["title"] == "Unauthorized"
    assert refused["WWW-Authenticate"] == 'Bearer realm="api"'
    client.force_login(demo_users["vera.viewer"])
    missing = client.get("/api/v1/users/999999/")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"


def test_domain_errors_map_to_their_statuses_with_every_condition_listed():
    from rdm_site.api.exceptions import problem_exception_handler
    from rdm_site.exceptions import NotAllowed, UnmetConditions

    unmet = problem_exception_handler(UnmetConditions("Not ready", ["no approved change", "tests failing"]), {})
    assert unmet.status_code == 422
    assert unmet.data["conditions"] == ["no approved change", "tests failing"]
    assert unmet.data["detail"] == "Not ready: no approved change; tests failing"
    assert problem_exception_handler(NotAllowed("You built this package."), {}).status_code == 403
