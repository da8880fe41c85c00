"""The demo deployments load on the demo CMDB, twice to the same data, with one finished rollout; and the demo of
life after go-live: a release in ELS with an open P2, a review due, a lesson turned knowledge, DORA history."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from cmdb.models import Service
from deployments.choices import CorrelationMethod, ElsState, IncidentState
from deployments.els import els_board
from deployments.metrics import DoraScope, Key, dora_keys
from deployments.models import (
    Deployment,
    DeploymentProcess,
    EarlyLifeSupport,
    Incident,
    Step,
    Target,
    Variable,
)
from rdm_site.models import AuditEvent, Notification
from releases.choices import KnowledgeKind, ReleaseState, ReviewState
from releases.models import FreezePeriod, KnowledgeArticle, PostImplementationReview, Release, ReleasePackage

LOADED = (
    DeploymentProcess,
    Target,
    Variable,
    Deployment,
    Step,
    Release,
    ReleasePackage,
    EarlyLifeSupport,
    Incident,
    PostImplementationReview,
    KnowledgeArticle,
    AuditEvent,
    Notification,
)


def counts() -> list[int]:
    return [model.objects.count() for model in LOADED]


@pytest.fixture
def demo(demo_users):
    call_command("demo_load")


@pytest.mark.django_db
def test_the_demo_deployments_load_twice_to_the_same_data(demo):
    first = counts()
    call_command("demo_load")
    assert counts() == first

    # every demo service has a simulated process and targets in every environment where its CIs are live
    for service in Service.objects.all():
        assert service.deployment_processes.filter(name="simulated rollout").exists()
        environments = set(Target.objects.filter(ci__service=service).values_list("ci__environment__name", flat=True))
        assert environments == {"test", "staging", "production"}, "dev's applications are still in build"
    # secrets are stored encrypted
    token = Variable.objects.filter(name="DeployToken").first()
    assert token.is_secret
    assert "token" not in token.value
    # and one finished demo rollout
    finished = Deployment.objects.get(version="1.8.1")
    assert (finished.state, finished.environment.name) == ("succeeded", "test")


@pytest.mark.django_db
def test_the_demo_has_a_release_in_early_life_support_with_an_open_p2_found_by_its_ci(demo):
    # the ELS board leads with the running period of Payments 2.3, whose owner is on duty
    period = els_board().first()
    assert (str(period.release), period.state) == ("Payments 2.3", ElsState.ACTIVE)
    assert [user.username for user in period.staff.all()] == ["oscar.owner"]
    assert period.exit_criteria
    assert period.planned_end > timezone.now()
    assert (period.open_p1, period.open_p2) == (0, 1)
    assert period.release.state == ReleaseState.EARLY_LIFE_SUPPORT
    # the P2 named only the CI: RDM tied it to the production deployment that changed it
    incident = Incident.objects.get(state=IncidentState.OPEN)
    assert (incident.severity, incident.correlation) == ("p2", CorrelationMethod.CI)
    assert incident.deployment == period.deployment
    # and the staff heard of it
    assert Notification.objects.filter(recipient__username="oscar.owner", object_id=str(incident.pk)).exists()


@pytest.mark.django_db
def test_the_demo_has_a_review_due_for_the_service_owner_and_a_lesson_in_the_knowledge_base(demo):
    # Customer Portal 1.8 left ELS after a resolved P3: its review is due for its owner, pre-filled
    due = PostImplementationReview.objects.get(state=ReviewState.DUE)
    assert (str(due.release), due.owner.username) == ("Customer Portal 1.8", "sophie.owner")
    assert due.release.state == ReleaseState.IN_REVIEW
    assert due.timeline
    assert "Invoice PDFs slow" in str(due.incidents)
    assert due.release.els_periods.get().state == ElsState.EXITED
    # Search 2.7's review was accepted: the release closed and its lesson became a knowledge article
    lesson = KnowledgeArticle.objects.get(kind=KnowledgeKind.LESSON_LEARNED)
    assert lesson.review.state == ReviewState.ACCEPTED
    assert (str(lesson.release), lesson.release.state) == ("Search 2.7", ReleaseState.CLOSED)
    assert lesson.title == "Load search synonyms with the release, not by hand"


@pytest.mark.django_db
def test_the_demo_history_gives_the_dora_page_figures_and_trends(demo):
    today = timezone.localdate()
    last_90, before = dora_keys(
        DoraScope.of_days(today - timedelta(days=89), today),
        DoraScope.of_days(today - timedelta(days=179), today - timedelta(days=90)),
    )
    for keys in (last_90, before):
        assert keys.deployments > 10
        for key in Key:
            assert keys.value(key), key
    assert last_90.change_failure_rate < before.change_failure_rate, "the team fails less often"
    assert last_90.lead_time_median_hours < before.lead_time_median_hours, "and delivers faster"
    # the history is consistent: the first commit before the rollout, which started before it finished
    history = Deployment.objects.filter(outcome__startswith="Demo history").select_related("package")
    assert history.count() > 80
    assert all(d.package.first_commit_at < d.started_at < d.finished_at for d in history)


@pytest.mark.django_db
def test_the_pages_after_go_live_show_the_demo(demo):
    client = Client()
    client.force_login(Release.objects.get(name="Payments", version="2.3").services.get().owner)
    for url, shown in [
        ("/", "Payments 2.3"),
        ("/els/", "ELS #"),
        ("/incidents/", "Card payment latency above 2 s"),
        ("/reviews/", "Customer Portal 1.8"),
        ("/knowledge/", "Load search synonyms"),
        ("/reports/dora/", "production deployment(s)"),
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert shown in response.content.decode(), url


@pytest.mark.django_db
def test_the_demo_goes_live_during_a_freeze_under_an_emergency_approvers_override(demo_users):
    # given a freeze in force now on every service
    now = timezone.now()
    FreezePeriod.objects.create(
        name="Board meeting", start=now - timedelta(hours=1), end=now + timedelta(days=2), reason="Results day."
    )

    call_command("demo_load")

    # then the three releases still went live, each under a standard change with an override
    for name, version in [("Payments", "2.3"), ("Customer Portal", "1.8"), ("Search", "2.7")]:
        release = Release.objects.get(name=name, version=version)
        assert release.deployed_at is not None
        change = release.changes.get()
        assert change.freeze_overrides.get().granted_by.username == "emma.emergency"
