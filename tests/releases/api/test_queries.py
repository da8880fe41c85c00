"""Every release governance list costs the same number of queries for 3 rows as for 30: the selectors load
what the list shows eagerly (no N+1).
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from releases.choices import Decision
from releases.models import Approval, FreezeOverride
from tests.factories import UserFactory
from tests.releases.api.conftest import session
from tests.releases.factories import (
    ArtifactFactory,
    ChangeFactory,
    ChangeTemplateFactory,
    FreezeFactory,
    PackageFactory,
    PolicyFactory,
    ReleaseFactory,
    TestRunFactory,
    WindowFactory,
)

pytestmark = pytest.mark.django_db


def _release(world):
    release = ReleaseFactory(policy=world.policy, services=[world.service, world.other_service])
    PackageFactory(release=release)
    ChangeFactory(release=release, services=[world.service])
    Approval.objects.create(approver=UserFactory(), release=release, decision=Decision.APPROVED)
    return release


def _package(world):
    package = PackageFactory(release=ReleaseFactory(policy=world.policy))
    ArtifactFactory.create_batch(2, package=package)
    return package


def _approval(world):
    return Approval.objects.create(approver=UserFactory(), change=ChangeFactory(), decision=Decision.REJECTED)


def _override(world):
    start = timezone.now()
    return FreezeOverride.objects.create(
        change=ChangeFactory(services=[world.service]),
        freeze=FreezeFactory(services=[world.service]),
        reason="Outage.",
        granted_by=world.people.ea,
        valid_from=start,
        valid_until=start + timedelta(hours=1),
    )


ROWS = {
    "policies": lambda world: PolicyFactory(),
    "windows": lambda world: WindowFactory(environments=[world.production], services=[world.service]),
    "freezes": lambda world: FreezeFactory(environments=[world.production], services=[world.service]),
    "freeze-overrides": _override,
    "releases": _release,
    "packages": _package,
    "test-runs": lambda world: TestRunFactory(package=PackageFactory(release=ReleaseFactory(policy=world.policy))),
    "changes": lambda world: ChangeFactory(services=[world.service], configuration_items=[world.ci]),
    "change-templates": lambda world: ChangeTemplateFactory(services=[world.service, world.other_service]),
    "approvals": _approval,
}


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    return len(captured)


@pytest.mark.parametrize("collection", ROWS)
def test_a_list_costs_the_same_queries_for_3_and_for_30_rows(world, collection):
    client, url = session(world.people.viewer), f"/api/v1/{collection}/?page_size=100"
    for _ in range(3):
        ROWS[collection](world)
    few = _queries(client, url)
    for _ in range(27):
        ROWS[collection](world)
    assert client.get(url).json()["count"] >= 30
    assert _queries(client, url) == few
