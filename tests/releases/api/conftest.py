"""Clients for the release governance API: a session per person of the world, or a token of theirs."""

from itertools import count

from rest_framework.test import APIClient

from rdm_site.tokens import token_create


def session(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


_tokens = count(1)


def bearer(user, *scopes: str) -> APIClient:
    """A client holding a fresh token of ``user`` with ``scopes`` (``read`` when none is named)."""
    _, raw = token_create(actor=user, name=f"pipeline {next(_tokens)}", scopes=list(scopes or ["read"]))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client
