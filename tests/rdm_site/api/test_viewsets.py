"""What every API collection shares: ETags (304, 412), throttling (429 with Retry-After), problem details."""

import pytest
from django.core.cache import cache

from rdm_site.tokens import token_create


@pytest.fixture
def webhook(client, demo_users, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["hooks.example.com"]
    client.force_login(demo_users["dan.deploy"])
    made = client.post(
        "/api/v1/webhooks/",
        {"name": "chat", "url": "https://hooks.example.com/rdm", "event_types": ["release.*"]},
        "application/json",
    )
    assert made.status_code == 201, made.content
    return made.json()


@pytest.mark.django_db
def test_detail_reads_carry_an_etag_and_answer_304_when_unchanged(client, webhook):
    url = f"/api/v1/webhooks/{webhook['id']}/"
    first = client.get(url)
    assert first.status_code == 200
    assert first["ETag"]
    assert client.get(url, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    client.patch(url, {"active": False}, "application/json")
    assert client.get(url, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 200


@pytest.mark.django_db
def test_an_update_with_a_stale_if_match_is_refused_with_412_and_changes_nothing(client, webhook):
    url = f"/api/v1/webhooks/{webhook['id']}/"
    etag = client.get(url)["ETag"]
    assert client.patch(url, {"name": "renamed"}, "application/json", HTTP_IF_MATCH=etag).status_code == 200
    stale = client.patch(url, {"name": "again"}, "application/json", HTTP_IF_MATCH=etag)
    assert stale.status_code == 412
    assert stale["Content-Type"] == "application/problem+json"
    assert client.get(url).json()["name"] == "renamed"


@pytest.mark.django_db
def test_a_token_over_its_rate_is_throttled_with_retry_after(client, demo_users, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "3/min", "user": "100/min"},
    }
    cache.clear()
    _, raw = token_create(actor=demo_users["vera.viewer"], name="ro", scopes=["read"])
    statuses = [client.get("/api/v1/users/", HTTP_AUTHORIZATION=f"Bearer {raw}") for _ in range(4)]
    assert [response.status_code for response in statuses] == [200, 200, 200, 429]
    assert int(statuses[-1]["Retry-After"]) > 0
    assert statuses[-1].json()["code"] == "throttled"
    client.force_login(demo_users["vera.viewer"])
    assert client.get("/api/v1/users/").status_code == 200  # the person has a budget of their own


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[" * 100_000 + "]" * 100_000,
        '{"name": "\\u0000"}',
        '["a list"]',
        '{"name": 5, "url": [], "event_types": "x"}',
        '{"x": 1e999}',
    ],
)
def test_malformed_input_is_answered_400_never_500(client, demo_users, body):
    client.force_login(demo_users["dan.deploy"])
    response = client.post("/api/v1/webhooks/", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
