"""Package services: registering (and superseding), building, validating by someone else, test runs, units."""

import pytest
from django.contrib.auth.models import User

from rdm_site.selectors import audit_events_for
from releases import services
from releases.choices import PackageState, PackageTransition, ReleaseState
from releases.exceptions import IllegalTransition, InvalidInput, NotAllowed, PackageImmutable, UnmetConditions
from releases.models import Approval, Release
from releases.selectors import release_current_package
from tests.releases.conftest import SHA, approve_plan
from tests.releases.factories import PackageFactory, ReleaseFactory
from tests.releases.test_models import PACKAGE_MOVES

pytestmark = pytest.mark.django_db

ARTIFACT = {"name": "shop.tar.gz", "uri": "oci://registry.example/shop:2.0", "sha256": SHA.upper()}

PACKAGE_SERVICES = {
    PackageTransition.MARK_BUILT: lambda p, u: services.package_mark_built(package=p, actor=u),
    PackageTransition.VALIDATE: lambda p, u: services.package_validate(package=p, actor=u),
    PackageTransition.REJECT: lambda p, u: services.package_reject(package=p, actor=u, reason="broken"),
}


@pytest.mark.parametrize(
    ("transition", "state"),
    [(t, s) for t in PACKAGE_SERVICES for s in PackageState if s not in PACKAGE_MOVES[t]],
)
def test_each_package_service_refuses_an_illegal_move_naming_state_and_transition(transition, state):
    package = PackageFactory(state=state)
    admin = User.objects.create_superuser("boss", "boss@rdm.example", "x")
    with pytest.raises(IllegalTransition) as refused:
        PACKAGE_SERVICES[transition](package, admin)
    assert refused.value.state == state
    assert f"Cannot {transition.replace('_', ' ')} release package" in str(refused.value)
    assert f"it is {state}" in str(refused.value)


def test_registering_a_package_supersedes_the_previous_one(world):
    p = world.people
    # given a release with a built first package
    first = services.package_register(release=world.release, actor=p.ci, version="b1", artifacts=[ARTIFACT])
    services.package_mark_built(package=first, actor=p.ci)
    # when a second is registered
    second = services.package_register(
        release=world.release, actor=p.ci, version="b2", artifacts=[ARTIFACT], work_items=["SHOP-2"]
    )
    # then the first is superseded by it, and the second is the release's current package
    first.refresh_from_db()
    assert first.state == PackageState.SUPERSEDED
    assert first.superseded_by == second
    assert release_current_package(world.release) == second
    assert second.artifacts.get().sha256 == SHA  # digests are stored lower-case
    assert [e.action for e in audit_events_for(first)][-1] == "package.supersede"


def test_a_bad_digest_is_refused_as_invalid_input(world):
    with pytest.raises(InvalidInput, match="64 lower-case hexadecimal"):
        services.package_register(
            release=world.release, actor=world.people.ci, version="b1", artifacts=[{**ARTIFACT, "sha256": "abc"}]
        )


def test_only_build_engineers_register_packages(world):
    for user in (world.people.rm, world.people.dm, world.people.so):
        with pytest.raises(NotAllowed, match=r"releases\.register_package"):
            services.package_register(release=world.release, actor=user, version="b1")


def test_no_new_package_once_the_release_is_deploying():
    release = ReleaseFactory(state=ReleaseState.DEPLOYING)
    admin = User.objects.create_superuser("boss", "boss@rdm.example", "x")
    with pytest.raises(IllegalTransition, match=r"register a package for release .*: it is deploying"):
        services.package_register(release=release, actor=admin, version="b9")


def test_a_package_is_built_only_with_an_artifact(world):
    package = services.package_register(release=world.release, actor=world.people.ci, version="b1")
    with pytest.raises(UnmetConditions, match="at least one artifact"):
        services.package_mark_built(package=package, actor=world.people.ci)


def test_nobody_validates_a_package_they_built(world):
    p = world.people
    # given a Deployment Manager who also builds (holds both roles) and built the package
    p.dm.groups.add(*p.ci.groups.all())
    builder = User.objects.get(pk=p.dm.pk)
    package = services.package_register(release=world.release, actor=builder, version="b1", artifacts=[ARTIFACT])
    services.package_mark_built(package=package, actor=builder)
    # then validating or rejecting it is refused, saying why
    with pytest.raises(NotAllowed, match=r"dm may not validate package .*: they built its package \(segregation"):
        services.package_validate(package=package, actor=builder)
    with pytest.raises(NotAllowed, match="they built its package"):
        services.package_reject(package=package, actor=builder, reason="no")
    # while another Deployment Manager may
    services.package_validate(package=package, actor=p.dm2)
    package.refresh_from_db()
    assert package.state == PackageState.VALIDATED
    assert package.validated_by == p.dm2


@pytest.mark.parametrize("username", ["ci", "so", "ca", "viewer"])
def test_roles_without_the_permission_may_not_validate(world, username):
    package = services.package_register(
        release=world.release, actor=world.people.ci, version="b1", artifacts=[ARTIFACT]
    )
    services.package_mark_built(package=package, actor=world.people.ci)
    with pytest.raises(NotAllowed, match=r"releases\.validate_package"):
        services.package_validate(package=package, actor=getattr(world.people, username))


def test_a_validated_package_refuses_new_artifacts(world):
    p = world.people
    package = services.package_register(release=world.release, actor=p.ci, version="b1", artifacts=[ARTIFACT])
    services.package_mark_built(package=package, actor=p.ci)
    services.package_artifact_add(package=package, actor=p.ci, name="docs.zip", uri="s3://b/docs.zip", sha256=SHA)
    services.package_validate(package=package, actor=p.rm)
    with pytest.raises(PackageImmutable, match="Register a new package instead"):
        services.package_artifact_add(package=package, actor=p.ci, name="late.zip", uri="s3://b/late.zip", sha256=SHA)


def test_rejecting_a_package_needs_a_reason(world):
    p = world.people
    package = services.package_register(release=world.release, actor=p.ci, version="b1", artifacts=[ARTIFACT])
    services.package_mark_built(package=package, actor=p.ci)
    with pytest.raises(InvalidInput):
        services.package_reject(package=package, actor=p.rm, reason="")
    services.package_reject(package=package, actor=p.rm, reason="Smoke test crashed")
    package.refresh_from_db()
    assert (package.state, package.rejection_reason, package.rejected_by) == ("rejected", "Smoke test crashed", p.rm)


def test_test_runs_are_recorded_against_a_current_package_only(world):
    p = world.people
    first = services.package_register(release=world.release, actor=p.ci, version="b1")
    run = services.test_run_record(package=first, actor=p.ci, suite="regression", passed=10, failed_minor=2)
    assert (run.recorded_by, run.passes_gate) == (p.ci, True)
    services.package_register(release=world.release, actor=p.ci, version="b2")
    with pytest.raises(IllegalTransition, match=r"record test run release package .*: it is superseded"):
        services.test_run_record(package=first, actor=p.ci, suite="regression", passed=10)


def test_units_name_the_cis_they_change(world):
    unit = services.release_unit_add(
        release=world.release,
        actor=world.people.ci,
        name="orders-migration",
        kind="database_migration",
        reversible=False,
        configuration_items=[world.ci],
    )
    assert list(unit.configuration_items.all()) == [world.ci]
    assert not unit.reversible


def test_editing_a_unit_of_an_approved_release_withdraws_the_approvals(world):
    # given an approved plan with a reversible migration unit
    unit = services.release_unit_add(
        release=world.release, actor=world.people.ci, name="orders-migration", kind="database_migration"
    )
    release = approve_plan(world)
    assert release.state == ReleaseState.APPROVED
    # when the unit is changed to an irreversible migration
    services.release_unit_update(unit=unit, actor=world.people.ci, data={"reversible": False})
    # then approvers must decide again, and the trail says what changed
    release.refresh_from_db()
    assert release.state == ReleaseState.SUBMITTED
    assert "unit orders-migration changed (reversible)" in Approval.objects.get(release=release).withdrawn_reason
    edit = audit_events_for(release).get(action="release.unit_update")
    assert edit.changes == {"orders-migration.reversible": [True, False]}


def test_an_unchanged_unit_edit_withdraws_nothing(world):
    unit = services.release_unit_add(
        release=world.release, actor=world.people.ci, name="api", kind="application_artifact"
    )
    approve_plan(world)
    services.release_unit_update(unit=unit, actor=world.people.ci, data={"name": "api"})
    assert Approval.objects.get(release=world.release).withdrawn_at is None


def test_removing_a_unit_withdraws_the_approvals_and_the_trail_keeps_the_unit(world):
    # given an approved plan with a unit changing the world's CI
    unit = services.release_unit_add(
        release=world.release, actor=world.people.ci, name="orders-migration", kind="database_migration",
        version="7", configuration_items=[world.ci],
    )  # fmt: skip
    release = approve_plan(world)
    # when the release manager takes the unit out of the plan
    services.release_unit_remove(unit=unit, actor=world.people.rm)
    # then it is gone, approvers must decide again, and the trail names what was removed
    release.refresh_from_db()
    assert not release.units.exists()
    assert release.state == ReleaseState.SUBMITTED
    assert "unit orders-migration was removed" in Approval.objects.get(release=release).withdrawn_reason
    removal = audit_events_for(release).get(action="release.unit_remove")
    assert removal.changes == {"unit": [f"orders-migration 7 ({world.ci.name})", None]}


def test_a_unit_is_removed_only_by_those_who_change_units_and_while_a_package_may_be_registered(world):
    unit = services.release_unit_add(
        release=world.release, actor=world.people.ci, name="api", kind="application_artifact"
    )
    for nobody in (world.people.viewer, world.people.ca):
        with pytest.raises(NotAllowed, match="may not remove unit api"):
            services.release_unit_remove(unit=unit, actor=nobody)
    Release.objects.filter(pk=world.release.pk).update(state=ReleaseState.DEPLOYED)
    with pytest.raises(IllegalTransition, match=r"Cannot remove a unit from release .*: it is deployed"):
        services.release_unit_remove(unit=unit, actor=world.people.rm)
    assert list(world.release.units.values_list("name", flat=True)) == ["api"]
    assert not audit_events_for(world.release).filter(action="release.unit_remove").exists()


def test_the_release_manager_changes_units_with_the_plan_and_a_refused_unit_saves_none_of_it(world):
    p = world.people
    kept = services.release_unit_add(release=world.release, actor=p.rm, name="api", kind="application_artifact")
    removed = services.release_unit_add(release=world.release, actor=p.ci, name="db", kind="database_migration")
    edit = {
        "release": world.release,
        "actor": p.rm,
        "data": {"description": "Edited."},
        "units_changed": [(kept, {"version": "2.1"})],
        "units_removed": [removed],
    }
    # a new unit the service refuses: nothing of the edit is kept
    with pytest.raises(InvalidInput, match="unit 'worker' is not valid: kind"):
        services.release_update_with_units(**edit, units_added=[{"name": "worker", "kind": "nonsense"}])
    release = world.reload()
    assert (release.description, sorted(release.units.values_list("name", "version"))) == (
        "What it brings.",
        [("api", ""), ("db", "")],
    )
    # a valid one: all of it is
    services.release_update_with_units(**edit, units_added=[{"name": "db", "kind": "database_migration"}])
    release = world.reload()
    assert release.description == "Edited."
    assert sorted(release.units.values_list("name", "version")) == [("api", "2.1"), ("db", "")]
    assert release.units.get(name="db").pk != removed.pk  # removed first, so the new unit may take its name


def test_the_first_commit_time_is_kept_with_the_package_and_follows_its_commits(world):
    # given commits with their times (one without), as a pipeline posts them
    p = world.people
    commits = [
        {"sha": "b2", "committed_at": "2026-11-30T10:00:00+01:00"},
        {"sha": "a1", "committed_at": "2026-11-29T08:30:00Z"},
        {"sha": "c3"},
    ]
    # when the package is registered, then the earliest time is its first commit time
    package = services.package_register(release=world.release, actor=p.ci, version="b1", commits=commits)
    assert package.first_commit_at.isoformat() == "2026-11-29T08:30:00+00:00"
    # and when its commits are edited, it follows them; without any time it is unknown
    services.package_update(package=package, actor=p.ci, data={"commits": [{"sha": "c3"}]})
    package.refresh_from_db()
    assert package.first_commit_at is None
    with pytest.raises(InvalidInput, match="'committed_at' is not an ISO 8601"):
        services.package_update(package=package, actor=p.ci, data={"commits": [{"sha": "d4", "committed_at": "soon"}]})
