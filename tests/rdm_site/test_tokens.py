"""API tokens as actors: made and shown once, stored as a hash, found again, refused when unusable, narrowed by
their scopes, and named in the audit trail beside their owner."""

import datetime
import hashlib

import pytest
from django.utils import timezone

from cmdb import services as cmdb
from cmdb.choices import CiState
from rdm_site.exceptions import NotAllowed
from rdm_site.models import Actor, ApiToken, AuditEvent
from rdm_site.roles import Role
from rdm_site.tokens import token_authenticate, token_create, token_revoke
from tests.cmdb.factories import ConfigurationItemFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def dan():
    return UserFactory(username="dan", roles=[Role.DEPLOYMENT_MANAGER])


def test_the_secret_is_shown_once_and_only_its_hash_is_kept(dan):
    # when Dan makes a token
    token, raw = token_create(actor=dan, name="jenkins", scopes=["cmdb"])
    # then he gets the secret, recognisable by its prefix, and the database keeps only its hash
    assert raw.startswith(f"rdm_{token.public_id}_")
    stored = ApiToken.objects.filter(pk=token.pk).values().get()
    assert stored["secret_hash"] == hashlib.sha256(raw.encode()).hexdigest()
    secret = raw.removeprefix(f"rdm_{token.public_id}_")  # (the secret itself may hold an underscore)
    assert not any(secret in str(value) for value in stored.values())


def test_a_token_stands_for_its_owner_as_an_actor_carrying_it(dan):
    token, raw = token_create(actor=dan, name="jenkins", scopes=["cmdb"])
    actor = token_authenticate(raw, address="10.0.0.7")
    assert isinstance(actor, Actor)
    assert (actor.pk, actor.token) == (dan.pk, token)
    token.refresh_from_db()
    assert token.last_used_from == "10.0.0.7"
    assert token.last_used_at is not None


def _revoked(token, raw, owner):
    token_revoke(actor=owner, token=token)
    return raw


def _expired(token, raw, owner):
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    return raw


def _unknown(token, raw, owner):
    return "rdm_000000000000_" + raw.rpartition("_")[2]


def _tampered(token, raw, owner):
    return raw[:-1] + ("A" if raw[-1] != "A" else "B")


def _not_a_token(token, raw, owner):
    return raw.removeprefix("rdm_")


def _owner_deactivated(token, raw, owner):
    type(owner).objects.filter(pk=owner.pk).update(is_active=False)
    return raw


@pytest.mark.parametrize("spoil", [_revoked, _expired, _unknown, _tampered, _not_a_token, _owner_deactivated])
def test_an_unusable_token_finds_nobody(dan, spoil):
    token, raw = token_create(actor=dan, name="jenkins", scopes=["cmdb"])
    assert token_authenticate(spoil(token, raw, dan)) is None


def test_a_token_may_use_its_owners_permissions_only_within_its_scopes(dan):
    reader = token_authenticate(token_create(actor=dan, name="reader", scopes=["read"])[1])
    writer = token_authenticate(token_create(actor=dan, name="writer", scopes=["cmdb"])[1])
    assert dan.has_perm("cmdb.change_configurationitem")
    assert not reader.has_perm("cmdb.change_configurationitem")
    assert reader.has_perm("cmdb.view_configurationitem")
    assert writer.has_perm("cmdb.change_configurationitem")
    # a scope adds nothing the owner's roles do not grant
    assert not writer.has_perm("cmdb.add_environment")


def test_a_cmdb_service_names_the_token_in_the_trail_and_its_missing_scope_in_a_refusal(dan):
    ci = ConfigurationItemFactory(state=CiState.IN_BUILD)
    writer_token, raw = token_create(actor=dan, name="pipeline", scopes=["cmdb"])
    reader = token_authenticate(token_create(actor=dan, name="dashboard", scopes=["read"])[1])
    # when the read-only token tries to take the CI live / then the refusal names the scope it lacks
    with pytest.raises(NotAllowed, match=r"API token 'dashboard' lacks the scope for 'cmdb\.change_configurationitem'"):
        cmdb.ci_transition(ci=ci, transition="go_live", actor=reader)
    # when the pipeline's token does / then the trail names the token beside its owner
    cmdb.ci_transition(ci=ci, transition="go_live", actor=token_authenticate(raw))
    event = AuditEvent.objects.get(action="ci.go_live")
    assert (event.actor_kind, event.actor_id) == ("token", dan.pk)
    assert event.actor_label == f"dan (token #{writer_token.pk} 'pipeline')"
