"""A year of a large organisation, written into an empty, migrated database for scale measurements.

``scale_generate`` (the management command) calls ``scale_generate``. Small tables (users, environments,
services, policies, processes) go through the ORM; every large table is written with PostgreSQL COPY,
with explicit ids so that foreign keys are known without reading anything back. Everything happens in one
transaction with the constraints checked row by row (``SET CONSTRAINTS ALL IMMEDIATE``): a run either
leaves a complete, consistent year or nothing. Times rise with ids in every table, and each record's
timestamps follow its lifecycle (created < submitted < approved < started < finished). The audit trail
is a valid hash chain, hashed by ``AuditEvent.compute_hash`` itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from django.contrib.auth.models import User
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.utils import timezone

from bench.scale_data.audit import audit_generate
from bench.scale_data.base import Copier, DatabaseNotEmpty, ScaleSizes, Year
from bench.scale_data.cmdb import cmdb_generate
from bench.scale_data.deployments import deployments_generate, incidents_generate
from bench.scale_data.people import places_generate, users_generate
from bench.scale_data.releases import changes_generate, releases_generate
from cmdb.models import ConfigurationItem, Relationship, Service
from deployments.models import Deployment, DeploymentLock, EarlyLifeSupport, Incident, Step, StepLog, Target, Wave
from rdm_site.models import AuditEvent
from releases.models import Approval, ChangeRecord, Release, ReleasePackage, ReleaseUnit

__all__ = ["DatabaseNotEmpty", "ScaleSizes", "database_is_empty", "scale_generate"]


def database_is_empty() -> bool:
    """No user, CI, release, deployment or audit event yet (a freshly migrated database)."""
    return not any(
        model.objects.exists() for model in (User, ConfigurationItem, Release, Deployment, AuditEvent, Service)
    )


def scale_generate(
    sizes: ScaleSizes, *, seed: int = 1, now: datetime | None = None, report: Callable[[str], None] = print
) -> dict[str, int]:
    """Fill the empty database with ``sizes`` worth of one year; returns the rows written per table.

    Raises ``DatabaseNotEmpty`` when anything is there already.
    """
    sizes = sizes.checked()
    if not database_is_empty():
        raise DatabaseNotEmpty(
            "The database already holds data; scale data goes only into an empty, migrated database."
        )
    now = now or timezone.now()
    year = Year(sizes, seed=seed, now=now, report=report)
    started = time.monotonic()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        report("people, places and policies")
        users_generate(year)
        places_generate(year)
        copier = Copier(connection.connection.cursor(), report)
        report("CMDB")
        cmdb_generate(year, copier)
        report("releases")
        releases = releases_generate(year, copier)
        report("changes and approvals")
        release_change = changes_generate(year, copier, releases)
        report("deployments")
        deployments_generate(year, copier, releases, release_change)
        report("incidents")
        incidents_generate(year, copier)
        report("audit trail")
        head = audit_generate(year, copier)
        with connection.cursor() as cursor:
            for statement in connection.ops.sequence_reset_sql(no_style(), _copied_models()):
                cursor.execute(statement)
    report(f"written and committed in {time.monotonic() - started:.1f} s; audit head {head}")
    analysed = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    report(f"VACUUM (ANALYZE) {time.monotonic() - analysed:.1f} s; total {time.monotonic() - started:.1f} s")
    return copier.counts


def _copied_models() -> list[type[models.Model]]:
    return [
        ConfigurationItem,
        Relationship,
        Target,
        Release,
        Release.services.through,
        ReleasePackage,
        ReleaseUnit,
        ReleaseUnit.configuration_items.through,
        ChangeRecord,
        ChangeRecord.services.through,
        Approval,
        Deployment,
        DeploymentLock,
        Wave,
        EarlyLifeSupport,
        Step,
        StepLog,
        Incident,
        AuditEvent,
    ]
