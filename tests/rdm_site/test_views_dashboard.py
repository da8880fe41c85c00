"""The dashboard: what each part shows, what waits for whom, and a cost that does not grow with the data."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cmdb.choices import CiState, CiType
from deployments.choices import DeploymentModel, DeploymentState, ElsState, IncidentSeverity, StepKind, StepState
from deployments.models import Deployment, EarlyLifeSupport, Incident, Step, Wave
from rdm_site.dashboard import PIPELINE_STATES, SIDE_STATES
from rdm_site.roles import Role
from releases.choices import ChangeType, PackageState, ReleaseState, ReviewState
from releases.models import PostImplementationReview
from tests.deployments.factories import ProcessFactory
from tests.factories import UserFactory
from tests.releases.factories import (
    ChangeFactory,
    ConfigurationItemFactory,
    EnvironmentFactory,
    FreezeFactory,
    PackageFactory,
    PolicyFactory,
    ReleaseFactory,
    ServiceFactory,
    WindowFactory,
)


@pytest.fixture
def people(db):
    return {
        "rita": UserFactory(username="rita", roles=[Role.RELEASE_MANAGER]),
        "manager": UserFactory(username="other-manager", roles=[Role.RELEASE_MANAGER]),
        "builder": UserFactory(username="builder", roles=[Role.BUILD_ENGINEER]),
        "dan": UserFactory(username="dan", roles=[Role.DEPLOYMENT_MANAGER]),
        "carl": UserFactory(username="carl", roles=[Role.CHANGE_APPROVER]),
        "vera": UserFactory(username="vera", roles=[Role.VIEWER]),
    }


@pytest.fixture
def landscape(db, people):
    environment = EnvironmentFactory(name="production")
    service = ServiceFactory(name="Shop", owner=UserFactory(username="owner", roles=[Role.SERVICE_OWNER]))
    return {"environment": environment, "service": service, "policy": PolicyFactory(), "process": None}


def _deployment(landscape, state: str, **fields) -> Deployment:
    process = landscape["process"] or ProcessFactory(service=landscape["service"])
    landscape["process"] = process
    return Deployment.objects.create(
        service=landscape["service"],
        environment=landscape["environment"],
        process=process,
        model=DeploymentModel.BIG_BANG,
        version="2.0",
        state=state,
        **fields,
    )


def grow(landscape, people, n: int) -> None:
    """``n`` of everything the dashboard reads, in every state it tells apart."""
    now = timezone.now()
    common = {"policy": landscape["policy"], "services": [landscape["service"]], "release_manager": people["manager"]}
    for state in (*PIPELINE_STATES, *SIDE_STATES):
        ReleaseFactory.create_batch(n, state=state, review_started_at=now, **common)
    for _ in range(n):
        PackageFactory(state=PackageState.BUILT, built_by=people["builder"], release=ReleaseFactory(**common))
    ChangeFactory.create_batch(n, state="submitted", requested_by=people["manager"], services=[landscape["service"]])
    for change_type in (ChangeType.NORMAL, ChangeType.EMERGENCY):
        ChangeFactory.create_batch(n, state="assessed", change_type=change_type, requested_by=people["manager"])
    owner = landscape["service"].owner
    for state, submitted_by in ((ReviewState.DUE, None), (ReviewState.SUBMITTED, owner)):
        for release in ReleaseFactory.create_batch(n, state=ReleaseState.IN_REVIEW, **common):
            PostImplementationReview.objects.create(
                release=release,
                service=landscape["service"],
                owner=owner,
                state=state,
                due_on=now.date() - timedelta(days=1),
                submitted_by=submitted_by,
            )
    WindowFactory.create_batch(n, environments=[landscape["environment"]])
    FreezeFactory.create_batch(n, start=now + timedelta(days=3))
    for _ in range(n):
        running = _deployment(landscape, DeploymentState.RUNNING, started_at=now)
        wave = Wave.objects.create(deployment=running, index=0, name="all")
        for position, (state, executor) in enumerate(
            [(StepState.SUCCEEDED, "simulator"), (StepState.RUNNING, "manual_intervention"), (StepState.PENDING, "x")]
        ):
            Step.objects.create(
                deployment=running,
                wave=wave,
                kind=StepKind.DEPLOY,
                position=position,
                name=f"step {position}",
                executor=executor,
                state=state,
                idempotency_key=f"{running.pk}-{position}",
            )
        _deployment(landscape, DeploymentState.SCHEDULED, scheduled_for=now + timedelta(days=2))
        succeeded = _deployment(landscape, DeploymentState.SUCCEEDED, finished_at=now - timedelta(days=1))
        EarlyLifeSupport.objects.create(
            deployment=succeeded,
            release=ReleaseFactory(state=ReleaseState.EARLY_LIFE_SUPPORT, **common),
            state=ElsState.ACTIVE,
            exit_criteria={"max_open_p1_p2": 0},
            started_at=now - timedelta(days=1),
            planned_end=now + timedelta(days=6),
        )
        Incident.objects.create(title="Checkout errors", severity=IncidentSeverity.P1, deployment=succeeded)
        ConfigurationItemFactory(
            ci_type=CiType.APPLICATION,
            state=CiState.LIVE,
            version="2.0",
            environment=landscape["environment"],
            service=ServiceFactory(),
        )


def _queries(client, user) -> int:
    client.force_login(user)
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/").status_code == 200
    return len(captured)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "who",
    [
        "rita",
        "dan",
        "carl",
        "vera",
        "owner",
    ],
)
def test_the_dashboard_costs_the_same_queries_with_ten_times_the_data(client, people, landscape, who):
    user = landscape["service"].owner if who == "owner" else people[who]
    grow(landscape, people, 2)
    small = _queries(client, user)
    grow(landscape, people, 18)
    assert _queries(client, user) == small


@pytest.mark.django_db
def test_the_pipeline_counts_releases_per_state_and_shows_a_few_cards(client, people, landscape):
    grow(landscape, people, 5)
    client.force_login(people["vera"])
    page = client.get("/")
    columns = {column.state: column for column in page.context["pipeline"].columns}
    assert list(columns) == list(PIPELINE_STATES)
    assert columns[ReleaseState.SUBMITTED].count == 5
    assert len(columns[ReleaseState.SUBMITTED].cards) == 3
    assert columns[ReleaseState.DRAFT].count == 10  # five more carry the built packages
    assert {column.state: column.count for column in page.context["pipeline"].side} == dict.fromkeys(SIDE_STATES, 5)
    html = page.content.decode()
    assert 'id="active-deployments"' in html
    rows = page.context["els_rows"]
    assert len(rows) == 5
    assert all(row.exit_blocked and row.open_serious == 1 for row in rows)  # each has its P1 open
    assert "P1/P2 open" in html
    assert "What runs where" in html


@pytest.mark.django_db
def test_needs_my_action_follows_each_rule_table(client, people, landscape):
    grow(landscape, people, 1)
    client.force_login(people["rita"])
    needs = client.get("/").context["needs"]
    assert len(needs.release_decisions) == 1  # submitted by someone else, approvable by a Release Manager
    assert len(needs.packages_to_validate) == 1
    assert needs.interventions == []  # a Release Manager runs no deployment

    client.force_login(people["builder"])
    needs = client.get("/").context["needs"]
    assert needs.packages_to_validate == []  # nobody validates their own build
    assert needs.release_decisions == []

    client.force_login(people["carl"])
    page = client.get("/")
    needs = page.context["needs"]
    assert len(needs.change_decisions) == 1  # the normal one: emergency changes are the emergency CAB's
    assert len(needs.changes_to_assess) == 1
    assert 'data-change="' in page.content.decode()

    client.force_login(people["dan"])
    needs = client.get("/").context["needs"]
    assert len(needs.interventions) == 1
    assert len(needs.packages_to_validate) == 1

    client.force_login(landscape["service"].owner)
    page = client.get("/")
    needs = page.context["needs"]
    assert len(needs.reviews_to_write) == 1  # the due one of their service; the submitted one waits for others
    assert needs.reviews_to_decide == []
    assert "overdue" in page.content.decode()

    client.force_login(people["rita"])
    needs = client.get("/").context["needs"]
    assert needs.reviews_to_write == []  # a Release Manager accepts reviews and writes none
    assert len(needs.reviews_to_decide) == 1

    client.force_login(people["vera"])
    page = client.get("/")
    assert page.context["needs"].total == 0
    assert "Nothing waits for you." in page.content.decode()
    assert "/do/" not in page.content.decode()


@pytest.mark.django_db
def test_the_schedule_shows_each_item_in_its_own_zone_and_in_utc(client, people, landscape):
    WindowFactory(name="Thursday nights", time_zone="America/New_York", environments=[landscape["environment"]])
    client.force_login(people["vera"])
    page = client.get("/")
    windows = [item for day in page.context["schedule"].days for item in day.items if item.kind == "window"]
    assert len(windows) == 8  # Tuesdays and Thursdays of four weeks
    assert all(item.local_start.hour == 22 for item in windows)
    html = page.content.decode()
    assert "America/New_York" in html
    assert "data-viewer-zone" in html
    assert 'data-local datetime="' in html or "data-local>" in html


@pytest.mark.django_db
def test_the_dashboard_needs_sign_in(client):
    assert client.get("/").status_code == 302
