"""Building blocks of the API permission matrices: one cell per role and way of calling (session, a token whose
scopes cover the action, a token narrowed to ``read``), its expected outcome taken from ``design_matrix``.

Usage in an app's test module::

    @pytest.mark.parametrize("cell", cells("run deployments"), ids=str)
    def test_pause(cell, ...):
        client = cell.client(user_with(cell.role))
        response = client.post(f"/api/v1/deployments/{d.pk}/pause/", {...}, format="json")
        cell.assert_answer(response)
"""

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from rdm_site.tokens import token_create
from tests.api.design_matrix import ROLES, SCOPE, may

# The service accepted the request (2xx), or only the record's state or conditions stood in the way.
ACCEPTED = {200, 201, 202, 204, 409, 422}
SESSION, SCOPED_TOKEN, READ_TOKEN = "session", "token with the scope", "read-only token"


@dataclass(frozen=True)
class Cell:
    action: str
    role: str
    via: str

    def __str__(self):
        return f"{self.role} via {self.via}"

    @property
    def allowed(self) -> bool:
        if self.via == READ_TOKEN and SCOPE[self.action] != "read":
            return False
        return may(self.action, self.role)

    def client(self, user) -> APIClient:
        client = APIClient()
        if self.via == SESSION:
            client.force_login(user)
            return client
        scopes = ["read"] if self.via == READ_TOKEN else sorted({"read", SCOPE[self.action]})
        _, raw = token_create(actor=user, name=f"matrix {self.via}", scopes=scopes)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client

    def assert_answer(self, response) -> None:
        body = getattr(response, "content", b"")[:500]
        if self.allowed:
            assert response.status_code in ACCEPTED, f"{self}: expected allowed, got {response.status_code} {body}"
        else:
            assert response.status_code == 403, f"{self}: expected 403, got {response.status_code} {body}"


def cells(action: str, vias=(SESSION, SCOPED_TOKEN, READ_TOKEN)) -> list:
    """Every role x way of calling, as pytest parameters."""
    return [pytest.param(Cell(action, role, via), id=f"{role}-{via}") for role in ROLES for via in vias]
