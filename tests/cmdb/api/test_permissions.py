"""Who may do what with the CMDB API: DESIGN.md's matrix (``tests/api/design_matrix.py``) cell by cell, for each
role signed in, with a token scoped for the action and with a read-only token.

Service Owners edit CIs of services they own: each write is tried on the caller's own service (the matrix's
answer) and, for every role, on a service somebody else owns (only the roles that edit any CI may).
"""

import pytest

from cmdb import services
from cmdb.choices import CiState
from rdm_site.roles import ROLE_PERMISSIONS, Role
from tests.api.design_matrix import ROLES
from tests.api.matrix import READ_TOKEN, SCOPED_TOKEN, SESSION, Cell, cells
from tests.cmdb.factories import ConfigurationItemFactory, EnvironmentFactory, RelationshipFactory, ServiceFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

EDIT_CIS = "edit CIs, relationships; import CIs"


def caller(cell: Cell):
    user = UserFactory(roles=[cell.role])
    return user, cell.client(user)


# --- reads: every role, every way of calling ------------------------------------------------------------


READS = [
    "environments/",
    "environments/{environment}/",
    "services/",
    "services/{service}/",
    "cis/",
    "cis/{ci}/",
    "cis/{ci}/impact/",
    "cis/{ci}/relationships/",
    "relationships/",
    "relationships/{relationship}/",
    "baselines/",
    "baselines/{baseline}/",
    "baselines/{baseline}/diff/{baseline}/",
    "version-matrix/",
]


@pytest.mark.parametrize("cell", cells("read"), ids=str)
def test_every_role_reads_the_cmdb(cell):
    relationship = RelationshipFactory()
    ci = relationship.source
    baseline = services.baseline_take(name="b", actor=None, service=ci.service)
    ids = {
        "environment": ci.environment_id,
        "service": ci.service_id,
        "ci": ci.pk,
        "relationship": relationship.pk,
        "baseline": baseline.pk,
    }
    _, client = caller(cell)
    for path in READS:
        response = client.get("/api/v1/" + path.format(**ids))
        cell.assert_answer(response)
        assert response.status_code == 200, path


def test_reading_needs_signing_in():
    from rest_framework.test import APIClient

    response = APIClient().get("/api/v1/cis/")
    assert response.status_code in (401, 403)
    assert APIClient().get("/api/v1/cis/", HTTP_AUTHORIZATION="Bearer rdm_unknown").status_code == 401


# --- CIs, relationships, import: on the caller's own service ------------------------------------------------


def own_ci(user, state=CiState.LIVE):
    return ConfigurationItemFactory(service=ServiceFactory(owner=user), state=state)


@pytest.mark.parametrize("cell", cells(EDIT_CIS), ids=str)
def test_create_a_ci(cell):
    user, client = caller(cell)
    service = ServiceFactory(owner=user)
    body = {"name": "new", "ci_type": "server", "environment": EnvironmentFactory().pk, "service": service.pk}
    cell.assert_answer(client.post("/api/v1/cis/", body, format="json"))


@pytest.mark.parametrize("cell", cells(EDIT_CIS), ids=str)
def test_edit_a_ci(cell):
    user, client = caller(cell)
    ci = own_ci(user)
    cell.assert_answer(client.patch(f"/api/v1/cis/{ci.pk}/", {"version": "9.9"}, format="json"))


@pytest.mark.parametrize(
    ("state", "transition"),
    [
        (CiState.PLANNED, "build"),
        (CiState.IN_BUILD, "go-live"),
        (CiState.LIVE, "start-maintenance"),
        (CiState.MAINTENANCE, "end-maintenance"),
        (CiState.LIVE, "retire"),
    ],
)
@pytest.mark.parametrize("cell", cells(EDIT_CIS), ids=str)
def test_move_a_ci_through_its_lifecycle(cell, state, transition):
    user, client = caller(cell)
    ci = own_ci(user, state)
    response = client.post(f"/api/v1/cis/{ci.pk}/{transition}/", {"reason": "matrix"}, format="json")
    cell.assert_answer(response)
    if cell.allowed:
        assert response.status_code == 200


@pytest.mark.parametrize("cell", cells(EDIT_CIS), ids=str)
def test_add_a_relationship(cell):
    user, client = caller(cell)
    body = {"source": own_ci(user).pk, "kind": "depends_on", "target": ConfigurationItemFactory().pk}
    cell.assert_answer(client.post("/api/v1/relationships/", body, format="json"))


@pytest.mark.parametrize("cell", cells(EDIT_CIS), ids=str)
def test_remove_a_relationship(cell):
    user, client = caller(cell)
    relationship = RelationshipFactory(source=own_ci(user))
    cell.assert_answer(client.delete(f"/api/v1/relationships/{relationship.pk}/"))


@pytest.mark.parametrize("cell", cells(EDIT_CIS), ids=str)
def test_import_cis(cell):
    user, client = caller(cell)
    service, environment = ServiceFactory(owner=user), EnvironmentFactory()
    rows = [{"name": "imported", "environment": environment.name, "type": "server", "service": service.name}]
    cell.assert_answer(client.post("/api/v1/cis/import/", rows, format="json"))


# --- the same writes on a service somebody else owns: Service Owners are refused ---------------------------


EDITORS_OF_ANY_CI = {role for role, granted in ROLE_PERMISSIONS.items() if "cmdb.edit_any_configurationitem" in granted}


def others_ci(state=CiState.LIVE):
    return ConfigurationItemFactory(service=ServiceFactory(), state=state)


def writes_on_others_service(client):
    """Each CI write, on a CI or service the caller does not own; the answers, by write."""
    environment, service = EnvironmentFactory(), ServiceFactory()
    ci, planned = others_ci(), others_ci(CiState.PLANNED)
    new_ci = {"name": "new", "ci_type": "server", "environment": environment.pk, "service": service.pk}
    new_relationship = {"source": ci.pk, "kind": "depends_on", "target": planned.pk}
    return {
        "create": client.post("/api/v1/cis/", new_ci, format="json"),
        "edit": client.patch(f"/api/v1/cis/{ci.pk}/", {"version": "9.9"}, format="json"),
        "transition": client.post(f"/api/v1/cis/{planned.pk}/build/", {}, format="json"),
        "add relationship": client.post("/api/v1/relationships/", new_relationship, format="json"),
        "remove relationship": client.delete(f"/api/v1/relationships/{RelationshipFactory(source=ci).pk}/"),
    }


@pytest.mark.parametrize("cell", cells(EDIT_CIS), ids=str)
def test_writes_on_a_service_somebody_else_owns(cell):
    _, client = caller(cell)
    may = cell.role in EDITORS_OF_ANY_CI and cell.via != READ_TOKEN
    for write, response in writes_on_others_service(client).items():
        if may:
            assert response.status_code in (200, 201, 204), f"{cell} {write}: {response.status_code}"
        else:
            assert response.status_code == 403, f"{cell} {write}: {response.status_code}"
        if cell.role == Role.SERVICE_OWNER and cell.via != READ_TOKEN:
            assert "may only edit CIs of services they own" in response.json()["detail"], write


@pytest.mark.parametrize("via", [SESSION, SCOPED_TOKEN])
def test_a_service_owner_importing_into_somebody_elses_service_is_told_row_by_row(via):
    """The import checks every row before refusing (nothing imported), so ownership is one of its row problems."""
    client = Cell(EDIT_CIS, Role.SERVICE_OWNER, via).client(UserFactory(roles=[Role.SERVICE_OWNER]))
    rows = [{"name": "x", "environment": EnvironmentFactory().name, "type": "server", "service": ServiceFactory().name}]
    response = client.post("/api/v1/cis/import/", rows, format="json")
    assert response.status_code == 400
    assert "may only edit CIs of services they own" in response.json()["errors"][0]["reason"]


# --- baselines: whoever the role table lets take one (the Release Manager too: before and after a release) ---


BASELINE_TAKERS = {role for role, granted in ROLE_PERMISSIONS.items() if "cmdb.add_baseline" in granted}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("via", [SESSION, SCOPED_TOKEN, READ_TOKEN])
def test_take_a_baseline(role, via):
    client = Cell(EDIT_CIS, role, via).client(UserFactory(roles=[role]))
    response = client.post("/api/v1/baselines/", {"name": "b", "service": ServiceFactory().pk}, format="json")
    expected = 201 if role in BASELINE_TAKERS and via != READ_TOKEN else 403
    assert response.status_code == expected, response.content


# --- environments and services: administrators only -----------------------------------------------------


def layout_writes(client) -> dict:
    environment, service = EnvironmentFactory(), ServiceFactory()
    owner = service.owner.username
    return {
        "add environment": client.post(
            "/api/v1/environments/", {"name": "dr", "tier": "production", "promotion_order": 999}, format="json"
        ),
        "edit environment": client.patch(
            f"/api/v1/environments/{environment.pk}/", {"description": "x"}, format="json"
        ),
        "add service": client.post("/api/v1/services/", {"name": "Billing", "owner": owner}, format="json"),
        "edit service": client.patch(f"/api/v1/services/{service.pk}/", {"description": "x"}, format="json"),
    }


@pytest.mark.parametrize("cell", cells(EDIT_CIS), ids=str)
def test_no_role_lays_out_environments_or_services(cell):
    _, client = caller(cell)
    for write, response in layout_writes(client).items():
        assert response.status_code == 403, f"{cell} {write}: {response.status_code}"


@pytest.mark.parametrize(("via", "expected"), [(SESSION, 2), (SCOPED_TOKEN, 2), (READ_TOKEN, 403)])
def test_an_administrator_lays_them_out_and_a_read_only_token_of_theirs_may_not(via, expected):
    client = Cell(EDIT_CIS, Role.VIEWER, via).client(UserFactory(is_superuser=True))
    for write, response in layout_writes(client).items():
        if expected == 403:
            assert response.status_code == 403, f"{via} {write}"
        else:
            assert response.status_code // 100 == expected, f"{via} {write}: {response.content}"
