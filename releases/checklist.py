"""The go/no-go checklist: the eight gates of DESIGN.md, each computed from the records, with its evidence.

``checklist_evaluate(release, tier)`` evaluates every gate (so a page can show them all) and marks
the ones the release's policy requires for that environment tier; ``Checklist.unmet`` lists the
required gates that are not satisfied. Nothing here writes.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.models import User

from rdm_site.selectors import notifications_about
from releases.choices import (
    CHANGE_AUTHORISED_STATES,
    BaselineKind,
    ChangeType,
    Decision,
    GateCode,
    PackageState,
)
from releases.models import GateEvidence, Release, ReleasePackage, RollbackPlan
from releases.selectors import latest_test_runs, release_active_approvals, release_current_package

STAKEHOLDER_NOTICE = "release.stakeholders"


@dataclass(frozen=True)
class Evidence:
    """Who or what satisfied (part of) a gate, when, and where to look."""

    who: str
    when: datetime | None = None
    link: str = ""
    note: str = ""


@dataclass(frozen=True)
class Gate:
    code: str
    title: str
    required: bool
    satisfied: bool
    status: str
    evidence: list[Evidence] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        return self.required and not self.satisfied

    @property
    def message(self) -> str:
        return f"{self.title}: {self.status}"


@dataclass(frozen=True)
class Checklist:
    release: Release
    tier: str
    gates: list[Gate]

    @property
    def unmet(self) -> list[Gate]:
        """Every required gate that is not satisfied, in checklist order."""
        return [gate for gate in self.gates if gate.blocking]

    @property
    def green(self) -> bool:
        return not self.unmet

    @property
    def unmet_messages(self) -> list[str]:
        return [gate.message for gate in self.unmet]

    def gate(self, code: str) -> Gate:
        return next(gate for gate in self.gates if gate.code == code)


@dataclass
class _Context:
    release: Release
    package: ReleasePackage | None
    services: list


def _user(user: User | None) -> str:
    return user.get_username() if user is not None else "RDM"


def _plan_approved(context: _Context) -> tuple[bool, str, list[Evidence]]:
    release, policy = context.release, context.release.policy
    decisions = list(release_active_approvals(release, decision=None))
    rejections = [approval for approval in decisions if approval.decision == Decision.REJECTED]
    approvals = [approval for approval in decisions if approval.decision == Decision.APPROVED]
    evidence = [
        Evidence(approval.approver.get_username(), approval.decided_at, note=approval.reason) for approval in approvals
    ]
    if rejections:
        names = ", ".join(f"{rejection.approver.get_username()} ({rejection.reason})" for rejection in rejections)
        return False, f"rejected by {names}", evidence
    standard = (
        release.changes.filter(
            change_type=ChangeType.STANDARD, state__in=CHANGE_AUTHORISED_STATES, template__active=True
        )
        .exclude(template__approved_at=None)
        .select_related("template__approved_by")
        .first()
    )
    if standard is not None:
        template = standard.template
        note = f"standard change {standard.number} from pre-approved template {template.name!r}"
        evidence.append(Evidence(_user(template.approved_by), template.approved_at, note=note))
        return True, f"pre-approved: {note}", evidence
    names = ", ".join(approval.approver.get_username() for approval in approvals)
    count = f"{len(approvals)} of {policy.approvals_required} approvals"
    if len(approvals) >= policy.approvals_required:
        return True, f"{count} ({names})", evidence
    return False, f"{count}" + (f" so far ({names})" if names else " so far"), evidence


def _package_validated(context: _Context) -> tuple[bool, str, list[Evidence]]:
    package = context.package
    if package is None:
        return False, "no package registered", []
    if package.state != PackageState.VALIDATED:
        return False, f"build {package.version} is {package.get_state_display().lower()}, not validated", []
    evidence = [Evidence(_user(package.validated_by), package.validated_at, note=f"build {package.version}")]
    return True, f"build {package.version} validated by {_user(package.validated_by)}", evidence


def _tests_passed(context: _Context) -> tuple[bool, str, list[Evidence]]:
    package = context.package
    if package is None:
        return False, "no package to test", []
    latest = latest_test_runs(package)
    required = list(context.release.policy.required_test_suites or [])
    suites = required or sorted(latest)
    if not suites:
        return False, f"no test run recorded for build {package.version}", []
    problems, evidence = [], []
    for suite in suites:
        run = latest.get(suite)
        if run is None:
            problems.append(f"suite {suite!r} has not run on build {package.version}")
            continue
        evidence.append(Evidence(_user(run.recorded_by), run.run_at, run.link, f"{suite}: {run.summary}"))
        if not run.passes_gate:
            problems.append(
                f"latest {suite!r} run failed {run.failed_critical} critical and {run.failed_major} major test(s)"
            )
    if problems:
        return False, "; ".join(problems), evidence
    return True, f"latest run of {', '.join(suites)} passes critical and major", evidence


def _rollback_ready(context: _Context) -> tuple[bool, str, list[Evidence]]:
    plan = RollbackPlan.objects.filter(release=context.release).select_related("written_by", "rehearsed_by").first()
    if plan is None or not plan.documented:
        return False, "no rollback steps written", []
    evidence = [Evidence(_user(plan.written_by), plan.updated, note="steps documented")]
    if not plan.tested:
        return False, "steps documented but never rehearsed", evidence
    evidence.append(Evidence(_user(plan.rehearsed_by), plan.rehearsed_at, plan.rehearsal_link, plan.rehearsal_note))
    return True, f"documented and rehearsed by {_user(plan.rehearsed_by)}", evidence


def _stakeholders_notified(context: _Context) -> tuple[bool, str, list[Evidence]]:
    stakeholders = {user.pk: user for service in context.services for user in service.stakeholders.all()}
    notices = list(notifications_about(context.release, kind=STAKEHOLDER_NOTICE).select_related("sent_by"))
    reached = {notice.recipient_id for notice in notices}
    evidence = []
    if notices:
        last = max(notices, key=lambda notice: notice.created_at)
        evidence.append(Evidence(_user(last.sent_by), last.created_at, last.link, last.subject))
    if not stakeholders:
        return False, "the release's services list no stakeholders", evidence
    missing = sorted(user.get_username() for pk, user in stakeholders.items() if pk not in reached)
    if missing:
        return False, f"not yet notified: {', '.join(missing)}", evidence
    return True, f"{len(stakeholders)} stakeholder(s) notified", evidence


def _backups_verified(context: _Context) -> tuple[bool, str, list[Evidence]]:
    rows = list(
        GateEvidence.objects.filter(release=context.release, gate=GateCode.BACKUPS_VERIFIED).select_related(
            "recorded_by", "verified_by"
        )
    )
    verified = [row for row in rows if row.verified_at is not None]
    evidence = [Evidence(row.recorder_label, row.recorded_at, row.link, row.note) for row in (verified or rows)[:3]] + [
        Evidence(_user(row.verified_by), row.verified_at, note="verified") for row in verified[:1]
    ]
    if verified:
        row = verified[0]
        return True, f"posted by {row.recorder_label}, verified by {_user(row.verified_by)}", evidence
    if rows:
        return False, "backup evidence posted but not yet verified", evidence
    return False, "no backup evidence posted", evidence


def _sacm_ready(context: _Context) -> tuple[bool, str, list[Evidence]]:
    release = context.release
    units = list(release.units.prefetch_related("configuration_items"))
    problems = []
    if not units:
        problems.append("the release has no units")
    unnamed = [unit.name for unit in units if not unit.configuration_items.all()]
    if unnamed:
        problems.append(f"unit(s) naming no CI: {', '.join(unnamed)}")
    link = (
        release.baselines.filter(kind=BaselineKind.PRE_RELEASE)
        .select_related("baseline__taken_by")
        .order_by("-linked_at")
        .first()
    )
    evidence = []
    if link is None:
        problems.append("no pre-release baseline taken")
    else:
        baseline = link.baseline
        evidence.append(Evidence(_user(baseline.taken_by), baseline.taken_at, note=f"baseline {baseline.name}"))
    if problems:
        return False, "; ".join(problems), evidence
    cis = sum(len(unit.configuration_items.all()) for unit in units)
    return True, f"{len(units)} unit(s) name {cis} CI link(s); pre-release baseline {link.baseline.name}", evidence


def els_plan(release: Release, services: list | None = None) -> tuple[list[User], dict, int, list[str]]:
    """The ELS plan in force: staff, exit criteria, minimum duration (days), and which parts are defaults."""
    policy, defaults = release.policy, []
    staff = list(release.els_staff.all())
    if not staff:
        services = services if services is not None else list(release.services.select_related("owner"))
        staff = sorted({service.owner for service in services}, key=lambda user: user.get_username())
        defaults.append("staff: the service owners")
    criteria = release.els_exit_criteria or {}
    if not criteria:
        criteria = dict(policy.els_exit_criteria or {})
        defaults.append("exit criteria: policy")
    minimum = release.els_min_duration_days
    if minimum is None:
        minimum = policy.els_min_duration_days
        defaults.append("minimum duration: policy")
    return staff, criteria, minimum, defaults


def _els_scheduled(context: _Context) -> tuple[bool, str, list[Evidence]]:
    staff, criteria, minimum, defaults = els_plan(context.release, context.services)
    problems = []
    if not staff:
        problems.append("no ELS staff")
    if not criteria:
        problems.append("no exit criteria")
    if problems:
        return False, "; ".join(problems), []
    names = ", ".join(user.get_username() for user in staff)
    exit_text = ", ".join(f"{key} ≤ {value}" for key, value in sorted(criteria.items()))
    note = f" (defaults — {'; '.join(defaults)})" if defaults else ""
    status = f"staff {names}; exit when {exit_text}; at least {minimum} day(s){note}"
    return True, status, [Evidence(names, note=status)]


GATE_EVALUATORS: dict[str, Callable[[_Context], tuple[bool, str, list[Evidence]]]] = {
    GateCode.PLAN_APPROVED: _plan_approved,
    GateCode.PACKAGE_VALIDATED: _package_validated,
    GateCode.TESTS_PASSED: _tests_passed,
    GateCode.ROLLBACK_READY: _rollback_ready,
    GateCode.STAKEHOLDERS_NOTIFIED: _stakeholders_notified,
    GateCode.BACKUPS_VERIFIED: _backups_verified,
    GateCode.SACM_READY: _sacm_ready,
    GateCode.ELS_SCHEDULED: _els_scheduled,
}


def checklist_evaluate(release: Release, tier: str) -> Checklist:
    """Evaluate all eight gates for a deployment of ``release`` to an environment of ``tier``."""
    context = _Context(
        release=release,
        package=release_current_package(release),
        services=list(release.services.select_related("owner").prefetch_related("stakeholders")),
    )
    required = set(release.policy.gates_for(tier))
    gates = []
    for code in GateCode:
        satisfied, status, evidence = GATE_EVALUATORS[code](context)
        gates.append(Gate(code.value, code.label, code.value in required, satisfied, status, evidence))
    return Checklist(release=release, tier=str(tier), gates=gates)
