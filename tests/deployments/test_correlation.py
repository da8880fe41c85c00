"""Incident correlation: an incident is tied to the production deployment that caused it, explicitly, by the CI
it touches or by impact, only within its release policy's window (the site's for a deployment of no release); a
person corrects the link, audited."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cmdb.choices import RelationshipKind
from deployments import services
from deployments.choices import CorrelationMethod, DeploymentState
from deployments.correlation import deployment_cis, incident_correlation
from deployments.incidents import incident_correlation_correct, incident_open, incident_update
from deployments.models import Deployment, Incident
from rdm_site.exceptions import InvalidInput, NotAllowed
from rdm_site.models import AuditEvent
from releases.models import ReleasePolicy
from tests.cmdb.factories import RelationshipFactory
from tests.deployments.conftest import drive
from tests.deployments.factories import CiFactory
from tests.deployments.governed import Governed
from tests.releases.factories import PackageFactory, PolicyFactory, ReleaseFactory, UnitFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def deployed() -> tuple[Governed, Deployment]:
    """A production deployment of Shop that succeeded just now, on two targets."""
    governed = Governed(targets=2)
    deployment = governed.plan()
    services.deployment_start(deployment=deployment, actor=governed.dm)
    deployment = drive(deployment)
    assert deployment.state == DeploymentState.SUCCEEDED
    return governed, deployment


def opened(**references):
    incident, _ = incident_open(actor=None, title="errors", severity="p3", **references)
    return incident


def test_the_cis_a_deployment_changed_are_its_targets_and_its_units_cis(deployed):
    governed, deployment = deployed
    expected = {target.ci for target in governed.targets} | {governed.world.ci}
    assert set(deployment_cis(deployment)) == expected


def test_an_explicit_reference_is_kept(deployed):
    _, deployment = deployed
    incident = opened(deployment=deployment)
    assert (incident.deployment, incident.correlation) == (deployment, CorrelationMethod.EXPLICIT)


def test_an_incident_on_a_ci_the_deployment_changed_is_tied_to_it_by_ci(deployed):
    governed, deployment = deployed
    incident = opened(ci=governed.targets[1].ci)
    assert (incident.deployment, incident.correlation) == (deployment, CorrelationMethod.CI)
    event = AuditEvent.objects.get(action="incident.open", object_id=str(incident.pk))
    assert f"deployment {deployment}" in event.reason


def test_an_incident_downstream_of_a_changed_ci_is_tied_to_it_by_impact(deployed):
    # given a checkout CI that depends on a target the deployment changed, and one that depends on nothing
    governed, deployment = deployed
    checkout = CiFactory(name="checkout", environment=governed.world.production)
    RelationshipFactory(source=checkout, target=governed.targets[0].ci, kind=RelationshipKind.DEPENDS_ON)
    unrelated = CiFactory(name="billing", environment=governed.world.production)

    # then an incident on checkout is tied to the deployment by impact, one on billing to nothing
    incident = opened(ci=checkout)
    assert (incident.deployment, incident.correlation) == (deployment, CorrelationMethod.IMPACT)
    alone = opened(ci=unrelated)
    assert (alone.deployment, alone.correlation) == (None, CorrelationMethod.NONE)


def test_correlation_costs_the_same_queries_however_many_deployments_are_in_the_window(deployed):
    # given an incident downstream of the deployment's CIs, correlated with one deployment in the window
    governed, deployment = deployed
    checkout = CiFactory(name="checkout", environment=governed.world.production)
    RelationshipFactory(source=checkout, target=governed.targets[0].ci, kind=RelationshipKind.DEPENDS_ON)
    incident = Incident(title="errors", severity="p3", ci=checkout, opened_at=timezone.now())
    with CaptureQueriesContext(connection) as one:
        assert incident_correlation(incident) == (deployment, CorrelationMethod.IMPACT)

    # when five more deployments of the release finished in the window before it
    for minutes in range(1, 6):
        Deployment.objects.create(
            service=deployment.service,
            environment=deployment.environment,
            process=deployment.process,
            package=deployment.package,
            version=deployment.version,
            model=deployment.model,
            state=DeploymentState.SUCCEEDED,
            started_at=deployment.started_at - timedelta(minutes=minutes),
            finished_at=deployment.finished_at - timedelta(minutes=minutes),
        )

    # then the answer is the same, for the same number of queries
    with CaptureQueriesContext(connection) as six:
        assert incident_correlation(incident) == (deployment, CorrelationMethod.IMPACT)
    assert len(six) == len(one)


def finished_hours_ago(deployment: Deployment, hours: int) -> None:
    Deployment.objects.filter(pk=deployment.pk).update(finished_at=timezone.now() - timedelta(hours=hours))


def test_the_window_is_the_release_policys(deployed):
    # given a deployment that finished 80 hours ago under a policy with a 96-hour window
    governed, deployment = deployed
    finished_hours_ago(deployment, 80)
    policy = governed.world.policy
    policy.incident_correlation_hours = 96
    policy.save(update_fields=["incident_correlation_hours"])

    # then an incident on a CI it changed is tied to it
    incident = opened(ci=governed.targets[0].ci)
    assert (incident.deployment, incident.correlation) == (deployment, CorrelationMethod.CI)

    # and under a 72-hour window it is outside
    policy.incident_correlation_hours = 72
    policy.save(update_fields=["incident_correlation_hours"])
    incident = opened(ci=governed.targets[1].ci)
    assert (incident.deployment, incident.correlation) == (None, CorrelationMethod.NONE)


def test_each_candidate_is_held_to_its_own_policys_window(deployed):
    # given the deployment under a 96-hour policy, 80 hours ago, and a newer one of a hotfix release under a
    # 24-hour policy, 30 hours ago, that changed the same CI
    governed, deployment = deployed
    finished_hours_ago(deployment, 80)
    ReleasePolicy.objects.filter(pk=governed.world.policy.pk).update(incident_correlation_hours=96)
    shop_ci = governed.targets[0].ci
    hotfix = ReleaseFactory(policy=PolicyFactory(incident_correlation_hours=24), services=[governed.world.service])
    UnitFactory(release=hotfix).configuration_items.set([shop_ci])
    newer = Deployment.objects.create(
        service=deployment.service,
        environment=deployment.environment,
        process=deployment.process,
        package=PackageFactory(release=hotfix),
        model=deployment.model,
        state=DeploymentState.SUCCEEDED,
        started_at=timezone.now() - timedelta(hours=31),
        finished_at=timezone.now() - timedelta(hours=30),
    )

    # then the newer one is past its own window, and the incident is tied to the older one
    assert opened(ci=shop_ci).deployment == deployment

    # when the newer one finished inside its window, it is the newest candidate and wins
    finished_hours_ago(newer, 20)
    incident = opened(ci=shop_ci)
    assert (incident.deployment, incident.correlation) == (newer, CorrelationMethod.CI)


def test_a_deployment_of_no_release_takes_the_site_window(deployed):
    # given a deployment of a bare version (no package, so no policy) that finished 80 hours ago, while the
    # only policy's window is 96 hours
    governed, deployment = deployed
    Deployment.objects.filter(pk=deployment.pk).update(package=None, version="5.2.1")
    finished_hours_ago(deployment, 80)
    ReleasePolicy.objects.filter(pk=governed.world.policy.pk).update(incident_correlation_hours=96)

    # then the site's 72 hours hold, not the policy's 96
    assert opened(ci=governed.targets[0].ci).correlation == CorrelationMethod.NONE
    with override_settings(RDM_INCIDENT_CORRELATION_HOURS=96):
        incident = opened(ci=governed.targets[1].ci)
    assert (incident.deployment, incident.correlation) == (deployment, CorrelationMethod.CI)


def test_an_incident_naming_another_release_is_not_tied_to_this_deployment(deployed):
    governed, _ = deployed
    other = ReleaseFactory(policy=governed.world.policy, services=[governed.world.service])
    incident = opened(ci=governed.targets[0].ci, release=other)
    assert incident.correlation == CorrelationMethod.NONE


def test_a_person_corrects_the_link_with_a_reason_and_it_is_audited(deployed):
    governed, deployment = deployed
    incident = opened(ci=governed.targets[0].ci)
    people = governed.world.people

    with pytest.raises(InvalidInput):
        incident_correlation_correct(incident=incident, actor=people.dm, deployment=None, reason="")
    with pytest.raises(NotAllowed):
        incident_correlation_correct(incident=incident, actor=people.viewer, deployment=None, reason="not ours")

    incident_correlation_correct(incident=incident, actor=people.dm, deployment=None, reason="a disk filled up")
    incident.refresh_from_db()
    assert (incident.deployment, incident.correlation) == (None, CorrelationMethod.CORRECTED)
    event = AuditEvent.objects.get(action="incident.correct_correlation", object_id=str(incident.pk))
    assert event.actor_id == people.dm.pk
    assert event.reason == "a disk filled up"
    assert event.changes == {
        "deployment": [str(deployment), None],
        "correlation": [CorrelationMethod.CI, CorrelationMethod.CORRECTED],
    }


def test_naming_the_deployment_in_an_update_makes_the_link_explicit(deployed):
    governed, deployment = deployed
    incident = opened(ci=CiFactory(name="elsewhere", environment=governed.world.production))
    incident_update(incident=incident, actor=governed.dm, data={"deployment": deployment})
    incident.refresh_from_db()
    assert (incident.deployment, incident.correlation) == (deployment, CorrelationMethod.EXPLICIT)
