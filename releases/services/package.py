"""Packages, their artifacts and test runs, and the units of a release (registered by pipelines).

A new package supersedes the previous one and withdraws the approvals given to the release plan:
approvers vouched for what they saw, not for a rebuild.
"""

from collections.abc import Iterable

from django.contrib.auth.models import User
from django.db import transaction

from rdm_site.audit import audit_record
from rdm_site.changes import apply_changes
from rdm_site.domain import (
    apply_transition,
    ensure_allowed,
    ensure_conditions,
    ensure_legal,
    locked,
    now,
    require_text,
    save,
    validated,
)
from releases import permissions as perms
from releases.choices import RELEASE_PACKAGE_OPEN_STATES, PackageState, PackageTransition, UnitKind
from releases.exceptions import IllegalTransition, InvalidInput, PackageImmutable
from releases.models import PackageArtifact, Release, ReleasePackage, ReleaseUnit, TestRun
from releases.selectors import release_active_approvals, release_current_package
from releases.services.release import approvals_withdraw


def _audit(package: ReleasePackage, actor: User | None, verb: str, moved=("", ""), reason: str = "", changes=None):
    audit_record(
        actor=actor,
        action=f"package.{verb}",
        target=package,
        from_state=moved[0],
        to_state=moved[1],
        reason=reason,
        changes=changes,
    )


def _ensure_release_open(release: Release, attempt: str) -> None:
    if release.state not in RELEASE_PACKAGE_OPEN_STATES:
        raise IllegalTransition(release, attempt, release.state)


def _artifact(package: ReleasePackage, data: dict) -> PackageArtifact:
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
        previous = locked(previous)
        moved = apply_transition(previous, PackageTransition.SUPERSEDE)
        save(previous)
    package = ReleasePackage(
        release=release,
        version=version,
        built_by=actor,
        commits=list(commits or []),
        work_items=list(work_items or []),
        notes=notes,
    )
    validated(package)
    package.save()
    for data in artifacts:
        _artifact(package, data)
    _audit(package, actor, "register", ("", package.state))
    if previous is not None:
        previous.superseded_by = package
        previous.save(update_fields=["superseded_by"])
        _audit(previous, actor, "supersede", moved, reason=f"replaced by build {package.version}")
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
    _audit(package, actor, "artifact_add", changes={"artifact": [None, f"{name} sha256:{artifact.sha256}"]})
    return artifact


@transaction.atomic
def package_mark_built(*, package: ReleasePackage, actor: User | None) -> ReleasePackage:
    """The build is complete: every artifact is in place with its digest."""
    package = locked(package)
    ensure_allowed(perms.permission_problem(actor, perms.REGISTER_PACKAGE, f"mark package {package} built"))
    ensure_legal(package, PackageTransition.MARK_BUILT)
    problems = [] if package.artifacts.exists() else ["register at least one artifact with its SHA-256 digest"]
    ensure_conditions(f"Package {package} cannot be marked built", problems)
    moved = apply_transition(package, PackageTransition.MARK_BUILT)
    save(package)
    _audit(package, actor, "mark_built", moved)
    return package


def _validation_allowed(package: ReleasePackage, actor: User | None, attempt: str) -> None:
    ensure_allowed(perms.permission_problem(actor, perms.VALIDATE_PACKAGE, attempt))


@transaction.atomic
def package_validate(*, package: ReleasePackage, actor: User | None, reason: str = "") -> ReleasePackage:
    """Vouch for the package (Release or Deployment Manager, never its builder); it becomes immutable."""
    package = locked(package)
    attempt = f"validate package {package}"
    _validation_allowed(package, actor, attempt)
    ensure_legal(package, PackageTransition.VALIDATE)
    ensure_allowed(*perms.sod_problems(actor, attempt, built=package.built_by))
    problems = [] if package.artifacts.exists() else ["the package has no artifact"]
    ensure_conditions(f"Package {package} cannot be validated", problems)
    moved = apply_transition(package, PackageTransition.VALIDATE, by=actor)
    save(package)
    _audit(package, actor, "validate", moved, reason=reason)
    return package


@transaction.atomic
def package_reject(*, package: ReleasePackage, actor: User | None, reason: str) -> ReleasePackage:
    """Refuse the package (not by its builder); the reason is mandatory. A new package must be registered."""
    reason = require_text(reason, "the reason for rejecting the package")
    package = locked(package)
    attempt = f"reject package {package}"
    _validation_allowed(package, actor, attempt)
    ensure_legal(package, PackageTransition.REJECT)
    ensure_allowed(*perms.sod_problems(actor, attempt, built=package.built_by))
    moved = apply_transition(package, PackageTransition.REJECT, by=actor, reason=reason)
    save(package)
    _audit(package, actor, "reject", moved, reason=reason)
    return package


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
    ensure_allowed(perms.permission_problem(actor, perms.REGISTER_PACKAGE, f"record test results for {package}"))
    if package.state == PackageState.SUPERSEDED:
        raise IllegalTransition(package, "record test results for", package.state)
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
    _audit(package, actor, "test_run_record", reason=f"{run.suite}: {run.summary}")
    return run


test_run_record.__test__ = False  # a service, not a test, though pytest would collect it by its name


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
    ensure_allowed(perms.permission_problem(actor, perms.REGISTER_PACKAGE, f"add a unit to release {release}"))
    _ensure_release_open(release, "add a unit to")
    unit = ReleaseUnit(release=release, name=name, kind=kind, version=version, reversible=reversible, notes=notes)
    validated(unit)
    unit.save()
    unit.configuration_items.set(list(configuration_items))
    cis = ", ".join(sorted(ci.name for ci in unit.configuration_items.all()))
    audit_record(actor=actor, action="release.unit_add", target=release, changes={"unit": [None, f"{unit} ({cis})"]})
    if release_active_approvals(release).exists():
        approvals_withdraw(release=release, actor=actor, reason=f"unit {unit.name} was added to the release")
    return unit


UNIT_EDITABLE_FIELDS = ("name", "kind", "version", "reversible", "notes")


@transaction.atomic
def release_unit_update(*, unit: ReleaseUnit, actor: User | None, data: dict) -> ReleaseUnit:
    """Edit a component of the release (its fields or the CIs it changes). Like adding one, this changes
    what approvers approved, so their approvals are withdrawn, visibly.
    """
    release = locked(unit.release)
    ensure_allowed(perms.permission_problem(actor, perms.REGISTER_PACKAGE, f"edit unit {unit.name} of {release}"))
    _ensure_release_open(release, "edit a unit of")
    unit = ReleaseUnit.objects.select_for_update().get(pk=unit.pk)
    fields = {name: value for name, value in data.items() if name != "configuration_items"}
    try:
        changes = apply_changes(unit, fields, UNIT_EDITABLE_FIELDS)
    except TypeError as error:
        raise InvalidInput(str(error)) from None
    if "configuration_items" in data:
        before = sorted(ci.name for ci in unit.configuration_items.all())
        after = sorted(ci.name for ci in data["configuration_items"])
        if before != after:
            changes["configuration_items"] = [before, after]
            unit.configuration_items.set(list(data["configuration_items"]))
    if not changes:
        return unit
    validated(unit)
    unit.save()
    audit_record(
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


__all__ = [
    "package_artifact_add",
    "package_mark_built",
    "package_register",
    "package_reject",
    "package_validate",
    "release_unit_add",
    "release_unit_update",
    "test_run_record",
]
