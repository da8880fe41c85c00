"""The release governance rows of DESIGN.md's "Who may do what", asserted for every role through the API: signed in,
with a token whose scopes cover the action, and with a read-only token (``tests.api.matrix``).

Each test sets up the qualifying case (a Service Owner owns the release's service; a Build/CI Engineer raises
a standard change from a template), so "allowed" means the service accepted the caller.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from rdm_site.roles import Role
from releases import services
from releases.choices import ChangeType, ReleaseState
from releases.selectors import release_current_package
from tests.api.matrix import cells
from tests.factories import UserFactory
from tests.releases.conftest import SHA
from tests.releases.factories import ChangeFactory, ChangeTemplateFactory, FreezeFactory

pytestmark = pytest.mark.django_db

COLLECTIONS = (
    "policies",
    "windows",
    "freezes",
    "freeze-overrides",
    "releases",
    "packages",
    "test-runs",
    "changes",
    "change-templates",
    "approvals",
)


def caller(cell, world):
    """The cell's person: a fresh member of its role, owning the world's service when a Service Owner."""
    user = UserFactory(username="matrix", roles=[cell.role])
    if cell.role == Role.SERVICE_OWNER:
        world.service.owner = user
        world.service.save(update_fields=["owner"])
    return cell.client(user)


def assessed_change(world, change_type: str):
    return ChangeFactory(
        change_type=change_type,
        state="assessed",
        requested_by=world.people.rm,
        services=[world.service],
        submitted_at=timezone.now(),
    )


@pytest.mark.parametrize("cell", cells("read"), ids=str)
def test_read_every_collection(cell, world):
    client = caller(cell, world)
    for collection in COLLECTIONS:
        cell.assert_answer(client.get(f"/api/v1/{collection}/"))
    cell.assert_answer(client.get(f"/api/v1/releases/{world.release.pk}/"))
    cell.assert_answer(client.get(f"/api/v1/releases/{world.release.pk}/checklist/"))


@pytest.mark.parametrize("cell", cells("edit release plans, policies, windows, freezes"), ids=str)
def test_edit_release_plans_policies_windows_freezes(cell, world):
    client = caller(cell, world)
    cell.assert_answer(client.post("/api/v1/policies/", {"name": "major", "release_type": "major"}, format="json"))
    start = timezone.now() + timedelta(days=5)
    freeze = {"name": "f", "start": start.isoformat(), "end": (start + timedelta(days=1)).isoformat(), "reason": "r"}
    cell.assert_answer(client.post("/api/v1/freezes/", freeze, format="json"))
    edit = {"description": "Edited through the API."}
    cell.assert_answer(client.patch(f"/api/v1/releases/{world.release.pk}/", edit, format="json"))


@pytest.mark.parametrize("cell", cells("submit or cancel a release"), ids=str)
def test_submit_or_cancel_a_release(cell, world):
    services.release_plan(release=world.release, actor=world.people.rm)
    client = caller(cell, world)
    cell.assert_answer(client.post(f"/api/v1/releases/{world.release.pk}/submit/"))
    cell.assert_answer(client.post(f"/api/v1/releases/{world.release.pk}/cancel/", {"reason": "Not now."}))


@pytest.mark.parametrize("cell", cells("approve or reject a release plan"), ids=str)
def test_approve_a_release_plan(cell, world):
    services.release_plan(release=world.release, actor=world.people.rm)
    services.release_submit(release=world.release, actor=world.people.rm)
    response = caller(cell, world).post(f"/api/v1/releases/{world.release.pk}/approve/", {"reason": "Go."})
    cell.assert_answer(response)
    world.reload()
    assert (world.release.state == ReleaseState.APPROVED) == cell.allowed


@pytest.mark.parametrize("cell", cells("register packages, units, artifacts, test results"), ids=str)
def test_register_packages_and_test_results(cell, world):
    services.package_register(release=world.release, actor=world.people.ci, version="b0")
    client = caller(cell, world)
    artifact = {"name": "shop.tar.gz", "uri": "https://artifacts.example/shop.tar.gz", "sha256": SHA}
    registration = {"release": world.release.pk, "version": "b1", "artifacts": [artifact]}
    cell.assert_answer(client.post("/api/v1/packages/", registration, format="json"))
    current = release_current_package(world.release)
    results = {"suites": [{"name": "regression", "passed": 3}]}
    cell.assert_answer(client.post(f"/api/v1/packages/{current.pk}/test-results/", results, format="json"))


@pytest.mark.parametrize("cell", cells("validate or reject a package"), ids=str)
def test_validate_a_package(cell, world):
    package = services.package_register(
        release=world.release,
        actor=world.people.ci,
        version="b1",
        artifacts=[{"name": "a", "uri": "https://artifacts.example/a", "sha256": SHA}],
    )
    services.package_mark_built(package=package, actor=world.people.ci)
    cell.assert_answer(caller(cell, world).post(f"/api/v1/packages/{package.pk}/validate/"))


@pytest.mark.parametrize("cell", cells("create a change record"), ids=str)
def test_create_a_standard_change_from_a_template(cell, world):
    template = ChangeTemplateFactory(services=[world.service], approved_by=world.people.ca)
    start = timezone.now() + timedelta(days=2)
    schedule = {"planned_start": start.isoformat(), "planned_end": (start + timedelta(hours=1)).isoformat()}
    response = caller(cell, world).post(f"/api/v1/change-templates/{template.pk}/create-change/", schedule)
    cell.assert_answer(response)


@pytest.mark.parametrize("cell", cells("approve or reject a normal change"), ids=str)
def test_approve_a_normal_change(cell, world):
    change = assessed_change(world, ChangeType.NORMAL)
    cell.assert_answer(caller(cell, world).post(f"/api/v1/changes/{change.pk}/approve/", {"reason": "Go."}))


@pytest.mark.parametrize("cell", cells("approve an emergency change, override a freeze"), ids=str)
def test_approve_an_emergency_change_and_override_a_freeze(cell, world):
    client = caller(cell, world)
    change = assessed_change(world, ChangeType.EMERGENCY)
    cell.assert_answer(client.post(f"/api/v1/changes/{change.pk}/approve/", {"reason": "Outage."}))
    FreezeFactory(start=timezone.now(), end=timezone.now() + timedelta(days=5), services=[world.service])
    other = assessed_change(world, ChangeType.EMERGENCY)
    cell.assert_answer(client.post(f"/api/v1/changes/{other.pk}/override-freeze/", {"reason": "Outage."}))
