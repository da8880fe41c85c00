"""API tokens through the API: made and revoked by their owner, the secret shown once, Bearer authentication,
scopes narrowing the owner's roles, the token recorded in the audit trail."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from rdm_site.models import ApiToken, AuditEvent
from rdm_site.tokens import token_create, token_revoke


def bearer(raw: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.mark.django_db
def test_a_user_makes_a_token_sees_its_secret_once_and_uses_it(client, demo_users):
    client.force_login(demo_users["bill.build"])
    made = client.post("/api/v1/tokens/", {"name": "jenkins-shop", "scopes": ["read", "packages"]}, "application/json")
    assert made.status_code == 201, made.content
    raw = made.json()["secret"]
    assert raw.startswith("rdm_")
    assert made.json()["prefix"] == raw[: len(made.json()["prefix"])]
    token = ApiToken.objects.get(name="jenkins-shop")
    assert raw not in token.secret_hash
    assert len(token.secret_hash) == 64

    listed = client.get(f"/api/v1/tokens/{token.pk}/").json()
    assert "secret" not in listed
    assert listed["scopes"] == ["packages", "read"]

    client.logout()
    used = client.get("/api/v1/users/", **bearer(raw))
    assert used.status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert token.last_used_from == "127.0.0.1"


@pytest.mark.django_db
def test_revoked_expired_unknown_and_malformed_tokens_are_refused_with_401(client, demo_users):
    owner = demo_users["bill.build"]
    token, raw = token_create(actor=owner, name="ci", scopes=["read"])
    assert client.get("/api/v1/users/", **bearer(raw)).status_code == 200

    token_revoke(actor=owner, token=token)
    revoked = client.get("/api/v1/users/", **bearer(raw))
    assert revoked.status_code == 401
    assert revoked["WWW-Authenticate"].startswith("Bearer")
    assert revoked.json()["detail"] == "The API token is unknown, revoked or expired."

    expiring, raw_expiring = token_create(actor=owner, name="short", scopes=["read"])
    ApiToken.objects.filter(pk=expiring.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get("/api/v1/users/", **bearer(raw_expiring)).status_code == 401

    tampered = raw_expiring[:-2] + ("AA" if not raw_expiring.endswith("AA") else "BB")
    for presented in (tampered, "rdm_nothing_here", "not-a-token", ""):
        assert client.get("/api/v1/users/", **bearer(presented)).status_code == 401
    assert client.get("/api/v1/users/").status_code == 401


@pytest.mark.django_db
def test_a_token_cannot_make_tokens_and_a_user_cannot_revoke_anothers(client, demo_users):
    _, raw = token_create(actor=demo_users["bill.build"], name="ci", scopes=["read", "packages"])
    through_token = client.post("/api/v1/tokens/", {"name": "x", "scopes": ["read"]}, "application/json", **bearer(raw))
    assert through_token.status_code == 403
    assert "cannot make tokens" in through_token.json()["detail"]

    other, _ = token_create(actor=demo_users["dan.deploy"], name="dan", scopes=["read"])
    client.force_login(demo_users["bill.build"])
    assert client.delete(f"/api/v1/tokens/{other.pk}/").status_code == 404  # not even visible


@pytest.mark.django_db
def test_bad_token_input_is_answered_with_every_problem(client, demo_users):
    client.force_login(demo_users["bill.build"])
    token_create(actor=demo_users["bill.build"], name="taken", scopes=["read"])
    refused = client.post("/api/v1/tokens/", {"name": "taken", "scopes": ["read"]}, "application/json")
    assert refused.status_code == 400
    assert "already has a token named 'taken'" in refused.json()["detail"]
    unknown = client.post("/api/v1/tokens/", {"name": "x", "scopes": ["root"]}, "application/json")
    assert unknown.status_code == 400
    assert "scopes" in unknown.json()["errors"]
    past = client.post(
        "/api/v1/tokens/",
        {"name": "y", "scopes": ["read"], "expires_at": "2000-01-01T00:00:00Z"},
        "application/json",
    )
    assert past.status_code == 400
    assert "expiry must lie in the future" in past.json()["detail"]


@pytest.mark.django_db
def test_revoking_keeps_the_token_listed_as_revoked_and_audited(client, demo_users):
    client.force_login(demo_users["bill.build"])
    token, _ = token_create(actor=demo_users["bill.build"], name="ci", scopes=["read"])
    assert client.delete(f"/api/v1/tokens/{token.pk}/").status_code == 204
    assert client.get(f"/api/v1/tokens/{token.pk}/").json()["revoked_at"] is not None
    assert AuditEvent.objects.filter(action="token.revoke", object_id=str(token.pk)).exists()


@pytest.mark.django_db
def test_token_create_command_prints_a_working_token(client, demo_users, capsys):
    call_command("token_create", "bill.build", "--name", "pipeline", "--scopes", "read,packages", "--expires", "30")
    raw = capsys.readouterr().out.strip()
    assert client.get("/api/v1/users/", **bearer(raw)).status_code == 200
    token = ApiToken.objects.get(name="pipeline")
    assert token.expires_at > timezone.now() + timedelta(days=29)


@pytest.mark.django_db
def test_a_read_only_token_cannot_write_what_its_owner_may(client, demo_users, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["hooks.example.com"]
    _, read_only = token_create(actor=demo_users["dan.deploy"], name="ro", scopes=["read"])
    _, writer = token_create(actor=demo_users["dan.deploy"], name="rw", scopes=["read", "webhooks"])
    body = {"name": "chat", "url": "https://hooks.example.com/rdm", "event_types": ["*"]}
    assert client.post("/api/v1/webhooks/", body, "application/json", **bearer(read_only)).status_code == 403
    made = client.post("/api/v1/webhooks/", body, "application/json", **bearer(writer))
    assert made.status_code == 201, made.content
    created = AuditEvent.objects.get(action="webhook.create")
    assert created.actor_kind == "token"
    assert created.actor_label == f"dan.deploy (token #{ApiToken.objects.get(name='rw').pk} 'rw')"
