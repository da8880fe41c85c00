"""The one question every service asks first: may this actor do this at all? And every refusal explained.

The role table (``rdm_site.roles``) grants the permissions. Each app adds what a table cannot say
(ownership, segregation of duties) in its own ``permissions`` module, built on these. ``actor=None`` is
RDM itself acting on its own authority (the engine, the reconciler), never a request. An actor holding an
API token has its owner's roles narrowed by the token's scopes (``rdm_site.actors.Actor``).
"""

from collections.abc import Iterable

from django.contrib.auth.models import User


def permission_problem(actor: User | None, permission: str, attempt: str) -> str | None:
    """Why ``actor`` may not ``attempt`` (a phrase such as "submit release Shop 2.0"), or None when they may."""
    if actor is None or actor.has_perm(permission):
        return None
    return f"{actor.get_username()} may not {attempt}: {_missing(actor, [permission])}."


def any_permission_problem(actor: User | None, permissions: Iterable[str], attempt: str) -> str | None:
    """Like ``permission_problem``, satisfied by any one of ``permissions``."""
    permissions = list(permissions)
    if actor is None or any(actor.has_perm(permission) for permission in permissions):
        return None
    return f"{actor.get_username()} may not {attempt}: {_missing(actor, permissions)}."


def _missing(actor: User, permissions: list[str]) -> str:
    names = ", ".join(map(repr, permissions))
    token = getattr(actor, "token", None)
    if token is not None and any(User.has_perm(actor, permission) for permission in permissions):
        return f"API token {token.name!r} lacks the scope for {names} (its scopes: {', '.join(token.scopes)})"
    if len(permissions) == 1:
        return f"none of their roles grants {names}"
    return f"none of their roles grants any of {names}"
