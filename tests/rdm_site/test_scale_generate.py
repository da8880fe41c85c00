import dataclasses
from collections import Counter

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from bench.scale_data import DatabaseNotEmpty, ScaleSizes, scale_generate
from cmdb.models import ConfigurationItem, Relationship
from cmdb.selectors import ci_impact
from deployments.models import Deployment, DeploymentLock, Incident, Step, StepLog
from rdm_site.audit import audit_chain_verify
from rdm_site.demo import DEMO_PASSWORD
from rdm_site.models import AuditEvent
from releases.models import ChangeRecord, Release

# Small, but with one deployment far larger than the others, as at full scale.
SIZES = dataclasses.replace(ScaleSizes().scaled(0.005), big_deployment_steps=100)

# Rows whose lifecycle timestamps run backwards, or lie in the future; every query must find none.
OUT_OF_ORDER = {
    "releases": """SELECT count(*) FROM releases_release WHERE submitted_at < created OR approved_at < submitted_at
        OR ready_at < approved_at OR deployment_started_at < ready_at OR deployed_at < deployment_started_at
        OR els_started_at < deployed_at OR review_started_at < els_started_at OR ended_at < created
        OR greatest(created, submitted_at, approved_at, deployment_started_at, deployed_at, ended_at) > now()""",
    "changes": """SELECT count(*) FROM releases_changerecord WHERE submitted_at < created OR assessed_at < submitted_at
        OR decided_at < assessed_at OR started_at < decided_at OR ended_at < started_at OR reviewed_at < ended_at
        OR closed_at < ended_at OR greatest(created, submitted_at, decided_at, started_at, closed_at) > now()""",
    "deployments": """SELECT count(*) FROM deployments_deployment
        WHERE started_at < created OR finished_at < started_at OR finished_at > now()""",
    "steps": """SELECT count(*) FROM deployments_step s JOIN deployments_deployment d ON d.id = s.deployment_id
        WHERE s.started_at < d.started_at OR s.finished_at < s.started_at OR s.finished_at > d.finished_at""",
    "incidents": """SELECT count(*) FROM deployments_incident WHERE acknowledged_at < opened_at
        OR resolved_at < acknowledged_at OR closed_at < resolved_at OR opened_at > now()""",
    "releases by id": """SELECT count(*) FROM (SELECT created < lag(created) OVER (ORDER BY id) AS back
        FROM releases_release) rows WHERE back""",
    "deployments by id": """SELECT count(*) FROM (SELECT created < lag(created) OVER (ORDER BY id) AS back
        FROM deployments_deployment) rows WHERE back""",
    "audit events by id": """SELECT count(*) FROM (SELECT occurred_at < lag(occurred_at) OVER (ORDER BY id) AS back
        FROM rdm_site_auditevent) rows WHERE back""",
}


@pytest.fixture(scope="module")
def generated(django_db_setup, django_db_blocker):
    """One small year for every check here (generating takes a while), removed after the last one."""
    with django_db_blocker.unblock():
        yield scale_generate(SIZES, report=lambda line: None)
        call_command("flush", interactive=False, verbosity=0)


pytestmark = pytest.mark.django_db


def test_every_table_gets_its_size(generated):
    # given a year generated at a small scale
    expected = {
        ConfigurationItem: SIZES.cis,
        Relationship: SIZES.relationships,
        Release: SIZES.releases,
        ChangeRecord: SIZES.changes,
        Deployment: SIZES.deployments,
        Step: SIZES.steps,
        StepLog: SIZES.step_logs,
        Incident: SIZES.incidents,
        AuditEvent: SIZES.audit_events,
    }
    # then each large table holds exactly its size, as reported
    assert {model: model.objects.count() for model in expected} == expected
    assert {model: generated[model._meta.db_table] for model in expected} == expected
    # and the big deployment has its steps
    biggest = Counter(Step.objects.values_list("deployment_id", flat=True)).most_common(1)[0][1]
    assert biggest == SIZES.big_deployment_steps


def test_states_are_a_realistic_mix(generated):
    releases = Counter(Release.objects.values_list("state", flat=True))
    deployments = Counter(Deployment.objects.values_list("state", flat=True))
    # most releases are closed, and some are in each of many other states
    assert releases.most_common(1)[0][0] == "closed"
    assert releases["closed"] > SIZES.releases / 2
    assert len(releases) >= 10, releases
    # most deployments succeeded; some failed, rolled back or were aborted; a few are running, each holding its lock
    assert deployments["succeeded"] > SIZES.deployments * 0.8
    assert min(deployments["failed"], deployments["rolled_back"], deployments["aborted"]) > 0, deployments
    assert 1 <= deployments["running"] <= SIZES.running_deployments
    assert DeploymentLock.objects.count() == deployments["running"]


def test_times_follow_each_lifecycle_and_rise_with_ids(generated):
    with connection.cursor() as cursor:
        found = {}
        for name, sql in OUT_OF_ORDER.items():
            cursor.execute(sql)
            found[name] = cursor.fetchone()[0]
    assert found == dict.fromkeys(OUT_OF_ORDER, 0)


def test_audit_chain_is_valid(generated):
    report = audit_chain_verify()
    assert (report.ok, report.events) == (True, SIZES.audit_events), report.problem


@pytest.mark.real_password_hasher  # the year's users were made with the production hasher
def test_the_hub_has_its_downstream_and_users_sign_in(generated):
    # the core network's impact reaches exactly the CIs of its tree
    impact = ci_impact(ConfigurationItem.objects.get(name="core-network"))
    assert len(impact.cis) == SIZES.hub_downstream
    # a demo user and a generated user of every role sign in with the demo password
    for username in ["rita.release", User.objects.filter(username__startswith="scale.").last().username]:
        assert Client().login(username=username, password=DEMO_PASSWORD), username


def test_refuses_a_database_that_is_not_empty(generated):
    # given a database holding a year already
    before = (User.objects.count(), Release.objects.count(), AuditEvent.objects.count())
    # when another is generated into it, then it refuses and writes nothing
    with pytest.raises(DatabaseNotEmpty):
        scale_generate(SIZES, report=lambda line: None)
    with pytest.raises(CommandError, match="already holds data"):
        call_command("scale_generate", "--scale", "0.001")
    assert (User.objects.count(), Release.objects.count(), AuditEvent.objects.count()) == before
