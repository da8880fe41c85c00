"""Random sequences of governance operations never make a release eligible for production wrongly.

Hypothesis applies services in any order (decisions, package rebuilds and validations, test runs, notices,
backup evidence, rollback plans, changes with random schedules, freezes, the clock moving) and checks,
after every step, that whenever ``production_deployment_eligible`` finds no problem, the raw rows show an
approved change covering the moment, an approved plan, a validated current package and every required
gate satisfied. The check reads the tables directly; it does not reuse the evaluators it checks.
"""

from datetime import time, timedelta
from itertools import count

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from rdm_site.models import Notification
from releases import services
from releases.exceptions import DomainError
from releases.models import (
    Approval,
    ChangeRecord,
    FreezePeriod,
    GateEvidence,
    Release,
    ReleaseBaseline,
    ReleasePackage,
    ReleaseUnit,
    RollbackPlan,
    TestRun,
)
from releases.scheduling import production_deployment_eligible
from tests.releases.conftest import SHA, add_unit, make_world
from tests.releases.factories import ChangeTemplateFactory, WindowFactory

AUTHORISED = ("approved", "scheduled", "implementing")
ARTIFACT = {"name": "app.tar.gz", "uri": "https://artifacts.example/app.tar.gz", "sha256": SHA}


def _attempt(call) -> bool:
    try:
        call()
    except DomainError:
        return False
    return True


class EligibilityMachine(RuleBasedStateMachine):
    eligible_seen = 0

    def __init__(self):
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()  # every example runs in a savepoint, rolled back in teardown
        self.world = make_world()
        self.people = self.world.people
        # a nightly production window, 20:00 London for eight hours, so the clock matters
        window = WindowFactory(
            name="nightly", rrule="FREQ=DAILY", start_time=time(20), duration=timedelta(hours=8),
            environments=[self.world.production],
        )  # fmt: skip
        self.template = ChangeTemplateFactory(services=[self.world.service], approved_by=self.people.ca)
        # the clock starts two hours into an opening, five days ahead (change schedules must lie ahead)
        self.base = window.next_occurrence(timezone.now() + timedelta(days=5)).start + timedelta(hours=2)
        self.at = self.base
        self.versions = count(1)

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    @property
    def release(self) -> Release:
        return Release.objects.get(pk=self.world.release.pk)

    def _package(self):
        return ReleasePackage.objects.filter(release=self.release).exclude(state="superseded").first()

    @initialize(green=st.booleans())
    def start(self, green):
        """Half the sequences start from a release ready for production, so that breaking it is explored."""
        if green:
            self.everything_green()

    # --- the release plan ------------------------------------------------------------------------

    @rule()
    def plan_and_submit(self):
        _attempt(lambda: services.release_plan(release=self.release, actor=self.people.rm))
        _attempt(lambda: services.release_submit(release=self.release, actor=self.people.rm))

    @rule(who=st.sampled_from(["so", "rm2", "rm", "so_other"]), approve=st.booleans())
    def decide(self, who, approve):
        actor = getattr(self.people, who)
        if approve:
            _attempt(lambda: services.release_approve(release=self.release, actor=actor))
        else:
            _attempt(lambda: services.release_reject(release=self.release, actor=actor, reason="not now"))

    @rule()
    def replan(self):
        _attempt(lambda: services.release_replan(release=self.release, actor=self.people.rm))

    @rule(days=st.integers(-1, 1))
    def move_the_plan(self, days):
        release = self.release
        if release.planned_start is not None:
            shift = timedelta(days=days, hours=1)
            data = {"planned_start": release.planned_start + shift, "planned_end": release.planned_end + shift}
            _attempt(lambda: services.release_update(release=release, actor=self.people.rm, data=data))

    @rule()
    def mark_ready(self):
        _attempt(lambda: services.release_mark_ready(release=self.release, actor=self.people.rm))

    # --- the package -----------------------------------------------------------------------------

    @rule()
    def register_package(self):
        version = f"b{next(self.versions)}"
        _attempt(
            lambda: services.package_register(
                release=self.release, actor=self.people.ci, version=version, artifacts=[ARTIFACT]
            )
        )

    @rule(validator=st.sampled_from(["dm", "rm", "ci"]), accept=st.booleans())
    def build_and_judge(self, validator, accept):
        package = self._package()
        if package is None:
            return
        _attempt(lambda: services.package_mark_built(package=package, actor=self.people.ci))
        actor = getattr(self.people, validator)
        if accept:
            _attempt(lambda: services.package_validate(package=package, actor=actor))
        else:
            _attempt(lambda: services.package_reject(package=package, actor=actor, reason="bad"))

    @rule(critical=st.integers(0, 1), major=st.integers(0, 1), minutes=st.integers(-30, 30))
    def record_tests(self, critical, major, minutes):
        package = self._package()
        if package is not None:
            _attempt(
                lambda: services.test_run_record(
                    package=package,
                    actor=self.people.ci,
                    suite="regression",
                    passed=10,
                    failed_critical=critical,
                    failed_major=major,
                    run_at=timezone.now() + timedelta(minutes=minutes),
                )
            )

    # --- the other gates -------------------------------------------------------------------------

    @rule()
    def notify(self):
        _attempt(lambda: services.stakeholders_notify(release=self.release, actor=self.people.rm))

    @rule(verify=st.booleans())
    def attest_backups(self, verify):
        def record():
            evidence = services.gate_evidence_record(release=self.release, actor=self.people.dm, note="snapshot")
            if verify:
                services.gate_evidence_verify(evidence=evidence, actor=self.people.dm2)

        _attempt(record)

    @rule(rehearse=st.booleans(), steps=st.sampled_from(["Redeploy the last build.", "Restore and redeploy."]))
    def rollback_plan(self, rehearse, steps):
        _attempt(lambda: services.rollback_plan_write(release=self.release, actor=self.people.rm, steps=steps))
        if rehearse:
            _attempt(lambda: services.rollback_rehearsal_record(release=self.release, actor=self.people.dm, note="ok"))

    @rule()
    def sacm(self):
        _attempt(lambda: add_unit(self.world))
        _attempt(lambda: services.release_baseline_take(release=self.release, actor=self.people.rm))

    # --- changes, freezes and time ---------------------------------------------------------------

    @rule(
        kind=st.sampled_from(["normal", "standard"]),
        offset=st.integers(-36, 36),
        hours=st.integers(1, 12),
        outcome=st.sampled_from(["approve", "reject", "leave"]),
        schedule=st.booleans(),
    )
    def raise_change(self, kind, offset, hours, outcome, schedule):
        start = self.base + timedelta(hours=offset)

        def run():
            change = services.change_create(
                actor=self.people.ci if kind == "standard" else self.people.rm,
                change_type=kind,
                template=self.template if kind == "standard" else None,
                title="Deploy",
                planned_start=start,
                planned_end=start + timedelta(hours=hours),
                release=self.release,
            )
            services.change_submit(change=change, actor=change.requested_by)
            if kind == "normal" and outcome != "leave":
                services.change_assess(change=change, actor=self.people.ca)
                if outcome == "approve":
                    services.change_approve(change=change, actor=self.people.ea)
                else:
                    services.change_reject(change=change, actor=self.people.ea, reason="clash")
            if schedule:
                services.change_schedule(change=change, actor=self.people.dm)

        _attempt(run)

    @rule(offset=st.integers(-36, 36), hours=st.integers(1, 24))
    def freeze(self, offset, hours):
        start = self.base + timedelta(hours=offset)
        FreezePeriod.objects.create(name="freeze", start=start, end=start + timedelta(hours=hours), reason="peak")

    @rule(hours=st.integers(-30, 30))
    def move_time(self, hours):
        moved = self.at + timedelta(hours=hours)
        if abs(moved - self.base) <= timedelta(days=2):
            self.at = moved

    @rule()
    def everything_green(self):
        """The whole happy path in one step, so that eligible states are visited often."""
        self.plan_and_submit()
        self.sacm()
        self.decide("so", approve=True)
        if self._package() is None:
            self.register_package()
        self.build_and_judge("dm", accept=True)
        self.record_tests(0, 0, 0)
        self.notify()
        self.attest_backups(verify=True)
        self.rollback_plan(rehearse=True, steps="Redeploy the last build.")
        self.mark_ready()
        self.raise_change("normal", int((self.at - self.base).total_seconds() // 3600) - 1, 4, "approve", False)

    # --- the invariant ---------------------------------------------------------------------------

    @invariant()
    def eligible_only_when_the_rows_say_so(self):
        release = self.release
        if production_deployment_eligible(release, self.world.production, self.at):
            return
        EligibilityMachine.eligible_seen += 1
        at, rid = self.at, release.pk
        policy = release.policy
        # an approved change of the release covers the moment
        assert ChangeRecord.objects.filter(
            release_id=rid,
            change_type__in=["normal", "standard"],
            state__in=AUTHORISED,
            planned_start__lte=at,
            planned_end__gt=at,
        ).exists()
        # the plan is approved: by the quorum of distinct people, or by a standard change's template
        assert release.state in ("approved", "ready", "deploying")
        approvers = (
            Approval.objects.filter(release_id=rid, decision="approved", withdrawn_at__isnull=True)
            .values("approver_id")
            .distinct()
            .count()
        )
        standard = ChangeRecord.objects.filter(
            release_id=rid, change_type="standard", state__in=AUTHORISED, template__approved_at__isnull=False
        ).exists()
        assert approvers >= policy.approvals_required or standard
        assert not Approval.objects.filter(release_id=rid, decision="rejected", withdrawn_at__isnull=True).exists()
        # exactly one current package, validated
        current = list(ReleasePackage.objects.filter(release_id=rid).exclude(state="superseded").values("pk", "state"))
        assert [row["state"] for row in current] == ["validated"]
        package_id = current[0]["pk"]
        # and every gate production requires
        required = set(policy.gates_required["production"])
        if "tests_passed" in required:
            for suite in policy.required_test_suites:
                latest = TestRun.objects.filter(package_id=package_id, suite=suite).order_by("-run_at", "-id").first()
                assert latest is not None
                assert latest.failed_critical == latest.failed_major == 0
        if "rollback_ready" in required:
            assert RollbackPlan.objects.filter(release_id=rid, rehearsed_at__isnull=False).exclude(steps="").exists()
        if "stakeholders_notified" in required:
            stakeholders = set(User.objects.filter(stakeholder_services__releases=rid).values_list("pk", flat=True))
            notified = set(
                Notification.objects.filter(kind="release.stakeholders", object_id=str(rid)).values_list(
                    "recipient_id", flat=True
                )
            )
            assert stakeholders
            assert stakeholders <= notified
        if "backups_verified" in required:
            assert GateEvidence.objects.filter(
                release_id=rid, gate="backups_verified", verified_at__isnull=False
            ).exists()
        if "sacm_ready" in required:
            assert ReleaseUnit.objects.filter(release_id=rid).exists()
            assert not ReleaseUnit.objects.filter(release_id=rid, configuration_items__isnull=True).exists()
            assert ReleaseBaseline.objects.filter(release_id=rid, kind="pre_release").exists()
        # and no freeze is in force (no override was given)
        assert not FreezePeriod.objects.filter(start__lte=at, end__gt=at).exists()


@pytest.mark.django_db
def test_production_eligibility_never_lies():
    EligibilityMachine.eligible_seen = 0
    run_state_machine_as_test(
        EligibilityMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    # the property was exercised: some sequences did reach an eligible release
    assert EligibilityMachine.eligible_seen > 0
