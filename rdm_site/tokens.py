"""API tokens: made by their owner, shown once, stored as a hash, narrowed by scopes, revocable.

A token reads ``rdm_<public id>_<secret>``: the prefix lets logs and secret scanners recognise it, the
public id finds its row, and only the SHA-256 of the whole token is kept (a token is random and long,
so a fast hash is enough; nothing can recover the secret from it).
"""

import hmac
import secrets
from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from rdm_site.audit import audit_record
from rdm_site.crypto import secret_digest
from rdm_site.domain import bounded_text, now
from rdm_site.exceptions import InvalidInput, NotAllowed
from rdm_site.models import Actor, ApiToken
from rdm_site.scopes import Scope

TOKEN_PREFIX = "rdm_"  # noqa: S105 - a public marker, not a secret
NAME_MAX_LENGTH = 100


@transaction.atomic
def token_create(
    *, actor: User, owner: User | None = None, name: str, scopes: list[str], expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Make a token for ``owner`` (the actor by default; only an administrator makes one for someone else).

    Returns the token and its secret, which is never shown again.
    """
    owner = owner or actor
    if getattr(actor, "token", None) is not None:
        raise NotAllowed("An API token cannot make tokens; sign in to make one.")
    if owner.pk != actor.pk and not actor.is_superuser:
        raise NotAllowed(f"{actor.get_username()} may not make API tokens for {owner.get_username()}.")
    name = bounded_text(name, "the token's name", NAME_MAX_LENGTH)
    problems = []
    if not name:
        problems.append("name the token (what uses it, e.g. 'jenkins-shop')")
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        problems.append(f"unknown scopes {', '.join(unknown)}; choose from {', '.join(Scope.values)}")
    if not scopes:
        problems.append(f"give at least one scope: {', '.join(Scope.values)}")
    if expires_at is not None and expires_at <= now():
        problems.append("the expiry must lie in the future")
    if ApiToken.objects.filter(owner=owner, name=name).exists():
        problems.append(f"{owner.get_username()} already has a token named {name!r}")
    if problems:
        raise InvalidInput("The token cannot be made: " + "; ".join(problems), problems)
    public_id = secrets.token_hex(6)
    raw = f"{TOKEN_PREFIX}{public_id}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        owner=owner,
        name=name,
        public_id=public_id,
        secret_hash=secret_digest(raw),
        scopes=sorted(set(scopes)),
        expires_at=expires_at,
    )
    audit_record(actor=actor, action="token.create", target=token, changes={"scopes": token.scopes})
    return token, raw


@transaction.atomic
def token_revoke(*, actor: User, token: ApiToken) -> ApiToken:
    """Revoke a token for good (its owner or an administrator); requests carrying it are refused from now on."""
    if token.owner_id != actor.pk and not actor.is_superuser:
        raise NotAllowed(f"{actor.get_username()} may not revoke a token of {token.owner.get_username()}.")
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is None:
        token.revoked_at = now()
        token.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="token.revoke", target=token)
    return token


def token_authenticate(raw: str, address: str | None = None) -> Actor | None:
    """The actor a presented token stands for, or None when it is unknown, revoked or expired."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    public_id, _, _ = raw[len(TOKEN_PREFIX) :].partition("_")
    token = ApiToken.objects.select_related("owner").filter(public_id=public_id).first()
    if token is None or not hmac.compare_digest(token.secret_hash, secret_digest(raw)) or not token.usable():
        return None
    if not token.owner.is_active:
        return None
    moment = timezone.now()
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=moment, last_used_from=address)
    token.last_used_at, token.last_used_from = moment, address
    return Actor.for_token(token)
