"""Scale benchmark: every list, page and report RDM serves, timed through the production server against a year of a
large organisation (``manage.py scale_generate``: 200 services, 100,000 CIs, 100,000 releases and changes, 200,000
deployments with 1,000,000 steps, 2,000,000 audit events…), each against its budget.

Run with ``make bench-scale`` or ``.venv/bin/python -m bench.scale``. Environment and options:

- ``BENCH_DATABASE_URL``: the generated database (default: ``rdm_scale`` on the embedded PostgreSQL). When it holds
  no data, ``scale_generate`` fills it first and its time is printed; ``--generate`` forces that, and
  ``--scale 0.02`` (or ``BENCH_SCALE``) asks the generator for a fraction of the full set.
- ``BENCH_REPEAT`` (timed requests per measurement, default 30, after ``BENCH_WARMUP`` = 3 warm-ups).

It serves the app with the production command (``rdm_site.launcher.web_command``), signs in as a superuser made
for the run (``scale.bench``), and requests each URL in turn on one keep-alive connection: p50 and p95 of the
whole answer, against the budgets in ``docs/performance.md``. The audit export is streamed whole (time to first
byte, total time) while the server's resident memory is sampled, once for a tenth of the trail and once for all of
it: memory that grows with the size of the export is a MISS. The run's baseline (``/healthz`` and the DRF users
list) lets figures from different machines be compared.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.serving import SERVED_ENV, sign_in, wait_ready
from rdm_site import embedded
from rdm_site.launcher import PYTHON, web_command

SCALE_DB = "rdm_scale"
REPEAT = int(os.environ.get("BENCH_REPEAT", "30"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "3"))
PORT = 8790
USERNAME = "scale.bench"
PASSWORD = "scale-bench-password"  # noqa: S105 - a user made for the benchmark database
DEEP_ROW = 50_000  # "page 2,000" of a 25-row list
LIST_MS, IMPACT_MS, METRICS_MS, FIRST_BYTE_MS = 150, 200, 500, 1000
SLOW_S = 10  # a page slower than this is timed once
SERVER_TIMEOUT_S = 60  # gunicorn's worker timeout (rdm_site.launcher.web_command)
FLAT_MEMORY_MB = 64  # growth of the serving processes' memory allowed while the whole trail streams


def database_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL") or embedded.database_url(SCALE_DB)


def app_env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "rdm_site.settings",
        **SERVED_ENV,
        "RDM_API_RATE_USER": "1000000/min",  # measure the pages, not the API's rate limit
    }


def manage(url: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "manage.py", *args], check=True, env=app_env(url), **kwargs)


def has_data(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as connection:
            row = connection.execute(
                "SELECT to_regclass('releases_release') IS NOT NULL AND EXISTS (SELECT FROM releases_release)"
            ).fetchone()
            return bool(row[0])
    except psycopg.OperationalError:
        return False


def generate(url: str, scale: str | None) -> None:
    import psycopg

    if "BENCH_DATABASE_URL" not in os.environ:
        embedded.start(postgres=True, redis="REDIS_URL" not in os.environ)
        embedded.ensure_database(SCALE_DB)
    else:
        name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
        with psycopg.connect(admin, autocommit=True) as connection:
            if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                connection.execute(f'CREATE DATABASE "{name}"')
    manage(url, "migrate", "-v", "0")
    started = time.monotonic()
    manage(url, "scale_generate", *(["--scale", scale] if scale else []))
    print(f"scale_generate{f' --scale {scale}' if scale else ''}: {time.monotonic() - started:.0f} s", flush=True)


# --- what to measure (computed in a subprocess set up against the generated database) ----------------------


def targets() -> dict:
    """The URLs to time, from the generated data: ids of a typical service and environment, the release and the
    deployment pages, the CI with the most downstream, and each list's deep position."""
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.db.models import Count

    from cmdb.models import Environment, Service
    from cmdb.views import ConfigurationItemListView
    from deployments.models import Deployment
    from deployments.views.rollout import DeploymentListView
    from rdm_site.pagination import cursor_at
    from rdm_site.views import AuditEventListView
    from releases.models import Release
    from releases.views.change import ChangeListView
    from releases.views.release import ReleaseListView

    user, _ = User.objects.get_or_create(username=USERNAME, defaults={"is_superuser": True, "is_staff": True})
    if not (user.is_superuser and user.check_password(PASSWORD)):  # a new hash would sign out running benchmarks
        user.is_superuser = user.is_staff = True
        user.set_password(PASSWORD)
        user.save()

    def one(sql: str) -> int:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()[0]

    service = Service.objects.annotate(n=Count("deployments")).order_by("-n").first()
    environment = Environment.objects.order_by("-promotion_order").first()  # production comes last
    deployment = one("SELECT deployment_id FROM deployments_step GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
    hub = one(
        "SELECT ci FROM (SELECT target_id AS ci, count(*) AS n FROM cmdb_relationship GROUP BY 1 UNION ALL "
        "SELECT source_id, count(*) FROM cmdb_relationship GROUP BY 1) AS ends ORDER BY n DESC LIMIT 1"
    )
    release = Deployment.objects.filter(pk=deployment).values_list("package__release", flat=True).first()
    release = release or Release.objects.order_by("-created", "-id").values_list("pk", flat=True).first()
    year_ago = one("SELECT (now() - interval '365 days')::date")
    today = one("SELECT now()::date")
    month_ago = one("SELECT (now() - interval '30 days')::date")

    def deep(path: str, queryset) -> str:
        """The list at row DEEP_ROW: the keyset link the list offers there (page 2,000 by offset before it had one)."""
        cursor = cursor_at(queryset, DEEP_ROW)
        return f"{path}?after={cursor}" if cursor else f"{path}?page={DEEP_ROW // 25}"

    lists = {  # each list's own queryset, so the cursor follows its order
        "releases": ("/releases/", ReleaseListView.queryset),
        "changes": ("/changes/", ChangeListView.queryset),
        "deployments": ("/deployments/", DeploymentListView.queryset),
        "CIs": ("/cis/", ConfigurationItemListView.queryset),
        "audit": ("/audit/", AuditEventListView.queryset),
    }
    pages = {}
    for name, (path, queryset) in lists.items():
        pages[f"{name}: first page"] = path
        pages[f"{name}: row 50,000"] = deep(path, queryset)
    pages.update(
        {
            "releases: state approved": "/releases/?state=approved",
            f"releases: service #{service.pk}": f"/releases/?services={service.pk}",
            "releases: planned in the last 30 days": f"/releases/?planned_start__gte={month_ago}",
            "changes: state approved": "/changes/?state=approved",
            f"changes: service #{service.pk}": f"/changes/?services={service.pk}",
            "changes: planned in the last 30 days": f"/changes/?planned_start__gte={month_ago}",
            "deployments: state succeeded": "/deployments/?state=succeeded",
            f"deployments: service #{service.pk}": f"/deployments/?service={service.pk}",
            f"deployments: environment #{environment.pk}": f"/deployments/?environment={environment.pk}",
            "deployments: service and environment": f"/deployments/?service={service.pk}&environment={environment.pk}",
            "deployments: created in the last 30 days": f"/deployments/?created_after={month_ago}T00:00:00Z",
            "CIs: state live": "/cis/?state=live",
            f"CIs: environment #{environment.pk}": f"/cis/?environment={environment.pk}",
            f"CIs: service #{service.pk}": f"/cis/?service={service.pk}",
            "CIs: name contains": "/cis/?name__icontains=app-01",
            "audit: deployments only": "/audit/?object_type=deployments.deployment",
            "audit: last 30 days": f"/audit/?occurred_after={month_ago}",
            "audit API: first page": "/api/v1/audit-events/",
            "dashboard": "/",
            f"release page #{release}": f"/releases/{release}/",
            f"deployment page #{deployment} (its steps)": f"/deployments/{deployment}/",
            "version matrix (API)": "/api/v1/version-matrix/",
            "version matrix (page: what runs where)": "/running/",
        }
    )
    impact = {
        f"impact page of CI #{hub}": f"/cis/{hub}/impact/",
        f"impact API of CI #{hub}": f"/api/v1/cis/{hub}/impact/",
    }
    year = f"from={year_ago}&to={today}"
    metrics = {
        "DORA page, a year": f"/reports/dora/?{year}&period=month",
        "DORA API, a year": f"/api/v1/metrics/dora/?{year}&period=month",
    }
    tenth = one(
        "SELECT (min(occurred_at) + (max(occurred_at) - min(occurred_at)) * 0.9)::date FROM rdm_site_auditevent"
    )
    exports = {
        "audit export (page), a tenth": f"/audit/export.csv?occurred_after={tenth}",
        "audit export (page), all": "/audit/export.csv",
        "audit export (API), all": "/api/v1/audit-events/export.csv/",
    }
    baseline = {"baseline: /healthz": "/healthz", "baseline: DRF users list": "/api/v1/users/"}
    return {"pages": pages, "impact": impact, "metrics": metrics, "exports": exports, "baseline": baseline}


# --- measuring ----------------------------------------------------------------------------------------------


@dataclass
class Figure:
    name: str
    p50: float
    p95: float
    budget: float | None
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.budget is None:
            return ""
        return "PASS" if self.p95 < self.budget and not self.note.startswith("!") else "MISS"


def request(connection: http.client.HTTPConnection, path: str, cookie: str) -> tuple[int, float, float, int]:
    """One GET read to the end: status, seconds to the first byte of the body, seconds in all, bytes."""
    started = time.perf_counter()
    connection.request("GET", path, headers={"Cookie": cookie, "Accept-Encoding": "identity"})
    response = connection.getresponse()
    first = response.read(1)
    first_byte = time.perf_counter() - started
    size = len(first)
    while chunk := response.read(65536):
        size += len(chunk)
    return response.status, first_byte, time.perf_counter() - started, size


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round((len(ordered) - 1) * fraction))] * 1000


def time_path(name: str, path: str, cookie: str, budget: float | None) -> Figure:
    """p50 and p95 of REPEAT requests after WARMUP; a page slower than SLOW_S is timed once (its p50 and p95 are
    that one time), and one that does not answer within the server's timeout is a MISS."""
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=SERVER_TIMEOUT_S + 10)
    times: list[float] = []
    try:
        for number in range(WARMUP + REPEAT):
            status, _, seconds, _ = request(connection, path, cookie)
            if status != 200:
                return Figure(name, float("nan"), float("nan"), budget, f"! HTTP {status} for {path}")
            if seconds > SLOW_S:
                return Figure(name, seconds * 1000, seconds * 1000, budget, f"timed once ({path})")
            if number >= WARMUP:
                times.append(seconds)
    except (OSError, http.client.HTTPException) as error:
        return Figure(name, float("nan"), float("nan"), budget, f"! no answer ({type(error).__name__}) for {path}")
    finally:
        connection.close()
    return Figure(name, percentile(times, 0.5), percentile(times, 0.95), budget)


def serving_memory_kb(master: int) -> int:
    """Resident memory of the server's worker processes (the master's children)."""
    total = 0
    for task in Path(f"/proc/{master}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                status = Path(f"/proc/{child}/status").read_text()
            except FileNotFoundError:
                continue
            total += int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])
    return total


def time_export(name: str, path: str, cookie: str, master: int) -> tuple[Figure, float]:
    """Stream ``path`` whole while sampling the server's memory; its first byte against the budget, and the
    memory's growth during the stream (MB)."""
    start_kb = serving_memory_kb(master)
    peak = [start_kb]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], serving_memory_kb(master))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=1800)
    try:
        status, first_byte, total, size = request(connection, path, cookie)
    finally:
        connection.close()
        done.set()
        sampler.join()
    growth = (peak[0] - start_kb) / 1024
    note = f"{size / 2**20:.0f} MB in {total:.1f} s, memory +{growth:.0f} MB"
    if status != 200:
        note = f"! HTTP {status}"
    elif growth > FLAT_MEMORY_MB:
        note = f"! {note} (not flat)"
    return Figure(f"{name}: first byte", first_byte * 1000, first_byte * 1000, FIRST_BYTE_MS, note), growth


def print_table(figures: list[Figure]) -> None:
    width = max(len(figure.name) for figure in figures) + 2
    print(f"\n{'measurement':<{width}} {'p50 ms':>8} {'p95 ms':>8} {'budget':>7}  verdict")
    for figure in figures:
        budget = f"{figure.budget:.0f}" if figure.budget else ""
        print(
            f"{figure.name:<{width}} {figure.p50:8.1f} {figure.p95:8.1f} {budget:>7}  {figure.verdict:<4}  "
            f"{figure.note.lstrip('! ')}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generate", action="store_true", help="generate the data set even when it exists")
    parser.add_argument("--scale", default=os.environ.get("BENCH_SCALE"), help="the generator's fraction of the set")
    parser.add_argument("--only", default="", help="measure only the measurements whose name contains this")
    options = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the server on the way out
    url = database_url()
    if options.generate or not has_data(url):
        generate(url, options.scale)
    embedded.start(postgres=False, redis="REDIS_URL" not in os.environ)  # the API's throttle counts in Redis
    manage(url, "migrate", "-v", "0")
    found = subprocess.run(
        [PYTHON, "-m", "bench.scale", "targets"], check=True, env=app_env(url), capture_output=True, text=True
    )
    plan = json.loads(found.stdout)
    bind = f"127.0.0.1:{PORT}"
    server = subprocess.Popen(web_command(bind), env=app_env(url), stdout=subprocess.DEVNULL)
    figures: list[Figure] = []
    try:
        base = f"http://{bind}"
        wait_ready(base)
        cookie = sign_in(base, username=USERNAME, password=PASSWORD)
        budgets = {"pages": LIST_MS, "impact": IMPACT_MS, "metrics": METRICS_MS, "baseline": None}
        for group, budget in budgets.items():
            for name, path in plan[group].items():
                if options.only in name:
                    figures.append(time_path(name, path, cookie, budget))
                    print(f"  {name}: p95 {figures[-1].p95:.1f} ms", flush=True)
        for name, path in plan["exports"].items():
            if options.only in name:
                figures.append(time_export(name, path, cookie, server.pid)[0])
                print(f"  {name}: {figures[-1].note}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print_table(figures)
    misses = sum(figure.verdict == "MISS" for figure in figures)
    print(f"\n{misses} MISS of {sum(bool(figure.verdict) for figure in figures)} budgeted measurements")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["targets"]:
        print(json.dumps(targets()))
        sys.exit(0)
    sys.exit(main())
