"""``/api/v1/metrics/dora/``: the figures of ``dora_world`` as JSON and CSV, who may read them, and bad input
refused with every problem."""

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone
from schemathesis import checks

from rdm_site.roles import Role
from rdm_site.scopes import Scope
from rdm_site.tokens import token_create
from tests.api.contract import published_schema
from tests.deployments.api.conftest import session_client, token_client
from tests.deployments.dora_world import dora_world
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/metrics/dora/"
MARCH = {"from": "2025-03-01", "to": "2025-03-31"}


@pytest.fixture
def viewer():
    return UserFactory(username="vera", roles=[Role.VIEWER])


def test_a_viewer_reads_the_figures_of_a_month(viewer):
    world = dora_world()

    answer = session_client(viewer).get(URL, {**MARCH, "period": "month"})

    assert answer.status_code == 200
    data = answer.json()
    assert (data["from"], data["to"], data["previous_from"], data["previous_to"]) == (
        "2025-03-01",
        "2025-03-31",
        "2025-01-29",
        "2025-02-28",
    )
    assert (data["service"], data["environment"], data["period"]) == (None, None, "month")
    keys = {figure["key"]: figure for figure in data["keys"]}
    assert keys["change_failure_rate"] == {
        "key": "change_failure_rate",
        "label": "Change failure rate",
        "value": 0.6,
        "level": "low",
        "previous": 0.5,
        "trend": "worse",
    }
    assert (keys["lead_time"]["value"], keys["lead_time"]["level"]) == (27, "high")
    assert (data["current"]["deployments"], data["current"]["failed_deployments"]) == (10, 6)
    assert data["itil"]["releases_deployed"] == 8
    assert [(point["starts"], point["ends"], point["deployments"]) for point in data["series"]] == [
        ("2025-03-01", "2025-03-31", 10)
    ]

    shop = session_client(viewer).get(URL, {**MARCH, "service": world.shop.pk}).json()
    assert (shop["service"], shop["current"]["deployments"]) == (world.shop.pk, 6)


def test_the_figures_as_csv(viewer):
    world = dora_world()

    answer = session_client(viewer).get(URL, {**MARCH, "service": world.shop.pk, "format": "csv"})

    assert answer.status_code == 200
    assert answer["Content-Type"] == "text/csv; charset=utf-8"
    assert answer["Content-Disposition"] == 'attachment; filename="rdm-dora-shop-production-2025-03-01-2025-03-31.csv"'
    rows = list(csv.reader(io.StringIO(answer.content.decode())))
    assert rows[0] == ["from", "to", "figure", "value", "unit", "level", "trend"]
    # Shop: 3 of 6 failed in March, D0 of P0 and D0 before; restored in 12 h (I4), 4 h before (I3)
    assert ["2025-03-01", "2025-03-31", "change_failure_rate", "0.5", "ratio", "low", "same"] in rows
    assert ["2025-01-29", "2025-02-28", "change_failure_rate", "0.5", "ratio", "", ""] in rows
    assert ["2025-03-01", "2025-03-31", "time_to_restore", "12.0", "hours (median)", "high", "worse"] in rows
    assert ["2025-03-01", "2025-03-31", "releases_deployed", "5", "", "", ""] in rows
    assert ["2025-03-03", "2025-03-09", "deployments", "2", "", "", ""] in rows  # D1, H1
    assert ["2025-03-03", "2025-03-09", "lead_time_median_hours", "18.0", "", "", ""] in rows  # (30 + 6) / 2


def test_by_default_the_last_90_days_of_production(viewer):
    data = session_client(viewer).get(URL).json()

    today = timezone.now().date()
    assert (data["from"], data["to"]) == (str(today - timedelta(days=89)), str(today))
    assert data["current"]["deployments"] == 0


def test_a_read_token_reads_them_and_someone_without_a_role_may_not(viewer):
    assert token_client(viewer, "read").get(URL).status_code == 200

    answer = session_client(UserFactory(username="nobody")).get(URL)
    assert answer.status_code == 403
    assert answer["Content-Type"] == "application/problem+json"

    assert session_client(UserFactory(username="nobody-csv")).get(URL, {"format": "csv"}).status_code == 403


@pytest.mark.parametrize(
    ("query", "field", "problem"),
    [
        ({"from": "2025-13-01"}, "from", "Date has wrong format"),
        ({"to": "yesterday"}, "to", "Date has wrong format"),
        ({"from": "2025-04-01", "to": "2025-03-01"}, "from", "on or before the last"),
        ({"from": "2019-01-01", "to": "2025-01-01"}, "to", "At most 1830 days"),
        ({"from": "1999-12-31"}, "from", "from 2000-01-01 to 2999-12-31"),
        ({"period": "year"}, "period", "not a valid choice"),
        ({"service": "999999"}, "service", "Invalid pk"),
        ({"environment": "production"}, "environment", "Incorrect type"),
    ],
)
def test_bad_input_is_refused_with_the_problem(viewer, query, field, problem):
    answer = session_client(viewer).get(URL, query)

    assert answer.status_code == 400
    assert answer["Content-Type"] == "application/problem+json"
    assert problem in " ".join(answer.json()["errors"][field])


def test_bad_input_asking_for_csv_gets_the_problem_in_json(viewer):
    answer = session_client(viewer).get(URL, {"format": "csv", "period": "decade"})

    assert answer.status_code == 400
    assert "period" in answer.json()["errors"]


@pytest.mark.django_db(transaction=True)
def test_the_figures_match_the_published_schema(viewer):
    dora_world()
    _, raw = token_create(actor=viewer, name="schema", scopes=[Scope.READ])
    operation = published_schema()[URL]["GET"]

    for answer_format in ("json", "csv"):
        case = operation.Case(query={**MARCH, "format": answer_format})
        response = case.call(headers={"Authorization": f"Bearer {raw}"})
        assert response.status_code == 200
        case.validate_response(response, checks=[checks.response_schema_conformance])
