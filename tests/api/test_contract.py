"""Every operation of the published schema, fed generated input by schemathesis as a token that may do
everything: no input makes the server fail (no 5xx), and every answer matches what the schema documents."""

import pytest
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis import checks

from rdm_site.scopes import Scope
from rdm_site.tokens import token_create
from tests.api.contract import EXAMPLES, REQUESTS, published_schema
from tests.factories import UserFactory

schema = published_schema()


@pytest.fixture
def requests_in_this_transaction():
    """As Django's test client does: a request must not close the connection holding the test's transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def token(db, requests_in_this_transaction):
    root = UserFactory(username="contract.root", is_staff=True, is_superuser=True)
    _, raw = token_create(actor=root, name="contract", scopes=list(Scope.values))
    return raw


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_input_makes_the_api_fail_or_break_its_contract(case, token):
    response = case.call(headers={"Authorization": f"Bearer {token}"})
    REQUESTS["sent"] += 1
    REQUESTS["operations"].add(f"{case.method} {case.path}")
    REQUESTS["server_errors"] += response.status_code >= 500
    case.validate_response(response, checks=[checks.not_a_server_error, checks.response_schema_conformance])
