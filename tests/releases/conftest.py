"""A small world for release governance tests: one person per role, a service, environments, a policy, a release."""

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from cmdb.choices import EnvironmentTier
from cmdb.models import ConfigurationItem, Environment, Service
from rdm_site.roles import Role
from releases import services
from releases.choices import BaselineKind, ChangeType, ReleaseType
from releases.models import ChangeRecord, Release, ReleasePackage, ReleasePolicy
from tests.factories import UserFactory
from tests.releases.factories import (
    ConfigurationItemFactory,
    EnvironmentFactory,
    PolicyFactory,
    ReleaseFactory,
    ServiceFactory,
)

SHA = "0123456789abcdef" * 4


@dataclass
class People:
    rm: User  # release manager of the world's release
    rm2: User  # another release manager: may approve it
    ca: User
    ea: User
    dm: User
    dm2: User
    ci: User
    so: User  # owns the world's service
    so_other: User  # owns another service
    viewer: User


@dataclass
class World:
    people: People
    service: Service
    other_service: Service
    production: Environment
    staging: Environment
    ci: ConfigurationItem
    policy: ReleasePolicy
    release: Release

    def reload(self) -> Release:
        self.release.refresh_from_db()
        return self.release


def make_people() -> People:
    return People(
        rm=UserFactory(username="rm", roles=[Role.RELEASE_MANAGER]),
        rm2=UserFactory(username="rm2", roles=[Role.RELEASE_MANAGER]),
        ca=UserFactory(username="ca", roles=[Role.CHANGE_APPROVER]),
        ea=UserFactory(username="ea", roles=[Role.EMERGENCY_APPROVER, Role.CHANGE_APPROVER]),
        dm=UserFactory(username="dm", roles=[Role.DEPLOYMENT_MANAGER]),
        dm2=UserFactory(username="dm2", roles=[Role.DEPLOYMENT_MANAGER]),
        ci=UserFactory(username="ci", roles=[Role.BUILD_ENGINEER]),
        so=UserFactory(username="so", roles=[Role.SERVICE_OWNER]),
        so_other=UserFactory(username="so_other", roles=[Role.SERVICE_OWNER]),
        viewer=UserFactory(username="viewer", roles=[Role.VIEWER]),
    )


def make_world(people: People | None = None, **release_fields) -> World:
    people = people or make_people()
    service = ServiceFactory(name="Shop", slug="shop", owner=people.so, stakeholders=[people.viewer, people.so_other])
    other = ServiceFactory(name="Search", slug="search", owner=people.so_other, stakeholders=[people.viewer])
    production = EnvironmentFactory(name="production", tier=EnvironmentTier.PRODUCTION)
    staging = EnvironmentFactory(name="staging", tier=EnvironmentTier.STAGING)
    ci = ConfigurationItemFactory(name="shop-app", environment=production, service=service)
    policy = PolicyFactory(name="minor", release_type=ReleaseType.MINOR, required_test_suites=["regression"])
    release = ReleaseFactory(
        name="Shop",
        version="2.0",
        policy=policy,
        release_manager=people.rm,
        requested_by=people.rm,
        services=[service],
        **release_fields,
    )
    return World(people, service, other, production, staging, ci, policy, release)


@pytest.fixture
def people(db) -> People:
    return make_people()


@pytest.fixture
def world(people) -> World:
    return make_world(people)


# --- driving a release to green through the services -----------------------------------------------


def approve_plan(world: World) -> Release:
    """Draft → planned → submitted → approved (one approval, by the service owner)."""
    p, release = world.people, world.release
    services.release_plan(release=release, actor=p.rm)
    services.release_submit(release=release, actor=p.rm)
    services.release_approve(release=release, actor=p.so)
    return world.reload()


def validated_package(world: World, version: str = "b1") -> ReleasePackage:
    p = world.people
    package = services.package_register(
        release=world.release,
        actor=p.ci,
        version=version,
        artifacts=[{"name": "shop.tar.gz", "uri": "https://artifacts.example/shop.tar.gz", "sha256": SHA}],
        commits=[{"sha": "abc1234def", "message": "Faster checkout", "author": "ann"}],
        work_items=["SHOP-1"],
    )
    services.package_mark_built(package=package, actor=p.ci)
    services.package_validate(package=package, actor=p.dm)
    services.test_run_record(package=package, actor=p.ci, suite="regression", passed=120)
    package.refresh_from_db()
    return package


def add_unit(world: World) -> None:
    if not world.release.units.exists():
        services.release_unit_add(
            release=world.release,
            actor=world.people.ci,
            name="shop-app",
            kind="application_artifact",
            configuration_items=[world.ci],
        )


def remaining_gates(world: World) -> None:
    """Rollback plan, stakeholder notice, verified backups, units with CIs and a pre-release baseline."""
    p, release = world.people, world.release
    services.rollback_plan_write(release=release, actor=p.rm, steps="1. Redeploy 1.9\n2. Restore the database.")
    services.rollback_rehearsal_record(release=release, actor=p.dm, link="https://wiki.example/rehearsal")
    services.stakeholders_notify(release=release, actor=p.rm)
    evidence = services.gate_evidence_record(release=release, actor=p.ci, note="nightly backup", tool="backup-bot")
    services.gate_evidence_verify(evidence=evidence, actor=p.dm)
    add_unit(world)
    services.release_baseline_take(release=release, actor=p.rm, kind=BaselineKind.PRE_RELEASE)


def approved_change(world: World, start, hours: int = 4, change_type=ChangeType.NORMAL) -> ChangeRecord:
    """An approved change from ``start`` for ``hours``. A schedule that is (nearly) under way was asked for
    ahead of its lead time: it is asked for a day later than now, then time passes (the schedule moves back).
    """
    p = world.people
    asked = max(start, timezone.now() + timedelta(days=world.policy.lead_time_days + 1))
    change = services.change_create(
        actor=p.rm,
        change_type=change_type,
        title="Deploy Shop 2.0",
        planned_start=asked,
        planned_end=asked + timedelta(hours=hours),
        services=[world.service],
        release=world.release,
    )
    services.change_submit(change=change, actor=p.rm)
    approver = p.ea if change_type == ChangeType.EMERGENCY else p.ca
    services.change_assess(change=change, actor=approver, assessment="Low impact.")
    services.change_approve(change=change, actor=approver)
    if asked != start:
        ChangeRecord.objects.filter(pk=change.pk).update(
            planned_start=start, planned_end=start + timedelta(hours=hours)
        )
    change.refresh_from_db()
    return change


def green_release(world: World, *, change_start=None) -> tuple[Release, ChangeRecord]:
    """A release that is ready for production, with an approved change from ``change_start`` for four hours."""
    add_unit(world)  # before the approval: adding a unit later withdraws it
    approve_plan(world)
    validated_package(world)
    remaining_gates(world)
    services.release_mark_ready(release=world.release, actor=world.people.rm)
    change = approved_change(world, change_start or timezone.now() + timedelta(days=1))
    return world.reload(), change


def accept_review(world: World) -> None:
    """The review that fell due when ELS exited, completed and submitted by the service owner and accepted by
    the release manager (the release closes with it when its post-release baseline is there).
    """
    p = world.people
    review = world.reload().review
    services.review_update(review=review, actor=p.so, data={"objectives_met": "yes"})
    services.review_submit(review=review, actor=p.so)
    services.review_accept(review=review, actor=p.rm)
