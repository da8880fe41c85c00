"""Demo release governance: policies per release type, a production window, a year-end freeze, change
templates, and releases at several points of their life. Loading twice changes nothing.

Needs the demo users and the demo CMDB first. Policies, windows, freezes and templates are seed rows
(nobody acted); the releases are driven through the services by the demo users, so every release
carries the approvals, evidence, notifications and audit trail a real one would.

- Customer Portal 1.9: a draft.
- Search 2.8: submitted, awaiting its service owner's approval; every other production gate is green.
- Web Shop 5.1: approved and ready, every production gate green, an approved change inside the next window.
- Payments 2.4: approved but blocked: the latest regression run has critical failures.
- Notifications 0.9: submitted, planned inside the year-end freeze; its change awaits assessment.
- The approvers' queue: two assessed normal changes overlapping on the Web Shop, one emergency change.
"""

from datetime import UTC, date, datetime, time, timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from cmdb.models import Baseline, ConfigurationItem, Environment, Service
from rdm_site.roles import Role
from releases import services
from releases.choices import ALL_GATES, BaselineKind, ChangeType, GateCode, KnowledgeKind, ReleaseType, Risk, UnitKind
from releases.models import (
    ChangeRecord,
    ChangeTemplate,
    FreezePeriod,
    KnowledgeArticle,
    Release,
    ReleasePolicy,
    ReleaseWindow,
)

SHA = {
    "web": "5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
    "payments": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "search": "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
    "notifications": "fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9",
    "migration": "b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c",
}

POLICIES = [  # name, type, quorum, lead time (days), suites, gates per tier (None: defaults), description
    ("Major release", ReleaseType.MAJOR, 2, 10, ["regression", "performance", "security"], None,
     "New capabilities: two approvers, ten days' notice, every gate."),
    ("Minor release", ReleaseType.MINOR, 1, 3, ["regression", "smoke"], None,
     "Improvements: one approver, three days' notice."),
    ("Patch release", ReleaseType.PATCH, 1, 1, ["regression"],
     {"development": [], "test": ["tests_passed"], "staging": ["tests_passed"], "production": list(ALL_GATES)},
     "Fixes: one approver, a day's notice; staging needs passing tests only."),
    ("Emergency release", ReleaseType.EMERGENCY, 1, 0, ["smoke"], None,
     "Fixing an outage: no notice, under an emergency change."),
]  # fmt: skip

TEMPLATES = [  # name, services, risk, pre-approved, description
    ("Routine configuration change", ["Web Shop", "Search"], Risk.LOW, True,
     "Change a feature flag or a tuning value through the configuration pipeline."),
    ("TLS certificate rotation", ["Web Shop", "Payments", "Customer Portal"], Risk.LOW, True,
     "Replace certificates before they expire; automated and reversible."),
    ("Scale application nodes", ["Web Shop"], Risk.MEDIUM, False,
     "Add or remove application nodes; awaiting the CAB's pre-approval."),
]  # fmt: skip


def _users() -> dict[str, User]:
    return {user.username: user for user in User.objects.filter(groups__name__in=Role.values).distinct()}


def _policies() -> dict[str, ReleasePolicy]:
    policies = {}
    for name, release_type, quorum, lead, suites, gates, description in POLICIES:
        defaults = {
            "release_type": release_type,
            "approvals_required": quorum,
            "lead_time_days": lead,
            "required_test_suites": suites,
            "description": description,
        }
        if gates is not None:
            defaults["gates_required"] = gates
        policies[release_type], _ = ReleasePolicy.objects.update_or_create(name=name, defaults=defaults)
    return policies


def _window(production: Environment) -> ReleaseWindow:
    window, _ = ReleaseWindow.objects.update_or_create(
        name="Production: Tuesday and Thursday nights",
        defaults={
            "description": "22:00 to 02:00 London time, all year round.",
            "first_date": date(2025, 1, 7),
            "start_time": time(22, 0),
            "rrule": "FREQ=WEEKLY;BYDAY=TU,TH",
            "duration": timedelta(hours=4),
            "time_zone": "Europe/London",
        },
    )
    window.environments.set([production])
    return window


def year_end_freeze(now: datetime) -> FreezePeriod:
    """The year-end freeze (19 December to 5 January) in force at ``now`` or the next one: in December it is
    this year's, in its first days of January still last year's.
    """
    year = now.year - 1 if now < datetime(now.year, 1, 5, tzinfo=UTC) else now.year
    freeze, _ = FreezePeriod.objects.get_or_create(
        name=f"Year-end freeze {year}",
        defaults={
            "start": datetime(year, 12, 19, tzinfo=UTC),
            "end": datetime(year + 1, 1, 5, tzinfo=UTC),
            "reason": "Year-end trading peak and financial close: no production changes.",
        },
    )
    return freeze


def _templates(services_by_name: dict[str, Service], users: dict[str, User]) -> dict[str, ChangeTemplate]:
    templates = {}
    for name, service_names, risk, approved, description in TEMPLATES:
        template, _ = ChangeTemplate.objects.get_or_create(
            name=name, defaults={"description": description, "risk": risk, "created_by": users["rita.release"]}
        )
        template.services.set([services_by_name[service] for service in service_names])
        if approved and template.approved_at is None:
            services.change_template_approve(template=template, actor=users["carl.cab"])
        templates[name] = template
    return templates


class _Demo:
    """What the release builders share: the people, the CMDB rows, the rules, and "now"."""

    def __init__(self, now: datetime):
        self.now = now
        self.users = _users()
        self.services = {service.name: service for service in Service.objects.all()}
        self.production = Environment.objects.get(name="production")
        self.policies = _policies()
        self.window = _window(self.production)
        self.freeze = year_end_freeze(self.now)
        self.templates = _templates(self.services, self.users)

    def user(self, name: str) -> User:
        return self.users[name]

    def ci(self, name: str) -> ConfigurationItem:
        return ConfigurationItem.objects.get(name=name, environment=self.production)

    def opening(self, after: datetime, skip: int = 0):
        """The window's next opening after ``after`` (skipping ``skip`` openings)."""
        occurrence = self.window.next_occurrence(after)
        for _ in range(skip):
            occurrence = self.window.next_occurrence(occurrence.start + timedelta(minutes=1))
        return occurrence

    def release(self, *, name, version, release_type, service, start, description, units) -> Release | None:
        """Create and plan the release with its units, unless it exists already (then None: nothing to do)."""
        if Release.objects.filter(name=name, version=version).exists():
            return None
        rita, bill = self.user("rita.release"), self.user("bill.build")
        release = services.release_create(
            actor=rita,
            name=name,
            version=version,
            policy=self.policies[release_type],
            services=[self.services[service]],
            planned_start=start,
            planned_end=start + timedelta(hours=2),
            description=description,
        )
        for unit_name, kind, unit_version, reversible, cis in units:
            services.release_unit_add(
                release=release,
                actor=bill,
                name=unit_name,
                kind=kind,
                version=unit_version,
                reversible=reversible,
                configuration_items=[self.ci(ci) for ci in cis],
            )
        return release

    def package(self, release: Release, version: str, digest: str, *, commits, work_items, results) -> None:
        bill, dan = self.user("bill.build"), self.user("dan.deploy")
        package = services.package_register(
            release=release,
            actor=bill,
            version=version,
            artifacts=[
                {"name": f"{release.name.lower().replace(' ', '-')}-{release.version}.tar.gz",
                 "uri": f"oci://registry.rdm.example/{release.name.lower().replace(' ', '-')}:{version}",
                 "sha256": digest},
            ],
            commits=commits,
            work_items=work_items,
        )  # fmt: skip
        services.package_mark_built(package=package, actor=bill)
        services.package_validate(package=package, actor=dan, reason="Smoke-tested in staging.")
        for suite, passed, critical, major, minor in results:
            services.test_run_record(
                package=package,
                actor=bill,
                suite=suite,
                passed=passed,
                failed_critical=critical,
                failed_major=major,
                failed_minor=minor,
                link=f"https://ci.rdm.example/{release.name.lower().replace(' ', '-')}/{version}/{suite}",
            )

    def gates(self, release: Release) -> None:
        rita, dan, bill = self.user("rita.release"), self.user("dan.deploy"), self.user("bill.build")
        services.rollback_plan_write(
            release=release,
            actor=rita,
            steps="1. Pause the rollout.\n2. Redeploy the previous build.\n3. Run the down migration.\n"
            "4. Check the health endpoints and the error rate.",
        )
        services.rollback_rehearsal_record(
            release=release,
            actor=dan,
            link="https://wiki.rdm.example/rehearsals/" + str(release.pk),
            note="In staging.",
        )
        services.stakeholders_notify(release=release, actor=rita, message="Expect a short slowdown at the start.")
        evidence = services.gate_evidence_record(
            release=release,
            actor=bill,
            gate=GateCode.BACKUPS_VERIFIED,
            tool="backup-bot",
            note="Full backup of orders-db, restore tested.",
            link="https://backups.rdm.example/orders-db/latest",
        )
        services.gate_evidence_verify(evidence=evidence, actor=dan)
        baseline = Baseline.objects.filter(name="initial").first()
        if baseline is not None:
            services.release_baseline_link(
                release=release, actor=rita, baseline=baseline, kind=BaselineKind.PRE_RELEASE
            )
        services.release_notes_build(release=release, actor=rita)

    def approved_change(self, release: Release, start: datetime, hours: int = 3) -> None:
        rita, carl = self.user("rita.release"), self.user("carl.cab")
        change = services.change_create(
            actor=rita,
            change_type="normal",
            title=f"Deploy {release} to production",
            description=release.description,
            risk=Risk.MEDIUM,
            impact="Short slowdown while the nodes restart.",
            planned_start=start,
            planned_end=start + timedelta(hours=hours),
            release=release,
            configuration_items=[ci for unit in release.units.all() for ci in unit.configuration_items.all()],
        )
        services.change_submit(change=change, actor=rita)
        services.change_assess(change=change, actor=carl, assessment="Reversible; rehearsed rollback.")
        services.change_approve(change=change, actor=carl, reason="Fits the window; no conflicts.")


def _draft(demo: _Demo) -> None:
    demo.release(
        name="Customer Portal",
        version="1.9",
        release_type=ReleaseType.MINOR,
        service="Customer Portal",
        start=demo.opening(demo.now + timedelta(days=7)).start,
        description="Returns in two clicks; invoice downloads as PDF.",
        units=[("customer-portal", UnitKind.APPLICATION_ARTIFACT, "1.9.0", True, ["customer-portal"])],
    )


def _awaiting_approval(demo: _Demo) -> None:
    release = demo.release(
        name="Search",
        version="2.8",
        release_type=ReleaseType.PATCH,
        service="Search",
        start=demo.opening(demo.now + timedelta(days=2)).start,
        description="Fixes stemming for compound words.",
        units=[("search-api", UnitKind.APPLICATION_ARTIFACT, "2.8.0", True, ["search-api"])],
    )
    if release is None:
        return
    services.release_plan(release=release, actor=demo.user("rita.release"))
    services.release_submit(release=release, actor=demo.user("rita.release"))
    # built, tested and prepared while the approval is awaited: the approver reads a complete checklist
    demo.package(
        release,
        "2.8.0+97",
        SHA["search"],
        commits=[{"sha": "e0a4f2c9d1", "message": "Stem compound words", "author": "mia"}],
        work_items=["SRCH-58"],
        results=[("regression", 96, 0, 0, 1)],
    )
    demo.gates(release)


def _ready(demo: _Demo) -> None:
    opening = demo.opening(demo.now + timedelta(days=demo.policies[ReleaseType.MINOR].lead_time_days, hours=1))
    release = demo.release(
        name="Web Shop",
        version="5.1",
        release_type=ReleaseType.MINOR,
        service="Web Shop",
        start=opening.start + timedelta(minutes=30),
        description="One-page checkout and saved baskets.",
        units=[
            ("web-shop", UnitKind.APPLICATION_ARTIFACT, "5.1.0", True, ["web-shop"]),
            ("orders-db: add saved_baskets", UnitKind.DATABASE_MIGRATION, "0042", True, ["orders-db"]),
        ],
    )
    if release is None:
        return
    rita = demo.user("rita.release")
    services.release_plan(release=release, actor=rita)
    services.release_submit(release=release, actor=rita)
    services.release_approve(release=release, actor=demo.user("sophie.owner"), reason="Checkout team signed off.")
    demo.package(
        release,
        "5.1.0+412",
        SHA["web"],
        commits=[
            {"sha": "8d2f4c1a9b", "message": "One-page checkout", "author": "ann"},
            {"sha": "31c0e77d52", "message": "Saved baskets", "author": "raj"},
        ],
        work_items=["SHOP-231", "SHOP-240"],
        results=[("regression", 412, 0, 0, 2), ("smoke", 25, 0, 0, 0)],
    )
    demo.gates(release)
    services.release_mark_ready(release=release, actor=rita)
    demo.approved_change(release, opening.start)


def _blocked(demo: _Demo) -> None:
    opening = demo.opening(demo.now + timedelta(days=demo.policies[ReleaseType.MINOR].lead_time_days, hours=1), skip=1)
    release = demo.release(
        name="Payments",
        version="2.4",
        release_type=ReleaseType.MINOR,
        service="Payments",
        start=opening.start + timedelta(minutes=30),
        description="Instant refunds to cards.",
        units=[("payments-api", UnitKind.APPLICATION_ARTIFACT, "2.4.0", True, ["payments-api"])],
    )
    if release is None:
        return
    rita = demo.user("rita.release")
    services.release_plan(release=release, actor=rita)
    services.release_submit(release=release, actor=rita)
    services.release_approve(release=release, actor=demo.user("oscar.owner"))
    demo.package(
        release,
        "2.4.0+118",
        SHA["payments"],
        commits=[{"sha": "c4e1a0b2f3", "message": "Instant refunds", "author": "li"}],
        work_items=["PAY-77"],
        results=[("regression", 180, 2, 1, 0), ("smoke", 25, 0, 0, 0)],  # two critical failures: no-go
    )
    demo.gates(release)
    demo.approved_change(release, opening.start)


def _in_freeze(demo: _Demo) -> None:
    # inside the freeze, and far enough ahead for the policy's lead time even when the freeze has begun
    earliest = max(demo.freeze.start, demo.now + timedelta(days=demo.policies[ReleaseType.MINOR].lead_time_days))
    start = demo.opening(earliest + timedelta(days=1)).start
    release = demo.release(
        name="Notifications",
        version="0.9",
        release_type=ReleaseType.MINOR,
        service="Notifications",
        start=start,
        description="SMS delivery reports.",
        units=[("notifications-worker", UnitKind.APPLICATION_ARTIFACT, "0.9.0", True, ["notifications-worker"])],
    )
    if release is not None:
        services.release_plan(release=release, actor=demo.user("rita.release"))
        services.release_submit(release=release, actor=demo.user("rita.release"))


def _changes_for_the_cab(demo: _Demo) -> None:
    """The approvers' queue: two normal changes overlapping on the Web Shop (a conflict to weigh), an emergency
    change, and the change carrying Notifications 0.9 into the year-end freeze (awaiting assessment).
    """
    rita, dan, carl, emma = (demo.user(name) for name in ("rita.release", "dan.deploy", "carl.cab", "emma.emergency"))
    morning = (demo.now + timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0)
    asked = [
        (dan, carl, ChangeType.NORMAL, "Rotate the Web Shop TLS certificates", Risk.LOW, morning, 2,
         ["Web Shop"], ["web-shop"]),
        (rita, carl, ChangeType.NORMAL, "Reindex the orders database", Risk.HIGH, morning + timedelta(hours=1), 3,
         ["Web Shop", "Payments"], ["orders-db"]),
        (dan, emma, ChangeType.EMERGENCY, "Patch the card gateway's TLS library", Risk.HIGH,
         demo.now.replace(second=0, microsecond=0) + timedelta(hours=6), 1, ["Payments"], ["payments-api"]),
    ]  # fmt: skip
    for requester, assessor, change_type, title, risk, start, hours, service_names, ci_names in asked:
        if ChangeRecord.objects.filter(title=title).exists():
            continue
        change = services.change_create(
            actor=requester,
            change_type=change_type,
            title=title,
            risk=risk,
            impact="Brief errors for customers while the nodes restart.",
            planned_start=start,
            planned_end=start + timedelta(hours=hours),
            services=[demo.services[name] for name in service_names],
            configuration_items=[demo.ci(name) for name in ci_names],
        )
        services.change_submit(change=change, actor=requester)
        services.change_assess(change=change, actor=assessor, assessment="Rollback rehearsed in staging.")
    release = Release.objects.filter(name="Notifications", version="0.9", changes=None).first()
    if release is not None:
        change = services.change_create(
            actor=rita,
            change_type=ChangeType.NORMAL,
            title=f"Deploy {release} to production",
            impact="Delivery reports pause for a minute.",
            planned_start=release.planned_start,
            planned_end=release.planned_end,
            release=release,
        )
        services.change_submit(change=change, actor=rita)


def demo_releases_load(now: datetime | None = None) -> None:
    """Load the demo governance data (idempotent: a release that exists is left as it is), dated from
    ``now`` (today).
    """
    demo = _Demo(now or timezone.now())
    for build in (_draft, _awaiting_approval, _ready, _blocked, _in_freeze, _changes_for_the_cab):
        build(demo)
    KnowledgeArticle.objects.get_or_create(
        title="Web Shop: rolling back a release",
        defaults={
            "kind": KnowledgeKind.ROLLBACK_STEPS,
            "service": demo.services["Web Shop"],
            "author": demo.user("rita.release"),
            "body": "Pause the rollout, redeploy the previous image, run the down migration, watch the error rate.",
        },
    )
