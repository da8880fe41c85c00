"""The answers of the release governance collections, filled with real records, match the published schema
(the contract tests run on an empty database, where lists are empty and details are 404).
"""

import pytest
from schemathesis import checks

from rdm_site.scopes import Scope
from rdm_site.tokens import token_create
from releases import services
from tests.api.contract import published_schema
from tests.releases.conftest import green_release

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def schema():
    return published_schema()


def test_lists_and_details_with_records_match_the_schema(world, schema):
    release, change = green_release(world)
    services.freeze_create(
        actor=world.people.rm,
        data={"name": "f", "start": change.planned_start, "end": change.planned_end, "reason": "Peak."},
    )
    services.freeze_override(change=change, actor=world.people.ea, reason="Outage.")
    _, raw = token_create(actor=world.people.rm, name="schema", scopes=[Scope.READ])
    headers = {"Authorization": f"Bearer {raw}"}
    package = release.packages.get()
    checked = 0
    for collection, record in [
        ("policies", world.policy.pk),
        ("windows", None),
        ("freezes", None),
        ("freeze-overrides", None),
        ("releases", release.pk),
        ("packages", package.pk),
        ("test-runs", package.test_runs.first().pk),
        ("changes", change.pk),
        ("change-templates", None),
        ("approvals", release.approvals.first().pk),
    ]:
        for path, parameters in [(f"/api/v1/{collection}/", {}), (f"/api/v1/{collection}/{{id}}/", {"id": record})]:
            if "id" in parameters and parameters["id"] is None:
                continue
            case = schema[path]["GET"].Case(path_parameters=parameters)
            response = case.call(headers=headers)
            assert response.status_code == 200, (path, response.content[:300])
            case.validate_response(response, checks=[checks.response_schema_conformance])
            checked += 1
    for path in ("/api/v1/releases/{id}/checklist/", "/api/v1/changes/{id}/conflicts/"):
        case = schema[path]["GET"].Case(path_parameters={"id": release.pk if "releases" in path else change.pk})
        response = case.call(headers=headers)
        case.validate_response(response, checks=[checks.response_schema_conformance])
        checked += 1
    assert checked == 18
