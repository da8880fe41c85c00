"""The dashboard: what each part shows, what waits for whom, and a cost that does not grow with the data."""

from datetime import UTC, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cmdb.choices import CiState, CiType
from deployments.choices import DeploymentModel, DeploymentState, ElsState, IncidentSeverity, StepKind, StepState
from deployments.models import Deployment, EarlyLifeSupport, Incident, Step, Wave
from deployments.services import STEP_ACTIONS
from rdm_site import dashboard
from rdm_site.dashboard import NEEDS_SHOWN, PIPELINE_STATES, SIDE_STATES, VERSIONS_SHOWN, interventions_awaiting
from rdm_site.roles import Role
from releases.actions import CHANGE_ACTIONS, PACKAGE_ACTIONS, RELEASE_ACTIONS, REVIEW_ACTIONS
from releases.choices import ChangeType, PackageState, ReleaseState, ReviewState
from releases.models import Approval, ChangeRecord, PostImplementationReview, Release, ReleasePackage
from releases.selectors import (
    changes_awaiting_assessment_by,
    changes_awaiting_decision_by,
    packages_awaiting_validation_by,
    releases_awaiting_decision_by,
    reviews_awaiting_decision_by,
    reviews_to_write_by,
)
from tests.deployments.factories import ProcessFactory
from tests.factories import UserFactory
from tests.releases.factories import (
    ChangeFactory,
    ChangeTemplateFactory,
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
    fields = {"environment": landscape["environment"], **fields}
    return Deployment.objects.create(
        service=landscape["service"], process=process, model=DeploymentModel.BIG_BANG, version="2.0", state=state,
        **fields,
    )  # fmt: skip


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


def test_each_column_shows_the_most_recently_updated_releases_first(client, people, landscape):
    releases = [ReleaseFactory(state=ReleaseState.SUBMITTED) for _ in range(5)]
    now = timezone.now()
    for age, release in zip([3, 1, 4, 0, 2], releases, strict=True):  # minutes since each was updated
        Release.objects.filter(pk=release.pk).update(updated=now - timedelta(minutes=age))
    client.force_login(people["vera"])
    columns = {column.state: column for column in client.get("/").context["pipeline"].columns}
    assert [card.pk for card in columns[ReleaseState.SUBMITTED].cards] == [
        r.pk for r in (releases[3], releases[1], releases[4])
    ]


def test_a_cell_running_many_versions_names_three_and_counts_the_rest(client, people, landscape):
    for n in range(5):
        ConfigurationItemFactory(
            name=f"shop-{n}", service=landscape["service"], environment=landscape["environment"], version=f"1.{n}"
        )
    client.force_login(people["vera"])
    cell = client.get("/running/").content.decode().split('id="what-runs-where"')[1]
    assert [f"<code>1.{n}</code>" in cell for n in range(5)] == [True, True, True, False, False]
    assert "and 2 more" in cell
    assert "mixed" in cell


@pytest.mark.django_db
def test_a_release_plan_is_approved_from_needs_my_action_and_the_answer_is_the_dashboard(client, people, landscape):
    grow(landscape, people, 1)
    rita = people["rita"]
    client.force_login(rita)
    page = client.get("/")
    release = page.context["needs"].release_decisions.items[0]
    url = reverse("releases:release_transition", args=[release.pk, "approve"])
    assert f'action="{url}"' in page.content.decode()
    answer = client.post(url, {"reason": "Fine by the release board.", "next": "/"})
    assert (answer.status_code, answer.url) == (302, "/")
    assert Approval.objects.filter(release=release, approver=rita, reason="Fine by the release board.").exists()
    assert client.get("/").context["needs"].release_decisions.count == 0


@pytest.mark.django_db
def test_needs_my_action_follows_each_rule_table(client, people, landscape):
    grow(landscape, people, 1)
    client.force_login(people["rita"])
    needs = client.get("/").context["needs"]
    assert needs.release_decisions.count == 1  # submitted by someone else, approvable by a Release Manager
    assert needs.packages_to_validate.count == 1
    assert needs.interventions.count == 0  # a Release Manager runs no deployment

    client.force_login(people["builder"])
    needs = client.get("/").context["needs"]
    assert needs.packages_to_validate.count == 0  # nobody validates their own build
    assert needs.release_decisions.count == 0

    client.force_login(people["carl"])
    page = client.get("/")
    needs = page.context["needs"]
    assert needs.change_decisions.count == 1  # the normal one: emergency changes are the emergency CAB's
    assert needs.changes_to_assess.count == 1
    assert 'data-change="' in page.content.decode()

    client.force_login(people["dan"])
    needs = client.get("/").context["needs"]
    assert needs.interventions.count == 1
    assert needs.packages_to_validate.count == 1

    client.force_login(landscape["service"].owner)
    page = client.get("/")
    needs = page.context["needs"]
    assert needs.reviews_to_write.count == 1  # the due one of their service; the submitted one waits for others
    assert needs.reviews_to_decide.count == 0
    assert "overdue" in page.content.decode()

    client.force_login(people["rita"])
    needs = client.get("/").context["needs"]
    assert needs.reviews_to_write.count == 0  # a Release Manager accepts reviews and writes none
    assert needs.reviews_to_decide.count == 1

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
    first = windows[0]
    local, utc = first.local_start, first.start.astimezone(UTC)
    local_end, utc_end = first.local_end, first.end.astimezone(UTC)
    # each time written once in the window's zone, once in UTC for the browser to put in the viewer's zone
    written = (
        f"{local:%a} {local.day} {local:%b} 22:00 \N{EN DASH} {local_end:%a} {local_end.day} {local_end:%b %H:%M}"
        " America/New_York"
    )
    assert written in html
    for moment, at in ((first.start, utc), (first.end, utc_end)):
        assert f'<time datetime="{moment.isoformat()}" data-local>{at:%a} {at.day} {at:%b %H:%M} UTC</time>' in html
    assert "data-viewer-zone" in html


@pytest.mark.django_db
def test_the_dashboard_needs_sign_in(client):
    assert client.get("/").status_code == 302


def _variety(landscape, people) -> None:
    """Records each rule of "Needs my action" tells apart: whose they are, who built, requested or submitted
    them, which roles their policy lists, which services and environments they touch."""
    other_owner = UserFactory(username="other-owner", roles=[Role.SERVICE_OWNER])
    elsewhere = ServiceFactory(name="Elsewhere", owner=other_owner)
    staging = EnvironmentFactory(name="staging", tier="staging")
    owners_only = PolicyFactory(approver_roles=[Role.SERVICE_OWNER])
    common = {"policy": landscape["policy"], "services": [landscape["service"]], "release_manager": people["manager"]}
    submitted = {**common, "state": ReleaseState.SUBMITTED}
    ReleaseFactory(**{**submitted, "release_manager": people["rita"]})
    ReleaseFactory(**submitted, requested_by=people["carl"])
    ReleaseFactory(**{**submitted, "policy": owners_only})
    ReleaseFactory(**{**submitted, "services": [elsewhere]})
    PackageFactory(release=ReleaseFactory(**submitted), state=PackageState.BUILT, built_by=people["rita"])
    PackageFactory(release=ReleaseFactory(**submitted), state=PackageState.SUPERSEDED, built_by=people["rita"])
    for built_by in (people["rita"], people["dan"]):
        PackageFactory(release=ReleaseFactory(**common), state=PackageState.BUILT, built_by=built_by)
    template = ChangeTemplateFactory()
    for change_type in (ChangeType.NORMAL, ChangeType.EMERGENCY, ChangeType.STANDARD):
        kind = {"change_type": change_type, "template": template if change_type == ChangeType.STANDARD else None}
        ChangeFactory(state="assessed", requested_by=people["carl"], **kind)
        ChangeFactory(state="submitted", requested_by=people["dan"], **kind)
    for release, submitted_by in (
        (ReleaseFactory(**{**common, "services": [elsewhere]}), None),
        (None, people["rita"]),
    ):
        PostImplementationReview.objects.create(
            release=release or ReleaseFactory(**common),
            service=landscape["service"],
            owner=other_owner,
            state=ReviewState.SUBMITTED if submitted_by else ReviewState.DUE,
            due_on=timezone.localdate(),
            submitted_by=submitted_by,
        )
    standard = ChangeFactory(state="scheduled", change_type=ChangeType.STANDARD, template=template)
    for environment, change in (
        (landscape["environment"], standard),
        (staging, None),
        (landscape["environment"], None),
    ):
        deployment = _deployment(landscape, DeploymentState.RUNNING, environment=environment, continuous=True)
        deployment.change = change
        deployment.save(update_fields=["change"])
        wave = Wave.objects.create(deployment=deployment, index=0, name="all")
        Step.objects.create(
            deployment=deployment, wave=wave, kind=StepKind.DEPLOY, position=0, name="confirm",
            executor="manual_intervention", state=StepState.RUNNING, idempotency_key=f"{deployment.pk}-0",
        )  # fmt: skip


def _by_the_rule_table(rules: dict, name: str, candidates, user) -> list[int]:
    rule = rules[name]
    return [record.pk for record in candidates if rule.legal(record) and not rule.who_problems(record, user)]


@pytest.mark.django_db
def test_each_waiting_list_agrees_with_its_rule_table_record_by_record(people, landscape):
    """The lists are said in SQL (to be counted there); the rule tables decide the buttons: every user, every
    record, the same answer, in the same order."""
    grow(landscape, people, 1)
    _variety(landscape, people)
    users = [
        *people.values(),
        landscape["service"].owner,
        UserFactory(username="erin", roles=[Role.EMERGENCY_APPROVER]),
        UserFactory(username="all", roles=list(Role)),
    ]
    waiting_steps = Step.objects.filter(
        executor="manual_intervention", state=StepState.RUNNING, manual_answer="", kind=StepKind.DEPLOY
    ).order_by("deadline", "id")
    submitted = Release.objects.filter(state=ReleaseState.SUBMITTED).order_by("planned_start", "id")
    changes = ChangeRecord.objects.order_by("planned_start", "id")
    reviews = PostImplementationReview.objects.order_by("due_on", "id")
    for user in users:
        decided = set(
            Approval.objects.filter(approver=user, withdrawn_at__isnull=True).values_list("release", flat=True)
        )
        expected = {
            "releases": _by_the_rule_table(
                RELEASE_ACTIONS, "approve", [r for r in submitted if r.pk not in decided], user
            ),
            "change decisions": _by_the_rule_table(CHANGE_ACTIONS, "approve", changes.filter(state="assessed"), user),
            "assessments": _by_the_rule_table(CHANGE_ACTIONS, "assess", changes.filter(state="submitted"), user),
            "packages": _by_the_rule_table(
                PACKAGE_ACTIONS, "validate", ReleasePackage.objects.order_by("registered_at", "id"), user
            ),
            "interventions": _by_the_rule_table(STEP_ACTIONS, "answer", waiting_steps, user),
            "reviews to write": _by_the_rule_table(REVIEW_ACTIONS, "update", reviews, user),
            "reviews to decide": _by_the_rule_table(REVIEW_ACTIONS, "accept", reviews, user),
        }
        found = {
            "releases": releases_awaiting_decision_by(user),
            "change decisions": changes_awaiting_decision_by(user),
            "assessments": changes_awaiting_assessment_by(user),
            "packages": packages_awaiting_validation_by(user),
            "interventions": interventions_awaiting(user),
            "reviews to write": reviews_to_write_by(user),
            "reviews to decide": reviews_awaiting_decision_by(user),
        }
        assert {kind: [record.pk for record in rows] for kind, rows in found.items()} == expected, user.username
    # the data tells the rules apart: someone sees each kind, and nobody sees everything of a kind
    assert all(releases_awaiting_decision_by(user).exists() for user in (people["rita"], users[-1]))
    assert interventions_awaiting(people["builder"]).count() not in (0, waiting_steps.count())


@pytest.mark.django_db
def test_needs_my_action_shows_the_first_few_of_each_kind_and_counts_them_all(client, people, landscape):
    grow(landscape, people, NEEDS_SHOWN + 3)
    client.force_login(people["rita"])
    page = client.get("/")
    needs = page.context["needs"]
    releases = list(releases_awaiting_decision_by(people["rita"]))
    assert needs.release_decisions.count == len(releases) == NEEDS_SHOWN + 3
    assert needs.release_decisions.items == releases[:NEEDS_SHOWN]  # the soonest planned first, as before
    assert needs.packages_to_validate.count == NEEDS_SHOWN + 3
    assert len(needs.packages_to_validate.items) == NEEDS_SHOWN
    assert needs.reviews_to_decide.count == NEEDS_SHOWN + 3
    assert needs.total == 3 * (NEEDS_SHOWN + 3)
    html = page.content.decode()
    assert f"{needs.total} waiting" in html
    all_releases = "/releases/?awaiting_my_decision=true"
    assert f'<a href="{all_releases}">All {NEEDS_SHOWN + 3}</a>' in html
    assert "and 3 more" in html  # packages and reviews: no list shows exactly those, so they are counted

    listed = client.get(all_releases)  # the link leads to exactly those releases
    assert {release.pk for release in listed.context["table"].data} == {release.pk for release in releases}

    client.force_login(people["carl"])
    html = client.get("/").content.decode()
    assert f'<a href="/changes/queue/">All {NEEDS_SHOWN + 3}</a>' in html  # the CAB queue lists them all


def test_what_runs_where_shows_the_services_deployed_most_recently_and_links_to_every_one(client, people, landscape):
    services = [ServiceFactory(name=f"Service {n:02}") for n in range(VERSIONS_SHOWN + 3)]
    for service in services:  # each deployed once, Service 00 first, the last one most recently
        ConfigurationItemFactory(service=service, environment=landscape["environment"], version="1.0")
        Deployment.objects.create(
            service=service,
            process=ProcessFactory(service=service),
            environment=landscape["environment"],
            model=DeploymentModel.BIG_BANG,
            state=DeploymentState.SUCCEEDED,
        )
    client.force_login(people["vera"])

    shown = [row.service for row in client.get("/").context["matrix"].rows]
    assert shown == sorted(services[-VERSIONS_SHOWN:], key=lambda service: service.name)
    page = client.get("/running/")
    assert [row.service.name for row in page.context["matrix"].rows] == sorted([*(s.name for s in services), "Shop"])
    assert 'href="/running/"' in client.get("/").content.decode()


def test_what_runs_where_comes_a_page_of_services_at_a_time(client, people, landscape, monkeypatch):
    monkeypatch.setattr(dashboard, "SERVICES_PER_PAGE", 2)
    names = sorted(["Shop", *(ServiceFactory(name=f"Service {n}").name for n in range(3))])
    client.force_login(people["vera"])

    pages = [client.get("/running/", {"page": number}) for number in (1, 2)]

    assert [[row.service.name for row in page.context["matrix"].rows] for page in pages] == [names[:2], names[2:]]
    first, last = (page.content.decode() for page in pages)
    assert 'rel="next" href="?page=2"' in first
    assert "Page 1 of 2 · 4 rows" in first
    assert 'rel="prev" href="?page=1"' in last
    assert client.get("/running/", {"page": "x"}).context["page_obj"].number == 1


def test_what_runs_where_needs_sign_in(client):
    assert client.get("/running/").status_code == 302
