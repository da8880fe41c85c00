"""A small world whose DORA figures are computed by hand in ``test_metrics.py``: March 2025 (31 days) and the 31
days before it (29 January to 28 February), services Shop, Blog and Wiki, production and staging.

Shop in production, in March (minor releases have a 30-day hotfix window, patch releases 14 days):

    D1   3 Mar 12:00  succeeded  minor R1, first commit 2 Mar 06:00 (lead 30 h), change C1 (normal)
    H1   5 Mar 12:00  succeeded  patch R2, first commit 5 Mar 06:00 (lead 6 h), change C2 (emergency)
                                 -> a hotfix 2 days after D1, inside R2's 14-day window: D1 failed
    D3  10 Mar 12:00  succeeded  minor R3, no commit, registered 8 Mar 12:00 (lead 48 h), change C4 (normal)
    H2  26 Mar 12:00  succeeded  patch R4, first commit 25 Mar 16:00 (lead 20 h), change C3 (emergency)
                                 -> 16 days after D3, outside R4's 14-day window (inside D3's own 30): D3 not failed
    D4  28 Mar 12:00  rolled back  minor R5                                  -> failed
        29 Mar 10:00  aborted before it started                              -> not a deployment
    D4c 29 Mar 12:00  aborted after it started, no package                   -> failed
    D5   2 Apr 12:00  failed (after the period)                              -> not counted
    S1  12 Mar 12:00  failed, in staging                                     -> not production

Blog in production, in March:

    B0   4 Mar 12:00  succeeded  minor R10, first commit 3 Mar 12:00 (lead 24 h)
    B0r  6 Mar 12:00  succeeded  replaces B0, an older package of minor R9  -> B0 failed; B0r has no lead time
    B1  15 Mar 12:00  succeeded  minor R6, first commit 14 Mar 00:00 (lead 36 h); incident I1 names it -> failed
    B2  20 Mar 12:00  succeeded  no package
    HB   1 Apr 12:00  succeeded  patch R8 (after the period), 12 days after B2 -> B2 failed

Before the period (Shop): P0 10 Feb 12:00 succeeded, minor R7, first commit 10 Feb 00:00 (lead 12 h); D0 20 Feb
12:00 failed, minor R0 (a failure outside the period). Wiki has no deployment.

Incidents: I1 names B1, 16 Mar 10:00 → 12:00 (2 h); I4 names D4, 28 Mar 13:00 → 29 Mar 01:00 (12 h); I5 names
D4c, 30 Mar → resolved 2 Apr (outside); I3 names D0, 20 Feb 13:00 → 17:00 (4 h, previous period); I2 names only
release R2 (no deployment), 7 Mar 10:00 → 15:00; I8 names only R2, 13 Mar.

Early life support: H1's from 5 Mar 12:00 to 12 Mar 12:00 (I2 opened during it, I8 after); B1's from 15 Mar 12:00
to 22 Mar (I1 during it). Reviews: R2's (Shop) due 20 Mar and still due; R6's (Blog) due 25 Mar, submitted.

The deployments are written as they ended, not run: their DORA facts (``deployments.dora_facts``) are filled as
a migration fills those of existing rows.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from cmdb.choices import EnvironmentTier
from cmdb.models import Environment, Service
from deployments.choices import DeploymentState
from deployments.dora_facts import dora_facts_backfill
from deployments.models import Deployment, EarlyLifeSupport, Incident
from releases.choices import ChangeType, ReleaseType, ReviewState
from releases.models import PostImplementationReview, ReleasePackage
from tests.deployments.factories import EnvironmentFactory, ProcessFactory, ServiceFactory
from tests.releases.factories import ChangeFactory, PackageFactory, PolicyFactory, ReleaseFactory

MARCH = (date(2025, 3, 1), date(2025, 3, 31))


def at(month: int, day: int, hour: int = 12) -> datetime:
    return datetime(2025, month, day, hour, tzinfo=UTC)


@dataclass
class DoraWorld:
    production: Environment
    staging: Environment
    shop: Service
    blog: Service
    wiki: Service
    deployments: dict[str, Deployment] = field(default_factory=dict)


def dora_world() -> DoraWorld:
    world = DoraWorld(
        production=EnvironmentFactory(name="production", tier=EnvironmentTier.PRODUCTION),
        staging=EnvironmentFactory(name="staging", tier=EnvironmentTier.STAGING),
        shop=ServiceFactory(name="shop"),
        blog=ServiceFactory(name="blog"),
        wiki=ServiceFactory(name="wiki"),
    )
    minor = PolicyFactory(release_type=ReleaseType.MINOR, hotfix_window_days=30)
    patch = PolicyFactory(release_type=ReleaseType.PATCH, hotfix_window_days=14)
    processes = {service: ProcessFactory(service=service) for service in (world.shop, world.blog)}

    def package(name: str, service: Service, policy, first_commit=None, registered=None) -> ReleasePackage:
        release = ReleaseFactory(name=name, policy=policy, services=[service])
        return PackageFactory(release=release, first_commit_at=first_commit, registered_at=registered or at(1, 1))

    def deployment(name, service, finished, state=DeploymentState.SUCCEEDED, *, started=True, environment=None, **kw):
        world.deployments[name] = Deployment.objects.create(
            service=service,
            environment=environment or world.production,
            process=processes[service],
            model="big_bang",
            state=state,
            started_at=finished - timedelta(hours=1) if started else None,
            finished_at=finished,
            **kw,
        )
        return world.deployments[name]

    def change(kind: str):
        return ChangeFactory(change_type=kind, services=[world.shop])

    shop, blog = world.shop, world.blog
    deployment("P0", shop, at(2, 10), package=package("R7", shop, minor, at(2, 10, 0)))
    d0 = deployment("D0", shop, at(2, 20), DeploymentState.FAILED, package=package("R0", shop, minor, at(2, 1)))
    deployment("D1", shop, at(3, 3), package=package("R1", shop, minor, at(3, 2, 6)), change=change(ChangeType.NORMAL))
    r2 = package("R2", shop, patch, at(3, 5, 6))
    h1 = deployment("H1", shop, at(3, 5), package=r2, change=change(ChangeType.EMERGENCY))
    no_commit = package("R3", shop, minor, registered=at(3, 8))
    deployment("D3", shop, at(3, 10), package=no_commit, change=change(ChangeType.NORMAL))
    r4 = package("R4", shop, patch, at(3, 25, 16))
    deployment("H2", shop, at(3, 26), package=r4, change=change(ChangeType.EMERGENCY))
    d4 = deployment("D4", shop, at(3, 28), DeploymentState.ROLLED_BACK, package=package("R5", shop, minor, at(3, 27)))
    deployment("never started", shop, at(3, 29, 10), DeploymentState.ABORTED, started=False)
    d4c = deployment("D4c", shop, at(3, 29), DeploymentState.ABORTED)
    deployment("D5", shop, at(4, 2), DeploymentState.FAILED)
    deployment("S1", shop, at(3, 12), DeploymentState.FAILED, environment=world.staging)

    b0 = deployment("B0", blog, at(3, 4), package=package("R10", blog, minor, at(3, 3)))
    deployment("B0r", blog, at(3, 6), package=package("R9", blog, minor, at(1, 5)), replaces=b0)
    r6 = package("R6", blog, minor, at(3, 14, 0))
    b1 = deployment("B1", blog, at(3, 15), package=r6)
    deployment("B2", blog, at(3, 20))
    deployment("HB", blog, at(4, 1), package=package("R8", blog, patch, at(3, 31)))

    def incident(opened, resolved=None, **reference):
        return Incident.objects.create(
            title="trouble", severity="p2", opened_at=opened, resolved_at=resolved, **reference
        )

    incident(at(3, 16, 10), at(3, 16, 12), deployment=b1)  # I1
    incident(at(3, 28, 13), at(3, 29, 1), deployment=d4)  # I4
    incident(at(3, 30), at(4, 2), deployment=d4c)  # I5
    incident(at(2, 20, 13), at(2, 20, 17), deployment=d0)  # I3
    incident(at(3, 7, 10), at(3, 7, 15), release=r2.release)  # I2
    incident(at(3, 13), release=r2.release)  # I8

    EarlyLifeSupport.objects.create(
        deployment=h1, release=r2.release, state="exited", started_at=at(3, 5), exited_at=at(3, 12)
    )
    EarlyLifeSupport.objects.create(
        deployment=b1, release=r6.release, state="exited", started_at=at(3, 15), exited_at=at(3, 22)
    )
    PostImplementationReview.objects.create(
        release=r2.release, service=shop, owner=shop.owner, state=ReviewState.DUE, due_on=date(2025, 3, 20)
    )
    PostImplementationReview.objects.create(
        release=r6.release, service=blog, owner=blog.owner, state=ReviewState.SUBMITTED, due_on=date(2025, 3, 25)
    )
    dora_facts_backfill()
    return world
