"""Demo life after go-live: Early Life Support, incidents, a review due, an accepted review whose lesson became a
knowledge article, and six months of production history for the DORA page. Loading twice changes nothing.

Needs the other demo loaders first (users, CMDB, releases, deployments). Three releases go live here and now,
driven through the services by the demo users and run by the engine, so their approvals, checklist, ELS
periods, incidents, reviews, notifications and audit trail are the real ones:

- Search 2.7 went live twelve days ago; its ELS exited, its review was written by its owner, accepted, and its
  lesson became a knowledge article; the release is closed.
- Customer Portal 1.8 went live five days ago; a P3 came and went; its ELS exited and its review is due for
  its owner (sophie.owner), pre-filled from the rollout.
- Payments 2.3 went live yesterday and is in ELS (oscar.owner on duty) with an open P2 that monitoring raised
  on payments-api, tied to the deployment by its CI.

They deploy now under standard changes from a template the CAB pre-approved (continuous delivery: no lead
time), inside a window open around the clock for these three services only, which closes once they are live
(the other demo releases keep the Tuesday and Thursday nights); in a freeze (the year-end one) an Emergency
Approver overrides it for them. "Days ago" is the one liberty taken: once live, each rollout, its ELS period
and its incidents are moved back in time (``_days_pass``), as a clock would, so the minimum ELS duration has
passed when the owner exits.

The six months of history (``_production_history``) cannot run through the live engine, windows and changes:
those rows are bulk-created, dated and consistent (commits before registration before the rollout, incidents
after it), and say so in their outcome and description.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from random import Random

from django.db.models import F
from django.utils import timezone

from cmdb.choices import CiType
from cmdb.models import ConfigurationItem, Service
from deployments import services as deployment_services
from deployments.choices import CorrelationMethod, DeploymentModel, DeploymentState, IncidentSeverity, IncidentState
from deployments.demo import PROCESS_NAME, instant_process, run_here
from deployments.dora_facts import dora_facts_backfill
from deployments.els import els_exit
from deployments.incidents import incident_open, incident_resolve
from deployments.models import Deployment, EarlyLifeSupport, Incident
from releases import services
from releases.choices import ChangeType, ObjectivesMet, PackageState, ReleaseState, ReleaseType, Risk, UnitKind
from releases.demo import _Demo
from releases.models import ChangeRecord, ChangeTemplate, Release, ReleasePackage, ReleaseWindow
from releases.selectors import change_freezes

LIVE_SERVICES = ("Search", "Customer Portal", "Payments")
TEMPLATE_NAME = "Reversible release through the pipeline"
WINDOW_NAME = "Continuous delivery: around the clock"
HISTORY_NOTE = "Demo history: loaded as it ended, not run by the engine."


@dataclass(frozen=True)
class GoLive:
    """A release that goes to production during the load: its service, unit, build and story."""

    service: str
    version: str
    ci: str
    description: str
    commit: str
    work_item: str
    digest: str
    days_ago: int


SEARCH = GoLive(
    "Search", "2.7", "search-api", "Synonyms for product search.", "Synonyms from the catalogue", "SRCH-51",
    "18ac3e7343f016890c510e93f935261169d9e3f565436429830faf0934f4f8e4", 12,
)  # fmt: skip
PORTAL = GoLive(
    "Customer Portal", "1.8", "customer-portal", "Invoices as PDF and a clearer order history.", "Invoice PDFs",
    "CP-112", "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d", 5,
)  # fmt: skip
PAYMENTS = GoLive(
    "Payments", "2.3", "payments-api", "Card payments through the new acquirer.", "Route cards to the new acquirer",
    "PAY-70", "2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6", 1,
)  # fmt: skip


def _template(demo: _Demo) -> ChangeTemplate:
    template, _ = ChangeTemplate.objects.get_or_create(
        name=TEMPLATE_NAME,
        defaults={
            "description": "Deploy a built, tested and reversible release through the pipeline; rollback rehearsed.",
            "risk": Risk.LOW,
            "created_by": demo.user("rita.release"),
        },
    )
    template.services.set([demo.services[name] for name in LIVE_SERVICES])
    if template.approved_at is None:
        template = services.change_template_approve(template=template, actor=demo.user("carl.cab"))
    return template


def _window(demo: _Demo) -> ReleaseWindow:
    """A window open every day all day, for the services that deploy during the load only (it is closed once
    they went live: ``_window_close``)."""
    window, _ = ReleaseWindow.objects.get_or_create(
        name=WINDOW_NAME,
        defaults={
            "description": "Opened for the first go-lives of these services under the pre-approved template, then "
            "closed: their next releases wait for the Tuesday and Thursday nights.",
            "first_date": date(2025, 1, 1),
            "start_time": time(0, 0),
            "rrule": "FREQ=DAILY",
            "duration": timedelta(days=1),
            "time_zone": "UTC",
        },
    )
    window.environments.set([demo.production])
    window.services.set([demo.services[name] for name in LIVE_SERVICES])
    return window


def _go_live(demo: _Demo, template: ChangeTemplate, window: ReleaseWindow, live: GoLive) -> Deployment | None:
    """Plan, approve (by the template's pre-approval), build, test, prepare and deploy the release to production
    now; the engine opens and starts its ELS period. None when the release exists already."""
    policy = demo.policies[ReleaseType.MINOR]
    release = demo.release(
        name=live.service,
        version=live.version,
        release_type=ReleaseType.MINOR,
        service=live.service,
        start=demo.now + timedelta(days=policy.lead_time_days, hours=1),
        description=live.description,
        units=[(live.ci, UnitKind.APPLICATION_ARTIFACT, f"{live.version}.0", True, [live.ci])],
    )
    if release is None:
        return None
    rita = demo.user("rita.release")
    today = window.occurrence_at(demo.now)
    change = services.change_create(
        actor=rita,
        change_type=ChangeType.STANDARD,
        template=template,
        title=f"Deploy {release} to production",
        planned_start=today.start,
        planned_end=today.end,
        release=release,
        configuration_items=[demo.ci(live.ci)],
    )
    services.change_submit(change=change, actor=rita)  # the template's pre-approval approves the change
    services.release_plan(release=release, actor=rita)
    services.release_submit(release=release, actor=rita)  # and, standing for the plan's approval, the release
    demo.package(
        release,
        f"{live.version}.0+{len(live.commit)}",
        live.digest,
        commits=[
            {
                "sha": live.digest[:10],
                "message": live.commit,
                "author": "mia",
                "committed_at": (demo.now - timedelta(days=live.days_ago + 3)).isoformat(),
            },
        ],
        work_items=[live.work_item],
        results=[("regression", 140, 0, 0, 1), ("smoke", 25, 0, 0, 0)],
    )
    demo.gates(release)
    services.release_mark_ready(release=release, actor=rita)
    if change_freezes(change).exists():
        services.freeze_override(
            change=change,
            actor=demo.user("emma.emergency"),
            reason="Reversible release under the pre-approved template; the owner watches it in ELS.",
        )
    manager = demo.user("dan.deploy")
    deployment = deployment_services.deployment_create(
        actor=manager,
        process=instant_process(demo.services[live.service]),
        environment=demo.production,
        package=release.packages.get(),
        change=ChangeRecord.objects.get(pk=change.pk),
    )
    deployment_services.deployment_start(deployment=deployment, actor=manager)
    return run_here(deployment)


def _days_pass(deployment: Deployment, days: int) -> None:
    """Demo time: the rollout, its package's, release's and change's dates, its ELS period and its incidents move
    ``days`` into the past. The plan, which the policy's lead time put days after the load, becomes the rollout's
    own slot, asked for the lead time before it."""
    earlier = timedelta(days=days)
    release = deployment.package.release
    asked = earlier + timedelta(days=release.policy.lead_time_days, hours=1)
    Deployment.objects.filter(pk=deployment.pk).update(
        started_at=F("started_at") - earlier, finished_at=F("finished_at") - earlier
    )
    Release.objects.filter(pk=release.pk).update(
        planned_start=F("deployment_started_at") - earlier - timedelta(minutes=5),
        planned_end=F("deployment_started_at") - earlier + timedelta(hours=2),
        submitted_at=F("submitted_at") - asked,
        approved_at=F("approved_at") - asked,
        ready_at=F("ready_at") - earlier,
        deployment_started_at=F("deployment_started_at") - earlier,
        deployed_at=F("deployed_at") - earlier,
        els_started_at=F("els_started_at") - earlier,
    )
    ChangeRecord.objects.filter(release=release).update(
        planned_start=F("planned_start") - earlier, planned_end=F("planned_end") - earlier
    )
    ReleasePackage.objects.filter(pk=deployment.package_id).update(
        registered_at=F("registered_at") - earlier,
        built_at=F("built_at") - earlier,
        validated_at=F("validated_at") - earlier,
    )
    Incident.objects.filter(deployment=deployment).update(
        opened_at=F("opened_at") - earlier,
        acknowledged_at=F("acknowledged_at") - earlier,
        resolved_at=F("resolved_at") - earlier,
    )
    EarlyLifeSupport.objects.filter(deployment=deployment).update(
        started_at=F("started_at") - earlier,
        planned_end=F("planned_end") - earlier,
        original_end=F("original_end") - earlier,
    )


def _reviewed_and_closed(demo: _Demo, template: ChangeTemplate, window: ReleaseWindow) -> None:
    deployment = _go_live(demo, template, window, SEARCH)
    if deployment is None:
        return
    _days_pass(deployment, SEARCH.days_ago)
    oscar, rita = demo.user("oscar.owner"), demo.user("rita.release")
    els_exit(els=deployment.early_life_support, actor=oscar, reason="Quiet since go-live.")
    release = Release.objects.get(pk=deployment.package.release_id)
    review = release.review
    services.review_update(
        review=review,
        actor=oscar,
        data={
            "objectives_met": ObjectivesMet.YES,
            "went_well": "- Synonyms raised the click-through on searches by 6%.\n- The rollout took four minutes.",
            "went_badly": "- The synonym list was loaded by hand in staging.",
            "lessons": [
                "Load search synonyms with the release, not by hand\n"
                "The synonym list is part of the release package: a hand-loaded list in staging hid a missing "
                "entry until production. Ship it as a unit of the release and check it in the smoke test."
            ],
        },
    )
    services.review_submit(review=review, actor=oscar)  # RDM took the post-release baseline after the rollout
    services.review_accept(review=review, actor=rita, reason="Clear lesson; thanks.")


def _review_due(demo: _Demo, template: ChangeTemplate, window: ReleaseWindow) -> None:
    deployment = _go_live(demo, template, window, PORTAL)
    if deployment is None:
        return
    incident, _ = incident_open(
        actor=demo.user("dan.deploy"),
        title="Invoice PDFs slow for large orders",
        severity=IncidentSeverity.P3,
        description="Orders with more than 200 lines take 20 seconds to render.",
        ci=demo.ci(PORTAL.ci),
    )
    incident_resolve(incident=incident, actor=demo.user("dan.deploy"), reason="Rendering moved to the worker.")
    _days_pass(deployment, PORTAL.days_ago)
    els_exit(els=deployment.early_life_support, actor=demo.user("sophie.owner"), reason="One P3, resolved.")


def _in_early_life_support(demo: _Demo, template: ChangeTemplate, window: ReleaseWindow) -> None:
    deployment = _go_live(demo, template, window, PAYMENTS)
    if deployment is None:
        return
    incident_open(
        actor=None,  # monitoring, through the API
        title="Card payment latency above 2 s",
        severity=IncidentSeverity.P2,
        description="p95 latency of POST /payments at 2.4 s for 15 minutes (threshold 2 s).",
        ci=demo.ci(PAYMENTS.ci),
        source="alertmanager",
        external_id="payments-api-latency-p95",
    )
    _days_pass(deployment, PAYMENTS.days_ago)


# --- demo history ---------------------------------------------------------------------------------------------

HISTORY_DAYS = 182
# Service, version prefix, days between production deployments. Not the Web Shop: its production record is
# left to the demo's own story (5.1 ready to go, and what people try with it).
HISTORY = [
    ("Payments", "1", 5),
    ("Customer Portal", "0", 7),
    ("Search", "1", 6),
    ("Notifications", "0.8", 9),
]
AUTHORS = ("ann", "raj", "li", "mia", "tom")


class _History:
    """Production deployment history, bulk-created: rows are collected, then written in a few queries."""

    def __init__(self, demo: _Demo):
        self.demo = demo
        self.random = Random(2026)  # noqa: S311 — not for secrets: the same history on every load
        self.releases, self.packages, self.deployments, self.incidents = [], [], [], []
        self.release_services = []

    def deploy(self, service: Service, version: str, release_type: str, finished: datetime, state: str) -> Deployment:
        """A release of ``service`` built from commits days before and deployed to production at ``finished``."""
        demo, rng = self.demo, self.random
        age = (demo.now - finished).days / HISTORY_DAYS  # 1 six months ago, 0 today: the team gets faster
        first_commit = finished - timedelta(days=rng.uniform(1, 3) + 9 * age * rng.random(), hours=rng.randint(0, 8))
        registered = finished - (finished - first_commit) / 3
        started = finished - timedelta(minutes=rng.randint(12, 45))
        ended = {
            DeploymentState.SUCCEEDED: ReleaseState.CLOSED,
            DeploymentState.FAILED: ReleaseState.FAILED,
            DeploymentState.ROLLED_BACK: ReleaseState.ROLLED_BACK,
        }[state]
        release = Release(
            name=service.name,
            version=version,
            release_type=release_type,
            policy=demo.policies[release_type],
            state=ended,
            description=HISTORY_NOTE,
            planned_start=started,
            planned_end=started + timedelta(hours=2),
            release_manager=demo.user("rita.release"),
            requested_by=demo.user("rita.release"),
            submitted_at=registered,
            approved_at=registered + timedelta(hours=4),
            ready_at=started - timedelta(hours=2),
            deployment_started_at=started,
            deployed_at=finished if state == DeploymentState.SUCCEEDED else None,
            ended_at=finished,
        )
        package = ReleasePackage(
            release=release,
            version=f"{version}+{rng.randint(100, 999)}",
            state=PackageState.VALIDATED,
            built_by=demo.user("bill.build"),
            commits=[
                {
                    "sha": f"{rng.getrandbits(40):010x}",
                    "message": f"{service.name}: change {n + 1}",
                    "author": rng.choice(AUTHORS),
                    "committed_at": (first_commit + (registered - first_commit) * n / 6).isoformat(),
                }
                for n in range(rng.randint(1, 6))
            ],
            first_commit_at=first_commit,
            registered_at=registered,
            built_at=registered + timedelta(minutes=20),
            validated_by=demo.user("dan.deploy"),
            validated_at=registered + timedelta(hours=6),
        )
        deployment = Deployment(
            service=service,
            environment=demo.production,
            process=service.deployment_processes.get(name=PROCESS_NAME),
            package=package,
            version=package.version,
            model=DeploymentModel.BIG_BANG,
            requested_by=demo.user("dan.deploy"),
            state=state,
            started_at=started,
            finished_at=finished,
            outcome=HISTORY_NOTE,
        )
        self.releases.append(release)
        self.release_services.append((release, service))
        self.packages.append(package)
        self.deployments.append(deployment)
        return deployment

    def incident(self, deployment: Deployment, severity: str, title: str) -> None:
        """An incident the deployment caused, opened hours after it and resolved (faster as time goes on)."""
        rng = self.random
        opened = deployment.finished_at + timedelta(hours=rng.uniform(1, 30))
        age = (self.demo.now - opened).days / HISTORY_DAYS
        resolved = opened + timedelta(hours=rng.uniform(0.3, 2) + 10 * age * rng.random())
        closed = resolved + timedelta(hours=4) if resolved + timedelta(days=1) < self.demo.now else None
        self.incidents.append(
            Incident(
                title=title,
                severity=severity,
                state=IncidentState.CLOSED if closed else IncidentState.RESOLVED,
                deployment=deployment,
                release=deployment.package.release,
                ci=_application_ci(deployment.service),
                correlation=CorrelationMethod.CI,
                source="alertmanager",
                opened_at=opened,
                acknowledged_at=opened + timedelta(minutes=rng.randint(3, 25)),
                resolved_at=resolved,
                closed_at=closed,
                description=HISTORY_NOTE,
            )
        )

    def save(self) -> None:
        Release.objects.bulk_create(self.releases)
        Release.services.through.objects.bulk_create(
            Release.services.through(release_id=release.pk, service_id=service.pk)
            for release, service in self.release_services
        )
        for package in self.packages:
            package.release_id = package.release.pk
        ReleasePackage.objects.bulk_create(self.packages)
        for deployment in self.deployments:
            deployment.package_id = deployment.package.pk
        Deployment.objects.bulk_create(self.deployments)
        for incident in self.incidents:
            incident.deployment_id, incident.release_id = incident.deployment.pk, incident.release.pk
        Incident.objects.bulk_create(self.incidents)
        # created when they happened (``created`` is set on insert), so lists show the newest records first
        Release.objects.filter(pk__in=[release.pk for release in self.releases]).update(created=F("submitted_at"))
        Deployment.objects.filter(pk__in=[deployment.pk for deployment in self.deployments]).update(
            created=F("started_at")
        )


def _application_ci(service: Service) -> ConfigurationItem:
    return ConfigurationItem.objects.filter(
        service=service, environment__name="production", ci_type=CiType.APPLICATION
    ).first()


def _production_history(demo: _Demo) -> None:
    """Six months of production deployments of the demo services, up to two days ago, beside the releases above:
    mostly successes, failures and rollbacks becoming rarer, a hotfix after some of them, incidents that
    deployments caused and were resolved. The DORA page's trends come from here."""
    first_service, first_prefix, _ = HISTORY[0]
    if Release.objects.filter(name=first_service, version=f"{first_prefix}.1").exists():
        return
    history = _History(demo)
    rng = history.random
    start = datetime.combine(demo.now.date() - timedelta(days=HISTORY_DAYS), time(21, 0), tzinfo=UTC)
    for name, prefix, every in HISTORY:
        service = demo.services[name]
        finished, number = start + timedelta(days=rng.randint(0, every), minutes=rng.randint(0, 120)), 0
        while finished < demo.now - timedelta(days=2):
            number += 1
            version = f"{prefix}.{number}"
            age = (demo.now - finished).days / HISTORY_DAYS
            draw = rng.random()
            failed_share = 0.08 + 0.22 * age
            if draw < failed_share / 2:
                state = DeploymentState.FAILED
            elif draw < failed_share:
                state = DeploymentState.ROLLED_BACK
            else:
                state = DeploymentState.SUCCEEDED
            deployment = history.deploy(service, version, ReleaseType.MINOR, finished, state)
            if state == DeploymentState.SUCCEEDED and rng.random() < 0.1 + 0.2 * age:
                history.incident(deployment, rng.choice((IncidentSeverity.P2, IncidentSeverity.P3)), "Error rate up")
            if state != DeploymentState.SUCCEEDED and rng.random() < 0.6:
                hotfix = history.deploy(
                    service, f"{version}.1", ReleaseType.PATCH, finished + timedelta(days=1), DeploymentState.SUCCEEDED
                )
                if rng.random() < 0.5:
                    history.incident(hotfix, IncidentSeverity.P3, "Retries after the hotfix")
            finished += timedelta(days=every + rng.randint(-1, 2), minutes=rng.randint(-90, 90))
    history.save()


def demo_after_go_live_load(now: datetime | None = None) -> None:
    """Load the demo of life after go-live (idempotent), dated from ``now`` (today)."""
    demo = _Demo(now or timezone.now())
    _production_history(demo)
    template, window = _template(demo), _window(demo)
    for build in (_reviewed_and_closed, _review_due, _in_early_life_support):
        build(demo, template, window)
    if window.active:
        services.window_update(window=window, actor=demo.user("rita.release"), data={"active": False})
    # the history was written as it ended, not run, and rollouts were moved into the past: DORA's facts follow
    dora_facts_backfill()
