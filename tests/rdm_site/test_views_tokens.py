"""The tokens page: make a token (secret shown once), scopes limited to what one's roles write, revoke."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rdm_site.models import ApiToken
from rdm_site.roles import Role
from rdm_site.tokens import token_create
from tests.factories import UserFactory


@pytest.fixture
def vera(db):
    return UserFactory(username="vera", roles=[Role.VIEWER])


@pytest.fixture
def carl(db):
    return UserFactory(username="carl", roles=[Role.CHANGE_APPROVER])


def _offered_scopes(client) -> list[str]:
    return [value for value, _ in client.get("/tokens/").context["form"].fields["scopes"].choices]


@pytest.mark.django_db
def test_the_form_offers_only_the_scopes_ones_roles_write(client, vera, carl):
    client.force_login(vera)
    assert _offered_scopes(client) == ["read"]
    client.force_login(carl)
    assert _offered_scopes(client) == ["read", "changes"]


@pytest.mark.django_db
def test_a_token_is_made_and_its_secret_shown_once(client, carl):
    client.force_login(carl)
    page = client.post("/tokens/", {"name": "jenkins-shop", "scopes": ["read", "changes"], "expires_on": "2099-01-01"})
    assert page.status_code == 200
    token = ApiToken.objects.get(owner=carl, name="jenkins-shop")
    assert token.scopes == ["changes", "read"]
    assert token.expires_at.year == 2099
    secret = page.context["secret"]
    assert secret.startswith(token.prefix)
    assert secret in page.content.decode()
    assert secret not in client.get("/tokens/").content.decode()


@pytest.mark.django_db
def test_refusals_are_shown_next_to_their_fields(client, carl):
    token_create(actor=carl, name="taken", scopes=["read"])
    client.force_login(carl)
    page = client.post("/tokens/", {"name": "taken", "scopes": ["read"], "expires_on": "2001-01-01"})
    form = page.context["form"]
    assert "already has a token named" in " ".join(form.errors["name"])
    assert "expiry" in " ".join(form.errors["expires_on"])
    page = client.post("/tokens/", {"name": "x", "scopes": ["cmdb"]})  # a scope Change Approvers do not write
    assert "scopes" in page.context["form"].errors
    assert ApiToken.objects.filter(owner=carl).count() == 1


@pytest.mark.django_db
def test_one_revokes_ones_own_token_and_nobody_elses(client, vera, carl):
    mine, _ = token_create(actor=carl, name="mine", scopes=["read"])
    theirs, _ = token_create(actor=vera, name="theirs", scopes=["read"])
    client.force_login(carl)
    assert client.post(f"/tokens/{mine.pk}/revoke/").status_code == 302
    assert client.post(f"/tokens/{theirs.pk}/revoke/").status_code == 403
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.revoked_at is not None
    assert theirs.revoked_at is None
    assert client.get(f"/tokens/{mine.pk}/revoke/").status_code == 405


@pytest.mark.django_db
def test_the_tokens_page_makes_the_same_queries_for_ten_times_the_tokens(client, carl):
    client.force_login(carl)

    def queries_with(count: int) -> int:
        for _ in range(count):
            token_create(actor=carl, name=f"token-{ApiToken.objects.count()}", scopes=["read"])
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/tokens/").status_code == 200
        return len(captured)

    assert queries_with(2) == queries_with(18)
