"""Fixtures of the CMDB API tests: signed-in clients and a small CMDB to work on (people: tests/cmdb/conftest.py)."""

import pytest
from rest_framework.test import APIClient

from cmdb.choices import CiState, EnvironmentTier
from tests.cmdb.factories import ConfigurationItemFactory, EnvironmentFactory, ServiceFactory


@pytest.fixture
def signed_in(db):
    """``signed_in(user)``: an API client with the user's browser session."""

    def client_for(user) -> APIClient:
        client = APIClient()
        client.force_login(user)
        return client

    return client_for


@pytest.fixture
def production(db):
    return EnvironmentFactory(name="production", slug="production", tier=EnvironmentTier.PRODUCTION)


@pytest.fixture
def orders(sophie):
    """The Orders service, owned by sophie (a Service Owner, from tests/cmdb/conftest.py)."""
    return ServiceFactory(name="Orders", slug="orders", owner=sophie)


@pytest.fixture
def orders_api(production, orders):
    return ConfigurationItemFactory(name="orders-api", environment=production, service=orders, version="2.3.0")


@pytest.fixture
def planned_ci(production, orders):
    return ConfigurationItemFactory(name="orders-worker", environment=production, service=orders, state=CiState.PLANNED)
