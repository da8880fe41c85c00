"""Packages, their artifacts and test runs, and the units of a release (registered by pipelines, or changed with
the plan by its release manager).

A new package supersedes the previous one and withdraws the approvals given to the release plan:
approvers vouched for what they saw, not for a rebuild.
"""

from collections.abc import Iterable

from django.contrib.auth.models import User
from django.db import transaction

from rdm_site.actions import action_ensure
from rdm_site.changes import apply_changes
from rdm_site.domain import bounded_text, ensure_allowed, ensure_conditions, locked, now, require_text, validated
from rdm_site.transitions import transition_record
from releases import permissions as perms
from releases.actions import PACKAGE_ACTIONS
from releases.choices import RELEASE_PACKAGE_OPEN_STATES, PackageTransition, UnitKind
from releases.exceptions import IllegalTransition, InvalidInput, PackageImmutable
from releases.models import PackageArtifact, Release, ReleasePackage, ReleaseUnit, TestRun
from releases.models.package import first_commit_time
from releases.selectors import release_active_approvals, release_current_package
from releases.services._state import state_move
from releases.services.approval import approvals_withdraw

PACKAGE_EDITABLE_FIELDS = ("version", "commits", "work_items", "notes")


def _ensure_release_open(release: Release, attempt: str) -> None:
    if release.state not in RELEASE_PACKAGE_OPEN_STATES:
        raise IllegalTransition(release, attempt, release.state)


def _ensure_units_changeable(release: Release, actor: User | None, attempt: str, state_attempt: str) -> None:
    """The units are part of the plan and of the build: the release manager changes them with the plan, the
    build pipeline with a package; either while a package may still be registered for the release.
    """
    ensure_allowed(perms.any_permission_problem(actor, [perms.CHANGE_RELEASE, perms.REGISTER_PACKAGE], attempt))
    _ensure_release_open(release, state_attempt)


def _artifact_label(artifact: PackageArtifact) -> str:
    return f"{artifact.name} sha256:{artifact.sha256}"


def _artifact(package: ReleasePackage, data: dict) -> PackageArtifact:
    """A digest is compared in lower case; upper-case hexadecimal is the same digest."""
    artifact = PackageArtifact(
        package=package,
        name=data.get("name", ""),
        uri=data.get("uri", ""),
        sha256=str(data.get("sha256", "")).strip().lower(),
        size_bytes=data.get("size_bytes"),
    )
    validated(artifact, f"artifact {artifact.name!r}")
    artifact.save()
    return artifact


@transaction.atomic
def package_register(
    *,
    release: Release,
    actor: User | None,
    version: str,
    artifacts: Iterable[dict] = (),
    commits: list | None = None,
    work_items: list | None = None,
    notes: str = "",
) -> ReleasePackage:
    """Register a new build of the release (assembling). The previous package is superseded, and the
    approvals given to the plan are withdrawn (visibly, with the reason, audited, approvers told).
    """
    release = locked(release)
    ensure_allowed(perms.permission_problem(actor, perms.REGISTER_PACKAGE, f"register a package for release {release}"))
    _ensure_release_open(release, "register a package for")
    if actor is None:
        raise InvalidInput("A package is registered by a person or their pipeline's token: name the builder.")
    previous = release_current_package(release)
    if previous is not None:
        reason = f"replaced by build {version}"
        previous = state_move(
            locked(previous), PackageTransition.SUPERSEDE, actor=actor, entity="package", reason=reason
        )
    package = ReleasePackage(
        release=release,
        version=version,
        built_by=actor,
        commits=list(commits or []),
        work_items=list(work_items or []),
        notes=notes,
    )
    validated(package)
    package.first_commit_at = first_commit_time(package.commits)
    package.save()
    artifacts = [_artifact(package, data) for data in artifacts]
    transition_record(
        actor=actor,
        action="package.register",
        target=package,
        to_state=package.state,
        changes={"artifacts": [None, [_artifact_label(artifact) for artifact in artifacts]]} if artifacts else None,
    )
    if previous is not None:
        previous.superseded_by = package
        previous.save(update_fields=["superseded_by"])
        if release_active_approvals(release).exists():
            approvals_withdraw(
                release=release,
                actor=actor,
                reason=f"package build {package.version} replaced build {previous.version}",
            )
    elif release_active_approvals(release).filter(approver=actor).exists():
        # Segregation of duties: the builder's own approval of the plan no longer counts.
        approvals_withdraw(release=release, actor=actor, reason="the approver built the package", approvers=[actor])
    return package


@transaction.atomic
def package_artifact_add(
    *, package: ReleasePackage, actor: User | None, name: str, uri: str, sha256: str, size_bytes: int | None = None
) -> PackageArtifact:
    """Add an artifact while the package is assembling or built; a validated package is immutable."""
    package = locked(package)
    ensure_allowed(perms.permission_problem(actor, perms.REGISTER_PACKAGE, f"add an artifact to package {package}"))
    if not package.editable:
        raise PackageImmutable(package, f"add artifact {name!r} to")
    artifact = _artifact(package, {"name": name, "uri": uri, "sha256": sha256, "size_bytes": size_bytes})
    transition_record(
        actor=actor,
        action="package.artifact_add",
        target=package,
        changes={"artifact": [None, _artifact_label(artifact)]},
    )
    return artifact


@transaction.atomic
def package_update(*, package: ReleasePackage, actor: User | None, data: dict) -> ReleasePackage:
    """Edit a package while it is assembling or built (its version, commits, work items, notes); a
    validated package is immutable. The first commit time follows the commits.
    """
    package = locked(package)
    ensure_allowed(perms.permission_problem(actor, perms.REGISTER_PACKAGE, f"edit package {package}"))
    if not package.editable:
        raise PackageImmutable(package, "edit")
    changes = apply_changes(package, data, PACKAGE_EDITABLE_FIELDS)
    if not changes:
        return package
    validated(package)
    package.first_commit_at = first_commit_time(package.commits)
    package.save()
    transition_record(actor=actor, action="package.update", target=package, changes=changes)
    return package


@transaction.atomic
def package_mark_built(*, package: ReleasePackage, actor: User | None) -> ReleasePackage:
    """The build is complete: every artifact is in place with its digest."""
    package = locked(package)
    action_ensure(PACKAGE_ACTIONS, PackageTransition.MARK_BUILT, package, actor)
    problems = [] if package.artifacts.exists() else ["register at least one artifact with its SHA-256 digest"]
    ensure_conditions(f"Package {package} cannot be marked built", problems)
    return state_move(package, PackageTransition.MARK_BUILT, actor=actor, entity="package")


@transaction.atomic
def package_validate(*, package: ReleasePackage, actor: User | None, reason: str = "") -> ReleasePackage:
    """Vouch for the package (Release or Deployment Manager, never its builder); it becomes immutable."""
    reason = bounded_text(reason, "the reason for validating")
    package = locked(package)
    action_ensure(PACKAGE_ACTIONS, PackageTransition.VALIDATE, package, actor)
    problems = [] if package.artifacts.exists() else ["the package has no artifact"]
    ensure_conditions(f"Package {package} cannot be validated", problems)
    return state_move(package, PackageTransition.VALIDATE, actor=actor, entity="package", reason=reason, by=actor)


@transaction.atomic
def package_reject(*, package: ReleasePackage, actor: User | None, reason: str) -> ReleasePackage:
    """Refuse the package (not by its builder); the reason is mandatory. A new package must be registered."""
    reason = require_text(reason, "the reason for rejecting the package")
    package = locked(package)
    action_ensure(PACKAGE_ACTIONS, PackageTransition.REJECT, package, actor)
    return state_move(
        package,
        PackageTransition.REJECT,
        actor=actor,
        entity="package",
        reason=reason,
        by=actor,
        rejection_reason=reason,
    )


@transaction.atomic
def test_run_record(
    *,
    package: ReleasePackage,
    actor: User | None,
    suite: str,
    passed: int = 0,
    failed_critical: int = 0,
    failed_major: int = 0,
    failed_minor: int = 0,
    link: str = "",
    run_at=None,
) -> TestRun:
    """Record one run of a suite against a package; the tests gate reads each suite's latest run."""
    package = locked(package)
    action_ensure(PACKAGE_ACTIONS, "record_test_run", package, actor)
    run = TestRun(
        package=package,
        suite=require_text(suite, "the name of the test suite"),
        passed=passed,
        failed_critical=failed_critical,
        failed_major=failed_major,
        failed_minor=failed_minor,
        link=link,
        run_at=run_at or now(),
        recorded_by=actor,
    )
    validated(run)
    run.save()
    transition_record(
        actor=actor, action="package.test_run_record", target=package, reason=f"{run.suite}: {run.summary}"
    )
    return run


test_run_record.__test__ = False  # a service, not a test, though pytest would collect it by its name


def _unit_label(unit: ReleaseUnit) -> str:
    """A unit as the trail names it: with the CIs it changes."""
    cis = ", ".join(sorted(ci.name for ci in unit.configuration_items.all()))
    return f"{unit} ({cis})"


def unit_save(
    *,
    release: Release,
    actor: User | None,
    name: str,
    kind: UnitKind | str,
    version: str = "",
    reversible: bool = True,
    configuration_items: Iterable = (),
    notes: str = "",
) -> ReleaseUnit:
    """Validate and store one unit of a locked release with the CIs it changes, and audit it (no permission
    check: the calling service made it).
    """
    unit = ReleaseUnit(release=release, name=name, kind=kind, version=version, reversible=reversible, notes=notes)
    validated(unit, f"unit {name!r}")
    unit.save()
    unit.configuration_items.set(list(configuration_items))
    transition_record(
        actor=actor, action="release.unit_add", target=release, changes={"unit": [None, _unit_label(unit)]}
    )
    return unit


@transaction.atomic
def release_unit_add(
    *,
    release: Release,
    actor: User | None,
    name: str,
    kind: UnitKind | str,
    version: str = "",
    reversible: bool = True,
    configuration_items: Iterable = (),
    notes: str = "",
) -> ReleaseUnit:
    """Add a component to the release, with the CIs it changes. Approvals of the plan are withdrawn:
    what is deployed changed.
    """
    release = locked(release)
    _ensure_units_changeable(release, actor, f"add a unit to release {release}", "add a unit to")
    unit = unit_save(
        release=release,
        actor=actor,
        name=name,
        kind=kind,
        version=version,
        reversible=reversible,
        configuration_items=configuration_items,
        notes=notes,
    )
    if release_active_approvals(release).exists():
        approvals_withdraw(release=release, actor=actor, reason=f"unit {unit.name} was added to the release")
    return unit


UNIT_EDITABLE_FIELDS = ("name", "kind", "version", "reversible", "notes", "configuration_items")


@transaction.atomic
def release_unit_update(*, unit: ReleaseUnit, actor: User | None, data: dict) -> ReleaseUnit:
    """Edit a component of the release (its fields or the CIs it changes). Like adding one, this changes
    what approvers approved, so their approvals are withdrawn, visibly.
    """
    release = locked(unit.release)
    _ensure_units_changeable(release, actor, f"edit unit {unit.name} of {release}", "edit a unit of")
    unit = ReleaseUnit.objects.select_for_update().get(pk=unit.pk)
    changes = apply_changes(unit, data, UNIT_EDITABLE_FIELDS)
    if not changes:
        return unit
    validated(unit)
    unit.save()
    transition_record(
        actor=actor,
        action="release.unit_update",
        target=release,
        changes={f"{unit.name}.{k}": v for k, v in changes.items()},
    )
    if release_active_approvals(release).exists():
        approvals_withdraw(
            release=release, actor=actor, reason=f"unit {unit.name} changed ({', '.join(sorted(changes))})"
        )
    return unit


@transaction.atomic
def release_unit_remove(*, unit: ReleaseUnit, actor: User | None) -> None:
    """Take a component out of the release. Like adding one, this changes what approvers approved, so their
    approvals are withdrawn, visibly; the trail keeps the unit as it was.
    """
    release = locked(unit.release)
    _ensure_units_changeable(release, actor, f"remove unit {unit.name} from {release}", "remove a unit from")
    unit = ReleaseUnit.objects.select_for_update().get(pk=unit.pk)
    removed = _unit_label(unit)
    unit.delete()
    transition_record(actor=actor, action="release.unit_remove", target=release, changes={"unit": [removed, None]})
    if release_active_approvals(release).exists():
        approvals_withdraw(release=release, actor=actor, reason=f"unit {unit.name} was removed from the release")


__all__ = [
    "package_artifact_add",
    "package_mark_built",
    "package_register",
    "package_reject",
    "package_update",
    "package_validate",
    "release_unit_add",
    "release_unit_remove",
    "release_unit_update",
    "test_run_record",
]
