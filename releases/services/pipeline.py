"""Writes shaped for pipelines: what a build or a test job knows, recorded in one atomic call."""

from collections.abc import Iterable

from django.contrib.auth.models import User
from django.db import transaction

from releases.junit import SuiteResult
from releases.models import Release, ReleasePackage, TestRun
from releases.services.package import package_register, release_unit_add, release_unit_update, test_run_record


@transaction.atomic
def package_register_with_units(
    *, release: Release, actor: User | None, version: str, units: Iterable[dict] = (), **package
) -> ReleasePackage:
    """Register a build and the units it delivers at once: all of it is recorded, or nothing. A unit named
    like one the release has already is updated (a rebuild delivers the same components again).
    """
    registered = package_register(release=release, actor=actor, version=version, **package)
    existing = {unit.name: unit for unit in release.units.all()}
    for unit in units:
        known = existing.get(unit["name"])
        if known is None:
            release_unit_add(release=release, actor=actor, **unit)
        else:
            release_unit_update(unit=known, actor=actor, data={k: v for k, v in unit.items() if k != "name"})
    return registered


@transaction.atomic
def package_test_results_record(
    *, package: ReleasePackage, actor: User | None, results: list[SuiteResult], link: str = ""
) -> list[TestRun]:
    """One TestRun per suite of an uploaded report; a refused suite records none of them."""
    return [test_run_record(package=package, actor=actor, link=link, **result.as_test_run()) for result in results]
