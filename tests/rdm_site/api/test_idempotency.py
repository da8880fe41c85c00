"""Idempotency-Key on POST: a retry returns the first answer without a second effect; another body with the
same key is refused; two requests with one key at once (two real connections) make one effect."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIRequestFactory, force_authenticate

from rdm_site.api.views import ApiTokenViewSet
from rdm_site.models import ApiToken


def _post_token(client, key: str, name: str):
    return client.post(
        "/api/v1/tokens/", {"name": name, "scopes": ["read"]}, "application/json", HTTP_IDEMPOTENCY_KEY=key
    )


@pytest.mark.django_db
def test_a_retry_with_the_same_key_and_body_replays_the_first_answer(client, demo_users):
    client.force_login(demo_users["bill.build"])
    first = _post_token(client, "key-1", "ci")
    again = _post_token(client, "key-1", "ci")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()  # the same secret: the one token made
    assert again["Idempotent-Replayed"] == "true"
    assert ApiToken.objects.filter(name="ci").count() == 1


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_refused_with_422(client, demo_users):
    client.force_login(demo_users["bill.build"])
    assert _post_token(client, "key-2", "ci").status_code == 201
    reused = _post_token(client, "key-2", "other")
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    assert not ApiToken.objects.filter(name="other").exists()


@pytest.mark.django_db
def test_refusals_are_replayed_too_and_keys_belong_to_their_sender(client, demo_users):
    client.force_login(demo_users["vera.viewer"])
    body = {"name": "x", "url": "https://nowhere.example/", "event_types": ["*"]}
    refused = client.post("/api/v1/webhooks/", body, "application/json", HTTP_IDEMPOTENCY_KEY="k")
    assert refused.status_code == 403
    assert client.post("/api/v1/webhooks/", body, "application/json", HTTP_IDEMPOTENCY_KEY="k").status_code == 403
    client.force_login(demo_users["bill.build"])
    assert _post_token(client, "k", "mine").status_code == 201  # another sender's key space


@pytest.mark.django_db
def test_a_malformed_key_is_bad_input(client, demo_users):
    client.force_login(demo_users["bill.build"])
    response = _post_token(client, "has space", "ci")
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["errors"]


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_key_make_one_effect(demo_users):
    """Each thread is a request on its own PostgreSQL connection; they start together."""
    view = ApiTokenViewSet.as_view({"post": "create"})
    owner = demo_users["bill.build"]
    answers, start = [], threading.Barrier(2)

    def send():
        request = APIRequestFactory().post(
            "/api/v1/tokens/", {"name": "ci", "scopes": ["read"]}, format="json", HTTP_IDEMPOTENCY_KEY="same-moment"
        )
        force_authenticate(request, user=owner)
        start.wait()
        try:
            response = view(request)
            if hasattr(response, "render"):  # a replayed answer comes rendered already
                response.render()
            answers.append(response)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answer.status_code for answer in answers) == [201, 201], [a.content for a in answers]
    assert answers[0].content == answers[1].content
    assert ApiToken.objects.filter(name="ci").count() == 1
