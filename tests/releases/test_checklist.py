"""The go/no-go checklist: each gate from its records, with evidence, and what each tier requires."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cmdb.choices import EnvironmentTier
from releases import services
from releases.checklist import checklist_evaluate
from releases.choices import ALL_GATES, ChangeType, GateCode
from tests.releases.conftest import add_unit, approve_plan, green_release, remaining_gates, validated_package
from tests.releases.factories import ChangeTemplateFactory, UnitFactory

pytestmark = pytest.mark.django_db


def test_a_fresh_release_shows_every_gate_and_only_els_is_met_by_policy_defaults(world):
    checklist = checklist_evaluate(world.release, EnvironmentTier.PRODUCTION)
    assert [gate.code for gate in checklist.gates] == list(ALL_GATES)
    assert all(gate.required for gate in checklist.gates)
    assert [gate.code for gate in checklist.unmet] == [code for code in ALL_GATES if code != GateCode.ELS_SCHEDULED]
    assert not checklist.green


def test_a_green_release_shows_who_or_what_satisfied_each_gate(world):
    release, _ = green_release(world)
    checklist = checklist_evaluate(release, EnvironmentTier.PRODUCTION)
    assert checklist.green
    statuses = {gate.code: gate.status for gate in checklist.gates}
    assert statuses[GateCode.PLAN_APPROVED] == "1 of 1 approvals (so)"
    assert statuses[GateCode.PACKAGE_VALIDATED] == "build b1 validated by dm"
    assert statuses[GateCode.ROLLBACK_READY] == "documented and rehearsed by dm"
    assert statuses[GateCode.STAKEHOLDERS_NOTIFIED] == "2 stakeholder(s) notified"
    assert statuses[GateCode.BACKUPS_VERIFIED] == "posted by ci via tool backup-bot, verified by dm"
    assert statuses[GateCode.ELS_SCHEDULED].startswith("staff so; exit when max_incidents ≤ 3, max_open_p1_p2 ≤ 0")
    for gate in checklist.gates:
        assert gate.evidence, gate.code
    rehearsal = checklist.gate(GateCode.ROLLBACK_READY).evidence[-1]
    assert (rehearsal.who, rehearsal.link) == ("dm", "https://wiki.example/rehearsal")
    assert rehearsal.when is not None


def test_lower_tiers_require_fewer_gates(world):
    # given the policy's defaults: staging needs a validated package and passing tests, development nothing
    approve_plan(world)
    package = validated_package(world)
    services.test_run_record(package=package, actor=world.people.ci, suite="regression", failed_major=1)
    staging = checklist_evaluate(world.release, EnvironmentTier.STAGING)
    assert [gate.code for gate in staging.gates if gate.required] == ["package_validated", "tests_passed"]
    assert [gate.code for gate in staging.unmet] == ["tests_passed"]
    assert checklist_evaluate(world.release, EnvironmentTier.DEVELOPMENT).green
    # and a policy may ask even less of staging
    world.policy.gates_required = {**world.policy.gates_required, "staging": ["package_validated"]}
    world.policy.save()
    world.reload()
    assert checklist_evaluate(world.release, EnvironmentTier.STAGING).green
    assert not checklist_evaluate(world.release, EnvironmentTier.PRODUCTION).green


def test_the_tests_gate_reads_the_latest_run_of_every_required_suite(world):
    p = world.people
    world.policy.required_test_suites = ["regression", "security"]
    world.policy.save()
    package = services.package_register(release=world.release, actor=p.ci, version="b1")
    now = timezone.now()

    def gate():
        return checklist_evaluate(world.release, EnvironmentTier.PRODUCTION).gate(GateCode.TESTS_PASSED)

    services.test_run_record(package=package, actor=p.ci, suite="regression", failed_critical=1, run_at=now)
    assert gate().status == (
        "latest 'regression' run failed 1 critical and 0 major test(s); suite 'security' has not run on build b1"
    )
    # a later passing run of each suite (minor failures allowed) satisfies it
    later = now + timedelta(minutes=5)
    services.test_run_record(package=package, actor=p.ci, suite="regression", passed=9, run_at=later)
    services.test_run_record(package=package, actor=p.ci, suite="security", failed_minor=3, run_at=later)
    assert gate().satisfied
    # while a run recorded late but run earlier does not replace the latest
    services.test_run_record(package=package, actor=p.ci, suite="regression", failed_major=2, run_at=now)
    assert gate().satisfied
    services.test_run_record(package=package, actor=p.ci, suite="security", failed_major=1, run_at=later + timedelta(1))
    assert not gate().satisfied


def test_without_required_suites_every_suite_that_ran_counts_and_one_must_have(world):
    world.policy.required_test_suites = []
    world.policy.save()
    package = services.package_register(release=world.release, actor=world.people.ci, version="b1")
    gate = checklist_evaluate(world.release, EnvironmentTier.PRODUCTION).gate(GateCode.TESTS_PASSED)
    assert gate.status == "no test run recorded for build b1"
    services.test_run_record(package=package, actor=world.people.ci, suite="smoke", passed=3)
    assert checklist_evaluate(world.release, EnvironmentTier.PRODUCTION).gate(GateCode.TESTS_PASSED).satisfied


def test_a_standard_change_template_pre_approval_counts_for_the_plan(world):
    p = world.people
    template = ChangeTemplateFactory(services=[world.service], approved_by=p.ca)
    change = services.change_create(
        actor=p.ci,
        change_type=ChangeType.STANDARD,
        template=template,
        planned_start=timezone.now() + timedelta(hours=1),
        planned_end=timezone.now() + timedelta(hours=2),
        release=world.release,
    )
    services.change_submit(change=change, actor=p.ci)
    gate = checklist_evaluate(world.release, EnvironmentTier.PRODUCTION).gate(GateCode.PLAN_APPROVED)
    assert gate.satisfied
    assert gate.evidence[-1].who == "ca"
    assert f"template {template.name!r}" in gate.status


def test_a_rejection_leaves_the_plan_gate_unmet_with_the_reason(world):
    services.release_plan(release=world.release, actor=world.people.rm)
    services.release_submit(release=world.release, actor=world.people.rm)
    services.release_reject(release=world.release, actor=world.people.so, reason="too risky")
    gate = checklist_evaluate(world.release, EnvironmentTier.PRODUCTION).gate(GateCode.PLAN_APPROVED)
    assert (gate.satisfied, gate.status) == (False, "rejected by so (too risky)")


def test_backup_evidence_counts_once_verified(world):
    p = world.people
    evidence = services.gate_evidence_record(release=world.release, actor=p.dm, note="snapshot 42")
    gate = checklist_evaluate(world.release, EnvironmentTier.PRODUCTION).gate(GateCode.BACKUPS_VERIFIED)
    assert gate.status == "backup evidence posted but not yet verified"
    with pytest.raises(Exception, match="they recorded it"):
        services.gate_evidence_verify(evidence=evidence, actor=p.dm)
    services.gate_evidence_verify(evidence=evidence, actor=p.dm2)
    assert checklist_evaluate(world.release, EnvironmentTier.PRODUCTION).gate(GateCode.BACKUPS_VERIFIED).satisfied


def test_stakeholders_added_after_the_notice_must_be_notified_too(world):
    services.stakeholders_notify(release=world.release, actor=world.people.rm)
    assert checklist_evaluate(world.release, "production").gate(GateCode.STAKEHOLDERS_NOTIFIED).satisfied
    world.service.stakeholders.add(world.people.dm)
    gate = checklist_evaluate(world.release, "production").gate(GateCode.STAKEHOLDERS_NOTIFIED)
    assert (gate.satisfied, gate.status) == (False, "not yet notified: dm")


def test_sacm_needs_every_unit_to_name_its_cis_and_a_pre_release_baseline(world):
    add_unit(world)
    UnitFactory(release=world.release, name="schema")
    gate = checklist_evaluate(world.release, "production").gate(GateCode.SACM_READY)
    assert gate.status == "unit(s) naming no CI: schema; no pre-release baseline taken"


def test_rewritten_rollback_steps_need_a_new_rehearsal(world):
    remaining_gates(world)
    assert checklist_evaluate(world.release, "production").gate(GateCode.ROLLBACK_READY).satisfied
    services.rollback_plan_write(release=world.release, actor=world.people.rm, steps="New steps")
    gate = checklist_evaluate(world.release, "production").gate(GateCode.ROLLBACK_READY)
    assert gate.status == "steps documented but never rehearsed"


def test_the_release_els_plan_overrides_the_policy_defaults(world):
    world.release.els_staff.set([world.people.dm])
    world.release.els_exit_criteria = {"max_incidents": 0}
    world.release.save()
    gate = checklist_evaluate(world.release, "production").gate(GateCode.ELS_SCHEDULED)
    assert (
        gate.status == "staff dm; exit when max_incidents ≤ 0; at least 3 day(s) (defaults — minimum duration: policy)"
    )
