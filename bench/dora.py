"""DORA metrics benchmark: the four keys (``deployments.metrics.dora_keys``) for one service and for all services
over a generated year of 100,000 production deployments and 20,000 incidents, against a plain ``COUNT(*)`` of the
same deployments as the yardstick, measured in the same run. Goal: under 0.5 s each.

Run with ``make bench-dora`` (part of ``make bench``), or ``.venv/bin/python -m bench.dora``. Environment:
``BENCH_DEPLOYMENTS`` (production deployments, default 100000), ``BENCH_INCIDENTS`` (20000), ``BENCH_SERVICES``
(50), ``BENCH_REPEAT`` (runs per figure, default 5: the median, which the verdict is on, and the best run are
printed). It uses its own database (``rdm_bench_dora``), made afresh each run on the embedded PostgreSQL or on
DATABASE_URL's server. The whole report (keys, trend, series, ITIL figures) is timed too, without a goal.

The year is written with PostgreSQL's COPY from model instances (every column as Django would save it; the ids
are given, so rows can point at each other): releases of every type with one package each (most with a first
commit), production deployments in every finished state spread over the services and the year (some without a
package, some replacing another), a fifth as many deployments in staging that the figures must leave out, and
incidents, most naming a deployment and most resolved. A benchmark's fixture, not product writes.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from bench.serving import bench_env, database_make
from rdm_site import embedded
from rdm_site.launcher import PYTHON

DORA_DB = "rdm_bench_dora"
DEPLOYMENTS = int(os.environ.get("BENCH_DEPLOYMENTS", "100000"))
INCIDENTS = int(os.environ.get("BENCH_INCIDENTS", "20000"))
SERVICES = int(os.environ.get("BENCH_SERVICES", "50"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))
GOAL_SECONDS = 0.5
GOALS = ("four keys, one service", "four keys, all services")
YEAR_END = datetime(2025, 1, 1, tzinfo=UTC)
YEAR = timedelta(days=365)


def fresh_database() -> None:
    """An empty bench database on the server RDM would use, so no earlier run's rows weigh on this one."""
    embedded.start(postgres="DATABASE_URL" not in os.environ, redis=False)
    database_make(DORA_DB, fresh=True)
    os.environ.update(bench_env(DORA_DB, DJANGO_SETTINGS_MODULE="rdm_site.settings"))
    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], check=True, cwd=embedded.PROJECT_ROOT)


def copy_in(model, rows: list) -> None:
    """COPY unsaved ``rows`` (ids given) into the model's table, each column as Django would save it."""
    from django.db import connection

    fields = [field for field in model._meta.concrete_fields if not field.generated]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([field.get_db_prep_save(field.pre_save(row, True), connection) for field in fields])
        cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [model._meta.db_table, len(rows)])


def generate_year() -> None:
    """The year's services, releases, packages, deployments and incidents (seeded: every run the same)."""
    from django.contrib.auth.models import User

    from cmdb.choices import EnvironmentTier
    from cmdb.models import Environment, Service
    from deployments.choices import DeploymentState
    from deployments.models import Deployment, DeploymentProcess, Incident
    from releases.choices import ReleaseType
    from releases.models import Release, ReleasePackage, ReleasePolicy

    rng = random.Random(10)
    owner = User.objects.create(username="bench.owner")
    production = Environment.objects.create(name="production", slug="production", tier=EnvironmentTier.PRODUCTION,
                                            promotion_order=4)  # fmt: skip
    staging = Environment.objects.create(name="staging", slug="staging", tier=EnvironmentTier.STAGING,
                                         promotion_order=3)  # fmt: skip
    services = Service.objects.bulk_create(
        Service(name=f"service {n}", slug=f"service-{n}", owner=owner) for n in range(SERVICES)
    )
    processes = DeploymentProcess.objects.bulk_create(
        DeploymentProcess(service=service, name="bench") for service in services
    )
    policies = {kind: ReleasePolicy.objects.create(name=kind, release_type=kind, hotfix_window_days=14)
                for kind in ReleaseType.values}  # fmt: skip
    release_types = [ReleaseType.MINOR] * 6 + [ReleaseType.MAJOR] + [ReleaseType.PATCH] * 2 + [ReleaseType.EMERGENCY]

    start = YEAR_END - YEAR
    releases, packages = [], []
    for n in range(1, DEPLOYMENTS // 4 + 1):  # each package goes to production four times on average
        kind = rng.choice(release_types)
        registered = start + timedelta(seconds=rng.uniform(0, YEAR.total_seconds()))
        releases.append(Release(id=n, name=f"release {n}", version="1", release_type=kind, policy=policies[kind],
                                release_manager=owner))  # fmt: skip
        first_commit = registered - timedelta(hours=rng.expovariate(1 / 48)) if rng.random() < 0.8 else None
        packages.append(ReleasePackage(id=n, release_id=n, version="1", built_by=owner, registered_at=registered,
                                       first_commit_at=first_commit))  # fmt: skip
    copy_in(Release, releases)
    copy_in(ReleasePackage, packages)

    states = [DeploymentState.SUCCEEDED] * 85 + [DeploymentState.FAILED] * 8 + [DeploymentState.ROLLED_BACK] * 4
    states += [DeploymentState.ABORTED] * 3
    deployments = []
    for n in range(1, DEPLOYMENTS + DEPLOYMENTS // 5 + 1):
        service = rng.randrange(SERVICES)
        package = packages[rng.randrange(len(packages))]
        finished = max(package.registered_at + timedelta(hours=rng.expovariate(1 / 24)), start)
        deployments.append(
            Deployment(
                id=n,
                service=services[service],
                environment=production if n <= DEPLOYMENTS else staging,
                process=processes[service],
                package_id=package.pk if rng.random() < 0.9 else None,
                model="big_bang",
                state=rng.choice(states),
                replaces_id=n - 1 if n > 1 and rng.random() < 0.01 else None,
                started_at=finished - timedelta(minutes=rng.uniform(5, 60)),
                finished_at=min(finished, YEAR_END - timedelta(seconds=1)),
            )
        )
    copy_in(Deployment, deployments)

    incidents = []
    for n in range(1, INCIDENTS + 1):
        deployment = deployments[rng.randrange(DEPLOYMENTS)]
        named = rng.random() < 0.7
        opened = deployment.finished_at + timedelta(hours=rng.expovariate(1 / 12))
        resolved = opened + timedelta(minutes=rng.expovariate(1 / 240)) if rng.random() < 0.8 else None
        incidents.append(
            Incident(
                id=n,
                title="bench",
                severity=rng.choice(["p1", "p2", "p3", "p4"]),
                state="resolved" if resolved else "open",
                deployment=deployment if named else None,
                release_id=None if named else deployment.package_id or 1,
                opened_at=opened,
                resolved_at=resolved,
            )
        )
    copy_in(Incident, incidents)
    from django.db import connection

    from deployments.dora_facts import dora_facts_backfill

    dora_facts_backfill()  # as the end hook would have, had the year run through the engine
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def timed(compute) -> tuple[float, float]:
    """(median, best) of ``REPEAT`` runs in seconds, after one run that warms the caches. The best run says what
    the work costs; the median, what a busy machine makes of it (the verdict is on the median)."""
    compute()
    runs = []
    for _ in range(REPEAT):
        began = time.perf_counter()
        compute()
        runs.append(time.perf_counter() - began)
    return statistics.median(runs), min(runs)


def main() -> int:
    fresh_database()
    import django

    django.setup()
    from cmdb.models import Service
    from deployments.metrics import DoraScope, dora_keys, dora_report, production_deployments

    began = time.perf_counter()
    generate_year()
    print(f"generated in {time.perf_counter() - began:.1f} s: {DEPLOYMENTS:,} production deployments "
          f"(+{DEPLOYMENTS // 5:,} in staging), {INCIDENTS:,} incidents, {SERVICES} services, one year")  # fmt: skip

    year = DoraScope(start=YEAR_END - YEAR, end=YEAR_END)
    one = DoraScope(start=year.start, end=year.end, service_id=Service.objects.order_by("id").first().pk)
    counted = production_deployments(year).count()
    yardstick, _ = timed(lambda: production_deployments(year).count())
    figures = {
        "four keys, one service": timed(lambda: dora_keys(one)),
        "four keys, all services": timed(lambda: dora_keys(year)),
        "whole report, all services": timed(lambda: dora_report(year)),
    }

    print(f"median (best) of {REPEAT} runs; yardstick: COUNT(*) of the year's {counted:,} production deployments "
          f"{yardstick * 1000:.1f} ms")  # fmt: skip
    for name, (median, best) in figures.items():
        if name in GOALS:
            verdict = f"{'PASS' if median < GOAL_SECONDS else 'MISS'} (goal < {GOAL_SECONDS * 1000:.0f} ms)"
        else:
            verdict = "(keys and trend, weekly series, ITIL: no goal)"
        print(f"  {name:<28} {median * 1000:7.1f} ms ({best * 1000:6.1f})   "
              f"ratio to the yardstick {median / yardstick:5.1f}   {verdict}")  # fmt: skip
    return 0 if all(figures[name][0] < GOAL_SECONDS for name in GOALS) else 1


if __name__ == "__main__":
    sys.exit(main())
