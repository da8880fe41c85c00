"""Fixtures of the deployments API tests: clients signed in by session or by token."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from rdm_site.roles import Role
from rdm_site.tokens import token_create
from tests.factories import UserFactory


def session_client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def token_client(user, *scopes: str) -> APIClient:
    _, raw = token_create(actor=user, name=f"{user.username} {' '.join(scopes)}", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def dm_api(manager):
    """The Deployment Manager, signed in."""
    return session_client(manager)


@pytest.fixture
def pipeline(db):
    """A Build/CI Engineer's pipeline token that may run deployments and open incidents."""
    return token_client(UserFactory(username="jenkins", roles=[Role.BUILD_ENGINEER]), "deployments", "incidents")


def list_queries(client, url: str, rows: int) -> int:
    """The queries one GET of a list makes, asserting it shows ``rows`` rows."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    assert len(response.json()["results"]) == rows
    return len(captured)
