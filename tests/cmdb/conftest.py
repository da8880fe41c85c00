"""Fixtures of the CMDB tests: people in each role, and a record of the audit events services write."""

import pytest

from rdm_site.roles import Role
from tests.factories import UserFactory


@pytest.fixture
def audit_calls(monkeypatch):
    """Every ``audit_record`` call the CMDB services make, as keyword dicts (the trail itself is another app's)."""
    calls = []
    monkeypatch.setattr("cmdb.services.audit_record", lambda **event: calls.append(event))
    return calls


@pytest.fixture
def sophie(db):
    return UserFactory(username="sophie", roles=[Role.SERVICE_OWNER])


@pytest.fixture
def oscar(db):
    return UserFactory(username="oscar", roles=[Role.SERVICE_OWNER])


@pytest.fixture
def deployment_manager(db):
    return UserFactory(username="dan", roles=[Role.DEPLOYMENT_MANAGER])


@pytest.fixture
def viewer(db):
    return UserFactory(username="vera", roles=[Role.VIEWER])


@pytest.fixture
def administrator(db):
    return UserFactory(username="ada", is_superuser=True, is_staff=True)
