"""The Early Life Support pages, through Django's test client: the board (running periods first, each criterion,
time left, open incidents by severity, the actions each person may take) at a cost in queries that does not grow
with the periods; a period's page with its refusals, its extension form, the rollback offer while a P1 is open,
and the exit that moves the release to review."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from deployments import els
from deployments.choices import DeploymentState, ElsState
from deployments.incidents import incident_open, incident_resolve
from deployments.models import Deployment, EarlyLifeSupport
from rdm_site.models import AuditEvent
from releases.choices import ReleaseState
from tests.deployments.governed import Governed
from tests.deployments.test_els import days_pass, in_els
from tests.releases.factories import PackageFactory

pytestmark = pytest.mark.django_db

BOARD = reverse("deployments:els_board")


def transition(period: EarlyLifeSupport, action: str) -> str:
    return reverse("deployments:els_transition", args=[period.pk, action])


def extend_url(period: EarlyLifeSupport) -> str:
    return reverse("deployments:els_extend", args=[period.pk])


def another_period(governed: Governed, *, start: bool = True, finished_days_ago: float = 0) -> EarlyLifeSupport:
    """One more period of a Shop release whose production deployment succeeded (the deployment row made here)."""
    package = PackageFactory(release__policy=governed.world.policy, release__services=[governed.world.service])
    deployment = Deployment.objects.create(
        service=governed.world.service,
        environment=governed.world.production,
        process=governed.process,
        package=package,
        state=DeploymentState.SUCCEEDED,
        finished_at=timezone.now() - timedelta(days=finished_days_ago),
    )
    period = els.els_open(deployment=deployment)
    return els.els_start(els=period, actor=governed.dm) if start else period


def cards_in_order(page: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-els="(\d+)"', page)]


def card(page: str, period: EarlyLifeSupport) -> str:
    """The board's card of ``period``."""
    start = page.index(f'data-els="{period.pk}"')
    end = page.find("data-els=", start + 10)
    return page[start : end if end > 0 else len(page)]


def actions_in(html: str) -> set[str]:
    return set(re.findall(r'data-action="(\w+)"', html))


def messages_of(answer) -> list[str]:
    return [str(message) for message in answer.context["messages"]]


# --- the board --------------------------------------------------------------------------------------------------


def test_the_board_lists_running_periods_first_then_scheduled_and_exited_ones_behind_their_tab(client):
    # given a running period with a P1 against it, a scheduled one, and one that exited
    governed, running = in_els()
    incident_open(actor=None, title="checkout down", severity="p1", deployment=running.deployment)
    scheduled = another_period(governed, start=False)
    exited = days_pass(another_period(governed), governed.world.policy.els_min_duration_days)
    els.els_exit(els=exited, actor=governed.dm)
    client.force_login(governed.world.people.viewer)

    # when the board is read
    page = client.get(BOARD).content.decode()

    # then the running period comes first, the scheduled one next, and the exited one is not there
    assert cards_in_order(page) == [running.pk, scheduled.pk]
    shown = card(page, running)
    assert f'href="{running.get_absolute_url()}"' in shown
    assert f'href="{running.deployment.get_absolute_url()}"' in shown
    assert "Shop in production" in shown
    assert governed.world.people.so.username in shown  # on duty: the owner of the service
    assert '<span data-severity="p1" data-count="1">' in shown
    assert '<span data-severity="p2" data-count="0">' in shown
    assert 'data-criterion="max_open_p1_p2" data-met="false"' in shown
    assert "Open P1/P2 incidents: <strong>1</strong>" in shown
    assert 'data-criterion="min_duration" data-met="false"' in shown
    assert re.search(r"<strong>\d+\xa0days?(, \d+\xa0hours?)?</strong> left", shown)
    assert "not all hold" in shown
    assert "Not started" in card(page, scheduled)

    # and the exited one is behind its tab, alone
    assert cards_in_order(client.get(BOARD, {"state": "exited"}).content.decode()) == [exited.pk]


def test_the_board_marks_an_offered_exit(client):
    governed, period = in_els()
    period = days_pass(period, governed.world.policy.els_min_duration_days)
    client.force_login(governed.dm)
    assert "data-exit-offered" not in client.get(BOARD).content.decode()

    assert els.els_exit_offer(els=period)

    shown = card(client.get(BOARD).content.decode(), period)
    assert "data-exit-offered" in shown
    assert "all hold" in shown
    assert "not all hold" not in shown


def test_the_board_offers_each_person_the_actions_they_may_take(client):
    governed, period = in_els()
    scheduled = another_period(governed, start=False)
    people = governed.world.people
    expected = {
        people.dm: ({"exit", "extend"}, {"start"}),  # any period
        people.so: ({"exit", "extend"}, {"start"}),  # owns Shop
        people.so_other: (set(), set()),
        people.rm: (set(), set()),
        people.viewer: (set(), set()),
    }
    for user, (on_running, on_scheduled) in expected.items():
        client.force_login(user)
        page = client.get(BOARD).content.decode()
        assert actions_in(card(page, period)) == on_running, user
        assert actions_in(card(page, scheduled)) == on_scheduled, user


def test_the_board_costs_the_same_queries_for_one_period_or_four(client):
    def board_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(BOARD).status_code == 200
        return len(queries)

    governed, period = in_els()
    incident_open(actor=None, title="slow", severity="p3", deployment=period.deployment)
    client.force_login(governed.world.people.so)
    one = board_queries()
    for _ in range(3):
        extra = another_period(governed)
        incident_open(actor=None, title="down", severity="p1", deployment=extra.deployment)
    another_period(governed, start=False)
    assert len(cards_in_order(client.get(BOARD).content.decode())) == 5
    assert board_queries() == one


def test_a_bad_filter_is_said_and_shows_nothing(client):
    governed, _period = in_els()
    client.force_login(governed.dm)
    answer = client.get(BOARD, {"state": "sleeping"})
    assert answer.status_code == 200
    page = answer.content.decode()
    assert cards_in_order(page) == []
    assert "state: Select a valid choice" in page


# --- a period's page ----------------------------------------------------------------------------------------------


def test_a_viewer_reads_a_period_without_a_control_and_a_forged_one_changes_nothing(client):
    governed, period = in_els()
    client.force_login(governed.world.people.viewer)

    page = client.get(period.get_absolute_url()).content.decode()
    assert actions_in(page) == set()
    assert "Not available to you" in page
    assert 'action="' + extend_url(period) + '"' not in page

    assert client.post(transition(period, "exit")).status_code == 403
    assert client.get(extend_url(period)).status_code == 403
    assert client.post(extend_url(period), {"reason": "forged", "new_end": "2099-01-01T00:00"}).status_code == 403
    period.refresh_from_db()
    assert period.state == ElsState.ACTIVE
    assert client.get(reverse("deployments:els_detail", args=[period.pk + 1000])).status_code == 404


def test_the_page_shows_criteria_incidents_with_time_to_restore_staff_and_history(client):
    governed, period = in_els()
    fixed, _ = incident_open(actor=None, title="slow search", severity="p3", deployment=period.deployment)
    incident_resolve(incident=fixed, actor=governed.dm, reason="cache warmed")
    incident_open(actor=None, title="checkout down", severity="p2", deployment=period.deployment)
    client.force_login(governed.world.people.so)

    page = client.get(period.get_absolute_url()).content.decode()

    assert 'data-criterion="max_open_p1_p2" data-met="false"' in page
    assert 'data-criterion="max_incidents" data-met="true"' in page
    assert f"#{fixed.pk} slow search" in page
    assert "0\xa0minutes" in page  # the time to restore of the resolved one
    assert "open for" in page  # the other is not restored
    assert governed.world.people.so.username in page
    assert "els.start" in page  # the history
    assert actions_in(page) == {"exit", "extend"}


def test_exit_is_refused_with_each_unmet_criterion_listed(client):
    governed, period = in_els()
    incident_open(actor=None, title="checkout down", severity="p1", deployment=period.deployment)
    client.force_login(governed.dm)

    answer = client.post(transition(period, "exit"), {"reason": "done"}, follow=True)

    shown = messages_of(answer)
    assert shown[0].endswith("cannot exit")
    assert "open P1/P2 incidents: 1 (limit 0)" in shown
    assert any(text.startswith("minimum duration:") for text in shown)
    period.refresh_from_db()
    assert period.state == ElsState.ACTIVE


def test_a_p1_offers_the_redeployment_of_the_previous_package(client):
    governed, period = in_els()
    client.force_login(governed.dm)
    assert "data-rollback-offer" not in client.get(period.get_absolute_url()).content.decode()

    # when a P1 is opened on the deployment and no earlier package ran there
    incident, _ = incident_open(actor=None, title="checkout down", severity="p1", deployment=period.deployment)
    page = client.get(period.get_absolute_url()).content.decode()
    assert "data-rollback-offer" in page
    assert "nothing to go back to; fix forward" in page

    # given the package that ran before, the Deployment Manager gets the link to go back to it; a viewer is told who
    # can
    previous = PackageFactory(release__policy=governed.world.policy, release__services=[governed.world.service])
    Deployment.objects.create(
        service=period.deployment.service,
        environment=period.deployment.environment,
        process=period.deployment.process,
        package=previous,
        state=DeploymentState.SUCCEEDED,
        finished_at=period.deployment.finished_at - timedelta(days=10),
    )
    page = client.get(period.get_absolute_url()).content.decode()
    link = re.search(r'href="([^"]+)" data-rollback-link', page).group(1).replace("&amp;", "&")
    assert link
    assert link == els.previous_package_redeploy_link(period.deployment)
    client.force_login(governed.world.people.viewer)
    page = client.get(period.get_absolute_url()).content.decode()
    assert "data-rollback-link" not in page
    assert "A Deployment Manager can do it." in page

    # once it is resolved the offer goes
    incident_resolve(incident=incident, actor=governed.dm)
    assert "data-rollback-offer" not in client.get(period.get_absolute_url()).content.decode()


def test_extend_places_each_problem_on_its_field_then_extends_and_the_extension_is_withdrawn(client):
    governed, period = in_els()
    original = period.planned_end
    client.force_login(governed.world.people.so)
    assert client.get(extend_url(period)).status_code == 200

    # an empty form: each field says what it needs
    answer = client.post(extend_url(period), {"reason": "", "new_end": ""})
    assert answer.status_code == 422
    assert set(answer.context["form"].errors) == {"reason", "new_end"}

    # an end earlier than the planned one: the service's refusal is placed on the field, what was typed is kept
    earlier = (original - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    answer = client.post(extend_url(period), {"reason": "a P2 last night", "new_end": earlier})
    assert answer.status_code == 422
    assert answer.context["form"].errors == {"new_end": ["later than the current planned end"]}
    assert (
        'value="a P2 last night"' in answer.content.decode() or "a P2 last night</textarea>" in answer.content.decode()
    )
    period.refresh_from_db()
    assert (period.state, period.planned_end) == (ElsState.ACTIVE, original)

    # a later end: extended, audited, back on the period's page
    later = (original + timedelta(days=2)).replace(second=0, microsecond=0)
    answer = client.post(extend_url(period), {"reason": "a P2 last night", "new_end": later.strftime("%Y-%m-%dT%H:%M")})
    assert answer.status_code == 302
    assert answer.url == period.get_absolute_url()
    period.refresh_from_db()
    assert (period.state, period.planned_end) == (ElsState.EXTENDED, later)
    assert AuditEvent.objects.get(action="els.extend", object_id=str(period.pk)).reason == "a P2 last night"
    assert "withdraw_extension" in actions_in(client.get(period.get_absolute_url()).content.decode())

    # withdrawn: the original end is back
    client.post(transition(period, "withdraw_extension"), {"reason": "false alarm"})
    period.refresh_from_db()
    assert (period.state, period.planned_end) == (ElsState.ACTIVE, original)


def test_extending_an_exited_period_is_refused_with_the_reason(client):
    governed, period = in_els()
    period = days_pass(period, governed.world.policy.els_min_duration_days)
    els.els_exit(els=period, actor=governed.dm)
    client.force_login(governed.dm)

    answer = client.get(extend_url(period), follow=True)

    assert answer.redirect_chain[-1][0] == period.get_absolute_url()
    assert any("exited" in text.lower() for text in messages_of(answer))
    assert actions_in(answer.content.decode()) == set()


def test_exit_when_every_criterion_holds_moves_the_release_to_review(client):
    governed, period = in_els()
    period = days_pass(period, governed.world.policy.els_min_duration_days)
    client.force_login(governed.world.people.so)

    answer = client.post(transition(period, "exit"), {"reason": "quiet for three days"}, follow=True)

    assert any(text.startswith("Exit: done") for text in messages_of(answer))
    period.refresh_from_db()
    assert period.state == ElsState.EXITED
    assert governed.world.reload().state == ReleaseState.IN_REVIEW
    assert "quiet for three days" in answer.content.decode()  # in the history


def test_a_period_page_costs_the_same_queries_with_one_incident_or_four(client):
    def page_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(period.get_absolute_url()).status_code == 200
        return len(queries)

    governed, period = in_els()
    incident_open(actor=None, title="slow", severity="p3", deployment=period.deployment)
    client.force_login(governed.dm)
    one = page_queries()
    for n in range(3):
        incident_open(actor=None, title=f"slow {n}", severity="p4", ci=governed.targets[0].ci)
    assert page_queries() == one
