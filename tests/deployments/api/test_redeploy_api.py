"""Rolling a release back through the API: from the deployment that succeeded, or from "what runs where"."""

import pytest

from deployments.choices import DeploymentState
from tests.deployments.api.conftest import session_client
from tests.deployments.governed import Governed
from tests.deployments.test_redeploy import earlier_success, released
from tests.releases.factories import UnitFactory

pytestmark = pytest.mark.django_db


def test_a_deployment_manager_rolls_a_release_back_and_gets_the_new_deployment():
    governed = Governed()
    earlier = earlier_success(governed)
    deployment = released(governed)
    api = session_client(governed.dm)

    response = api.post(f"/api/v1/deployments/{deployment.pk}/roll-back-release/", {"reason": "P1"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["replaces"], body["package"], body["version"]) == (deployment.pk, earlier.package_id, "1.9")
    assert (body["fast_rollback"], body["state"]) == (True, DeploymentState.QUEUED)
    assert response["ETag"]


def test_from_what_runs_where_an_earlier_package_is_redeployed_with_the_analysis_kept():
    governed = Governed()
    earlier = earlier_success(governed)
    deployment = released(governed)
    world = governed.world

    response = session_client(governed.dm).post(
        "/api/v1/deployments/redeploy/",
        {
            "service": world.service.pk,
            "environment": world.production.pk,
            "package": earlier.package_id,
            "reason": "checkout errors",
            "with_analysis": True,
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    assert (response.json()["replaces"], response.json()["fast_rollback"]) == (deployment.pk, False)


def test_a_rollback_without_a_reason_is_400_and_past_an_irreversible_unit_422():
    governed = Governed()
    earlier_success(governed)
    deployment = released(governed)
    api = session_client(governed.dm)
    url = f"/api/v1/deployments/{deployment.pk}/roll-back-release/"

    assert api.post(url, {}, format="json").status_code == 400
    UnitFactory(release=governed.release, name="drop legacy column", reversible=False)
    refused = api.post(url, {"reason": "P1"}, format="json")
    assert refused.status_code == 422
    assert "drop legacy column" in refused.content.decode()
    assert not deployment.replaced_by.exists()
