"""API load benchmark on a year of a large organisation. Run with ``make bench-load``.

The database is ``BENCH_DATABASE_URL`` (by default ``rdm_scale`` on the embedded PostgreSQL), filled beforehand by
``manage.py scale_generate``. RDM runs as in production: the web server (``rdm_site.launcher.web_command``), a
Celery worker and beat, on a queue of this run's own. ``BENCH_CLIENTS`` (50) API clients, each with the API
tokens of its people, send requests one after another for ``BENCH_SECONDS`` (60): lists with filters, details,
impact analyses and metrics (most of the traffic), creates (releases, changes, incidents) and the transitions that
follow them (plan, submit and approve a release; submit, assess and approve a change; acknowledge and resolve an
incident). Meanwhile one phased rollout of ``BENCH_ROLLOUT_TARGETS`` (100) targets, planned and started through
the API, runs on the worker against a local target server whose calls take 100 ms.

Prints the requests, requests per second, p50/p95 per operation (of every answer, expected or not), every answer
that was not the one expected (with its body; a request not answered within 60 s counts as one) and whether the
rollout finished. The run adds what it creates (tokens, records, one environment
and service for the rollout) to the database; the scale data stays valid for page measurements.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.serving import SERVED_ENV, wait_ready
from rdm_site import embedded
from rdm_site.launcher import beat_command, web_command, worker_command

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "50"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
ROLLOUT_TARGETS = int(os.environ.get("BENCH_ROLLOUT_TARGETS", "100"))
ROLLOUT_WAIT = 300  # seconds the rollout may take to finish after the load ends
PORT = int(os.environ.get("BENCH_PORT", "8795"))
SCALE_DB = "rdm_scale"
QUEUE = f"rdm-bench-load-{uuid.uuid4().hex[:8]}"
RUN = uuid.uuid4().hex[:6]  # names what this run creates
MINIMUM_RELEASES = 1000  # fewer than this is not a scaled database
# What the clients do, by weight: reads first, then the writes (a write's follow-up transitions are queued).
READ_WEIGHT, CREATE_WEIGHT, TRANSITION_WEIGHT = 80, 8, 12


def bench_database_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL") or embedded.database_url(SCALE_DB)


def server_env(database_url: str, redis_url: str, scratch: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "RDM_CELERY_QUEUE": QUEUE,
        "CELERY_BEAT_SCHEDULE_FILENAME": str(scratch / "beat-schedule"),
        **SERVED_ENV,
        # one person's token sends many requests a second here: no throttling in the way of the measurement
        "RDM_API_RATE_TOKEN": "1000000/min",
        "RDM_API_RATE_USER": "1000000/min",
        "OUTBOUND_ALLOWED_HOSTS": "127.0.0.1",
        "OUTBOUND_ALLOW_PRIVATE_NETWORKS": "true",
    }


def scale_data_missing() -> str:
    """Why the database cannot be measured, or "" when it holds a scaled year."""
    from django.db import DatabaseError

    from releases.models import Release

    try:
        releases = Release.objects.count()
    except DatabaseError as error:
        return f"the database cannot be read ({str(error).strip().splitlines()[0]})"
    if releases < MINIMUM_RELEASES:
        return f"the database holds {releases} releases, not a scaled year"
    return ""


HOW_TO_GENERATE = """Generate the scaled database first (a few minutes), e.g. on the system PostgreSQL:
  createdb rdm_scale
  DATABASE_URL=postgres://postgres@localhost:5432/rdm_scale .venv/bin/python manage.py migrate
  DATABASE_URL=postgres://postgres@localhost:5432/rdm_scale .venv/bin/python manage.py scale_generate
then run: BENCH_DATABASE_URL=postgres://postgres@localhost:5432/rdm_scale make bench-load"""


@dataclass(frozen=True)
class Landscape:
    """What the clients pick from: id ranges of the scaled year and the people whose tokens they hold."""

    releases: int
    changes: int
    deployments: int
    cis: int
    hub_ci: int
    big_deployment: int
    production: int
    services: list[int]
    minor_policy: int
    tokens: dict[str, list[str]]  # role → tokens of its members, one per member


def landscape_read(token_name: str) -> Landscape:
    """The ranges and one API token for each of the first members of the roles the clients act in."""
    from django.contrib.auth.models import User
    from django.db.models import Count, Max

    from cmdb.models import ConfigurationItem, Environment, Service
    from deployments.models import Deployment, Step
    from rdm_site.roles import Role
    from rdm_site.scopes import Scope
    from rdm_site.tokens import token_create
    from releases.models import ChangeRecord, Release, ReleasePolicy

    roles = {
        "release_manager": Role.RELEASE_MANAGER,
        "change_approver": Role.CHANGE_APPROVER,
        "deployment_manager": Role.DEPLOYMENT_MANAGER,
        "service_owner": Role.SERVICE_OWNER,
        "viewer": Role.VIEWER,
    }
    tokens = {}
    for name, role in roles.items():
        members = User.objects.filter(groups__name=role.value, is_active=True).order_by("pk")[:CLIENTS]
        tokens[name] = [token_create(actor=user, name=token_name, scopes=list(Scope.values))[1] for user in members]
    biggest = Step.objects.values("deployment").annotate(steps=Count("id")).order_by("-steps").first()
    return Landscape(
        releases=Release.objects.aggregate(Max("id"))["id__max"],
        changes=ChangeRecord.objects.aggregate(Max("id"))["id__max"],
        deployments=Deployment.objects.aggregate(Max("id"))["id__max"],
        cis=ConfigurationItem.objects.aggregate(Max("id"))["id__max"],
        hub_ci=ConfigurationItem.objects.get(name="core-network").pk,
        big_deployment=biggest["deployment"],
        production=Environment.objects.filter(tier="production").order_by("promotion_order").last().pk,
        services=list(Service.objects.exclude(name__startswith="Bench ").values_list("pk", flat=True)),
        minor_policy=ReleasePolicy.objects.filter(release_type="minor", active=True).first().pk,
        tokens=tokens,
    )


@dataclass
class Outcome:
    """What one operation measured: latencies of the answers expected, and every other answer."""

    latencies: list[float] = field(default_factory=list)
    unexpected: list[tuple[int, str]] = field(default_factory=list)


class Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.operations: dict[str, Outcome] = defaultdict(Outcome)

    def add(self, operation: str, seconds: float, status: int, expected: bool, body: str) -> None:
        with self.lock:
            outcome = self.operations[operation]
            outcome.latencies.append(seconds)
            if not expected:
                outcome.unexpected.append((status, body[:500]))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000 if ordered else float("nan")


class ApiClient:
    """One keep-alive connection sending one request after another, as the people whose tokens it holds."""

    def __init__(self, number: int, world: Landscape, results: Results):
        self.number = number
        self.world = world
        self.results = results
        self.rng = random.Random(number)
        self.connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
        self.follow_ups: list[Callable[[], None]] = []  # transitions of what this client created, in order

    def token(self, role: str, offset: int = 0) -> str:
        tokens = self.world.tokens[role]
        return tokens[(self.number + offset) % len(tokens)]

    def call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        role: str = "viewer",
        offset: int = 0,
        body: dict | None = None,
        expected: tuple[int, ...] = (200,),
    ) -> dict | None:
        headers = {"Authorization": f"Bearer {self.token(role, offset)}", "Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body)
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        try:
            self.connection.request(method, path, body=payload, headers=headers)
            response = self.connection.getresponse()
            status, text = response.status, response.read().decode(errors="replace")
        except (OSError, http.client.HTTPException) as error:
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
            status, text = 0, f"{type(error).__name__}: {error}"
        ok = status in expected
        self.results.add(operation, time.perf_counter() - started, status, ok, "" if ok else f"{method} {path} {text}")
        if not ok or not text:
            return None
        return json.loads(text)

    # --- reads ---------------------------------------------------------------------------------------------

    def read(self) -> None:
        rng, world = self.rng, self.world
        choice = rng.randrange(13)
        if choice == 0:
            state = rng.choice(["closed", "approved", "submitted", "early_life_support", "cancelled"])
            self.call("list releases ?state", "GET", f"/api/v1/releases/?state={state}")
        elif choice == 1:
            self.call("list releases ?services", "GET", f"/api/v1/releases/?services={rng.choice(world.services)}")
        elif choice == 2:
            path = f"/api/v1/deployments/?environment={world.production}&state={rng.choice(['succeeded', 'failed'])}"
            self.call("list deployments ?environment&state", "GET", path)
        elif choice == 3:
            self.call("list changes ?state", "GET", f"/api/v1/changes/?state={rng.choice(['approved', 'closed'])}")
        elif choice == 4:
            self.call("list incidents ?state", "GET", "/api/v1/incidents/?state=open")
        elif choice == 5:
            path = f"/api/v1/audit-events/?object_type=releases.release&object_id={rng.randint(1, world.releases)}"
            self.call("list audit events ?object", "GET", path)
        elif choice == 6:
            self.call("release detail", "GET", f"/api/v1/releases/{rng.randint(1, world.releases)}/")
        elif choice == 7:
            self.call("deployment detail", "GET", f"/api/v1/deployments/{rng.randint(1, world.deployments)}/")
        elif choice == 8:
            self.call("change detail", "GET", f"/api/v1/changes/{rng.randint(1, world.changes)}/")
        elif choice == 9:
            self.call("CI impact", "GET", f"/api/v1/cis/{rng.randint(1, world.cis)}/impact/")
        elif choice == 10:
            hub = world.hub_ci if rng.random() < 0.5 else world.hub_ci + 1
            self.call("CI impact (core network hub)", "GET", f"/api/v1/cis/{hub}/impact/")
        elif choice == 11:
            self.call("DORA metrics", "GET", "/api/v1/metrics/dora/")
        else:
            self.call("deployment detail (1,000 steps)", "GET", f"/api/v1/deployments/{world.big_deployment}/")

    # --- writes and the transitions that follow them -------------------------------------------------------

    def create(self) -> None:
        choice = self.rng.randrange(3)
        (self.create_release, self.create_change, self.create_incident)[choice]()

    def create_release(self) -> None:
        start = datetime.now(UTC) + timedelta(days=10, minutes=self.rng.randint(0, 10_000))
        body = {
            "name": f"Load {RUN} {self.number}",
            "version": f"{time.monotonic_ns()}",
            "release_type": "minor",
            "policy": self.world.minor_policy,
            "services": [self.rng.choice(self.world.services)],
            "planned_start": start.isoformat(),
            "planned_end": (start + timedelta(hours=2)).isoformat(),
            "description": "Created by the load benchmark.",
        }
        release = self.call(
            "create release", "POST", "/api/v1/releases/", role="release_manager", body=body, expected=(201,)
        )
        if release is None:
            return
        path = f"/api/v1/releases/{release['id']}"
        self.follow_ups += [
            lambda: self.call("release plan", "POST", f"{path}/plan/", role="release_manager", body={}),
            lambda: self.call("release submit", "POST", f"{path}/submit/", role="release_manager", body={}),
            lambda: self.call("release approve", "POST", f"{path}/approve/", role="release_manager", offset=1, body={}),
        ]

    def create_change(self) -> None:
        start = datetime.now(UTC) + timedelta(days=3, minutes=self.rng.randint(0, 10_000))
        body = {
            "change_type": "normal",
            "title": f"Load {RUN} change by client {self.number}",
            "risk": "low",
            "services": [self.rng.choice(self.world.services)],
            "planned_start": start.isoformat(),
            "planned_end": (start + timedelta(hours=1)).isoformat(),
        }
        change = self.call(
            "create change", "POST", "/api/v1/changes/", role="deployment_manager", body=body, expected=(201,)
        )
        if change is None:
            return
        path = f"/api/v1/changes/{change['id']}"
        self.follow_ups += [
            lambda: self.call("change submit", "POST", f"{path}/submit/", role="deployment_manager", body={}),
            lambda: self.call("change assess", "POST", f"{path}/assess/", role="change_approver", body={}),
            lambda: self.call("change approve", "POST", f"{path}/approve/", role="change_approver", body={}),
        ]

    def create_incident(self) -> None:
        body = {
            "title": f"Load {RUN}: errors on client {self.number}",
            "severity": "p3",
            "ci": self.rng.randint(1, self.world.cis),
        }
        incident = self.call(
            "create incident", "POST", "/api/v1/incidents/", role="service_owner", body=body, expected=(201,)
        )
        if incident is None:
            return
        path = f"/api/v1/incidents/{incident['id']}"
        self.follow_ups += [
            lambda: self.call("incident acknowledge", "POST", f"{path}/acknowledge/", role="service_owner", body={}),
            lambda: self.call("incident resolve", "POST", f"{path}/resolve/", role="service_owner", body={}),
        ]

    def run(self, deadline: float) -> None:
        weights = (READ_WEIGHT, CREATE_WEIGHT, TRANSITION_WEIGHT)
        while time.monotonic() < deadline:
            kind = self.rng.choices(("read", "create", "transition"), weights)[0]
            if kind == "read":
                self.read()
            elif kind == "transition" and self.follow_ups:
                self.follow_ups.pop(0)()
            else:
                self.create()
        self.connection.close()


def rollout_start(target_server, token: str) -> int:
    """Plan and start, through the API, a phased rollout of ``ROLLOUT_TARGETS`` targets whose steps call the
    target server; returns the deployment's id."""
    from bench.rollout import landscape
    from bench.rollout_io import call_of

    _, (process,), environment = landscape(
        services=1, targets=ROLLOUT_TARGETS, executor="http_call", parameters=call_of(target_server)
    )
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": "application/json"}
    body = {
        "process": process.pk,
        "environment": environment.pk,
        "model": "phased",
        "phase_plan": {"canary": 1, "percentages": [10, 50, 100], "bake_seconds": 0},
    }
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    try:
        connection.request("POST", "/api/v1/deployments/", body=json.dumps(body), headers=headers)
        response = connection.getresponse()
        answer = response.read().decode()
        if response.status != 201:
            raise RuntimeError(f"planning the rollout answered {response.status}: {answer}")
        deployment = json.loads(answer)["id"]
        connection.request("POST", f"/api/v1/deployments/{deployment}/start/", body="{}", headers=headers)
        response = connection.getresponse()
        answer = response.read().decode()
        if response.status != 200:
            raise RuntimeError(f"starting the rollout answered {response.status}: {answer}")
    finally:
        connection.close()
    return deployment


def rollout_state(deployment: int) -> tuple[str, float | None]:
    """The rollout's state and, once it ended, how long it ran (as the worker recorded it)."""
    from deployments.models import Deployment

    row = Deployment.objects.get(pk=deployment)
    seconds = (row.finished_at - row.started_at).total_seconds() if row.finished_at and row.started_at else None
    return row.state, seconds


def report(results: Results, elapsed: float, rollout: int, state: str, seconds: float | None) -> int:
    total = sum(len(outcome.latencies) for outcome in results.operations.values())
    unexpected = [
        (name, status, body) for name, outcome in results.operations.items() for status, body in outcome.unexpected
    ]
    server_errors = sum(1 for _, status, _ in unexpected if status >= 500)
    unanswered = sum(1 for _, status, _ in unexpected if status == 0)
    database = bench_database_url().rsplit("/", 1)[-1].split("?")[0]
    print(f"\n{CLIENTS} API clients on {database}, {SECONDS:.0f} s of requests, all answered after {elapsed:.0f} s:")
    print(
        f"  {total:,} requests, {total / elapsed:.1f} requests/s, {len(unexpected)} unexpected answers: "
        f"{server_errors} server errors (5xx), {unanswered} not answered (time-out after 60 s, connection reset)"
    )
    print(f"\n  {'operation':<40} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'unexpected':>10}")
    for name in sorted(results.operations):
        outcome = results.operations[name]
        print(
            f"  {name:<40} {len(outcome.latencies):>8} {percentile(outcome.latencies, 0.5):>8.0f} "
            f"{percentile(outcome.latencies, 0.95):>8.0f} {len(outcome.unexpected):>10}"
        )
    shown: dict[tuple[str, int], int] = defaultdict(int)
    for name, status, body in unexpected:
        shown[(name, status)] += 1
        if shown[(name, status)] <= 3:
            print(f"\n  {status or 'no answer'} for {name}: {body}")
    finished = state in ("succeeded", "failed", "rolled_back", "aborted")
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    print(
        f"\n  rollout #{rollout} ({ROLLOUT_TARGETS} targets, phased, steps of 100 ms): "
        f"{'finished' if finished else 'NOT finished'}, {state}{took}"
    )
    return 0 if server_errors == unanswered == 0 and state == "succeeded" else 1


def main() -> int:
    database_url = bench_database_url()
    embedded.start(postgres="BENCH_DATABASE_URL" not in os.environ, redis="REDIS_URL" not in os.environ)
    redis_url = os.environ.get("REDIS_URL") or embedded.redis_url(db=4)
    with tempfile.TemporaryDirectory() as scratch:
        env = server_env(database_url, redis_url, Path(scratch))
        os.environ.update({name: env[name] for name in ("DATABASE_URL", "REDIS_URL", "RDM_CELERY_QUEUE")})
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rdm_site.settings")
        import django

        django.setup()
        missing = scale_data_missing()
        if missing:
            print(f"Cannot measure: {missing}.\n{HOW_TO_GENERATE}", file=sys.stderr)
            return 2
        from tests.harness.target_server import running_target_server

        print(f"reading the landscape and making API tokens (run {RUN})…", flush=True)
        world = landscape_read(f"bench-load-{RUN}")
        logs = {name: open(Path(scratch) / f"{name}.log", "wb") for name in ("web", "worker", "beat")}  # noqa: SIM115
        commands = {
            "web": web_command(f"127.0.0.1:{PORT}"),
            "worker": worker_command(queue=QUEUE, concurrency=2, hostname=f"bench-{QUEUE}@%h"),
            "beat": beat_command(),
        }
        processes = {
            name: subprocess.Popen(
                argv, env=env, stdout=logs[name], stderr=subprocess.STDOUT, cwd=embedded.PROJECT_ROOT
            )
            for name, argv in commands.items()
        }
        results = Results()
        try:
            wait_ready(f"http://127.0.0.1:{PORT}")
            with running_target_server() as target:
                rollout = rollout_start(target, world.tokens["deployment_manager"][0])
                print(f"rollout #{rollout} started; {CLIENTS} clients for {SECONDS:.0f} s…", flush=True)
                clients = [ApiClient(number, world, results) for number in range(CLIENTS)]
                began = time.monotonic()
                deadline = began + SECONDS
                threads = [threading.Thread(target=client.run, args=(deadline,)) for client in clients]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                elapsed = time.monotonic() - began
                waited = time.monotonic() + ROLLOUT_WAIT
                state, seconds = rollout_state(rollout)
                while seconds is None and time.monotonic() < waited:
                    time.sleep(1)
                    state, seconds = rollout_state(rollout)
        finally:
            for process in processes.values():
                process.terminate()
            for process in processes.values():
                with contextlib.suppress(Exception):
                    process.wait(timeout=30)
            for log in logs.values():
                log.close()
        for name in ("web", "worker"):
            tracebacks = (Path(scratch) / f"{name}.log").read_text(errors="replace").count("Traceback")
            if tracebacks:
                print(f"{name} log: {tracebacks} traceback(s)")
        return report(results, elapsed, rollout, state, seconds)


if __name__ == "__main__":
    sys.exit(main())
