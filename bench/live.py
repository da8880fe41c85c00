"""Live rollout benchmark: 200 browsers watching one deployment's event stream while others use the pages.
Run with ``make bench-live`` (part of ``make bench``).

For each serving layout, in the same run: the dashboard (``/``, signed in) is loaded by 8 keep-alive
connections with no stream open (the baseline), then ``BENCH_STREAMS`` SSE clients (asyncio, raw sockets)
open ``/deployments/<pk>/events/stream/`` of a running deployment and the dashboard is loaded again while
this process pauses and resumes that deployment every ``BENCH_TICK`` seconds with the control services
(each a committed state change, its events written and published after commit), then aborts it: every
client must then get ``event: end``. Printed: how many streams opened, the latency from the service call
to receipt by every client (p50/p95/p99), the dashboard's request rate with and without the streams and
their ratio, the server's memory (RSS summed over gunicorn's processes) with the streams open, and the
database connections it held.

It uses its own database (``rdm_bench_live``, made afresh each run) and Redis database 3 of the embedded
server (or the REDIS_URL given), so the demo data and a running RDM are left alone.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from unittest import mock

import psutil

from bench.http_load import run_load
from bench.serving import SERVED_ENV, database_make, database_url, sign_in, wait_ready
from rdm_site import embedded
from rdm_site.launcher import PYTHON, web_command

STREAMS = int(os.environ.get("BENCH_STREAMS", "200"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
TICK = float(os.environ.get("BENCH_TICK", "0.25"))
CONNECTIONS = 8
BENCH_DB = "rdm_bench_live"
QUEUE = f"rdm-bench-live-{uuid.uuid4().hex[:8]}"
LAYOUTS = {
    "before: gunicorn gthread 2x8, persistent connections": {"WEB_THREADS": "8", "DATABASE_POOL": "false"},
    "gunicorn gthread 2x256, persistent connections": {"WEB_THREADS": "256", "DATABASE_POOL": "false"},
    "chosen: gunicorn gthread 2x256, psycopg pool (web_command's defaults)": {},
}


def bench_env(**extra: str) -> dict[str, str]:
    """The bench database and Redis, and a queue of its own that no worker serves: steps stay queued."""
    redis_url = os.environ.get("REDIS_URL") or embedded.redis_url(db=3)
    return {
        **os.environ,
        "DATABASE_URL": database_url(BENCH_DB),
        "REDIS_URL": redis_url,
        "RDM_CELERY_QUEUE": QUEUE,
        **SERVED_ENV,
        **extra,
    }


def prepare():
    """A fresh database with the demo data and a service of 4 targets to deploy."""
    embedded.start(postgres="DATABASE_URL" not in os.environ, redis="REDIS_URL" not in os.environ)
    database_make(BENCH_DB, fresh=True)
    os.environ.update(bench_env())
    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], check=True, cwd=embedded.PROJECT_ROOT)
    subprocess.run([PYTHON, "manage.py", "demo_load"], check=True, cwd=embedded.PROJECT_ROOT, stdout=subprocess.DEVNULL)
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rdm_site.settings")
    django.setup()
    from django.contrib.auth.models import User

    from cmdb.choices import CiState, CiType, EnvironmentTier
    from cmdb.models import ConfigurationItem, Environment, Service
    from deployments.models import DeploymentProcess, StepTemplate, Target

    environment = Environment.objects.create(
        name="bench-live", slug="bench-live", tier=EnvironmentTier.STAGING, promotion_order=9000
    )
    service = Service.objects.create(
        name="Bench live", slug="bench-live", owner=User.objects.get(username="oscar.owner")
    )
    for n in range(4):
        ci = ConfigurationItem.objects.create(
            name=f"live-{n}", ci_type=CiType.SERVER, state=CiState.LIVE, environment=environment, service=service
        )
        Target.objects.create(ci=ci)
    process = DeploymentProcess.objects.create(service=service, name="simulated")
    StepTemplate.objects.create(process=process, name="deploy", executor="simulator", parameters={})
    return Rollout(User.objects.get(username="dan.deploy"), process, environment)


@dataclass
class Rollout:
    manager: object
    process: object
    environment: object


def deployment_running(rollout) -> int:
    """A new deployment of the bench service, started and running (its steps queued for no worker)."""
    from deployments import engine
    from deployments.services import deployment_create, deployment_start

    deployment = deployment_create(
        actor=rollout.manager, process=rollout.process, environment=rollout.environment, version="1.0.0"
    )
    deployment_start(deployment=deployment, actor=rollout.manager)
    engine.deployment_advance(deployment_id=deployment.pk)
    return deployment.pk


def state_change(deployment_id: int, service, actor) -> dict[int, float]:
    """Call a control service; returns each event it committed, with the time of the commit."""
    from django.db import transaction

    from deployments.models import Deployment

    with transaction.atomic():  # the service's own block becomes a savepoint: ours is the commit
        deployment = Deployment.objects.get(pk=deployment_id)
        before = deployment.last_event_seq
        deployment = service(deployment=deployment, actor=actor, reason="bench")
        committing = time.monotonic()
    return dict.fromkeys(range(before + 1, deployment.last_event_seq + 1), committing)


class Ticker(threading.Thread):
    """Pauses and resumes the deployment every ``TICK`` seconds until stopped, leaving it running."""

    def __init__(self, deployment_id: int, actor):
        super().__init__(daemon=True)
        self.deployment_id, self.actor = deployment_id, actor
        self.committed: dict[int, float] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        from deployments.services import deployment_pause, deployment_resume

        paused = False
        while not self.stopped.is_set() or paused:
            control = deployment_resume if paused else deployment_pause
            self.committed.update(state_change(self.deployment_id, control, self.actor))
            paused = not paused
            time.sleep(TICK)

    def stop(self) -> dict[int, float]:
        self.stopped.set()
        self.join()
        return self.committed


def watch(port: int, path: str, cookie: str, opened, ended, results) -> None:
    """In a process of its own: ``STREAMS`` SSE clients on one event loop; sends ``{seq: [receipt times]}``."""
    received: dict[int, list[float]] = {}

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\nAccept: text/event-stream\r\n\r\n"
        writer.write(request.encode())
        try:
            while line := await reader.readline():
                if line.startswith(b"retry:"):
                    with opened.get_lock():
                        opened.value += 1
                elif line.startswith(b"id: "):
                    received.setdefault(int(line[4:]), []).append(time.monotonic())
                elif line.startswith(b"event: end"):
                    with ended.get_lock():
                        ended.value += 1
                    break
        finally:
            writer.close()

    async def clients() -> None:
        await asyncio.wait([asyncio.ensure_future(client()) for _ in range(STREAMS)], timeout=SECONDS * 4 + 60)

    asyncio.run(clients())
    results.send(received)


def server_memory(pid: int) -> float:
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


def database_connections() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) - 1 FROM pg_stat_activity WHERE datname = %s", [BENCH_DB])
        return cursor.fetchone()[0]


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else float("nan")


def measure(name: str, extra_env: dict[str, str], rollout: Rollout, port: int, server_log) -> None:
    from deployments.models import Deployment
    from deployments.services import deployment_abort

    with mock.patch.dict(os.environ, extra_env):  # web_command reads WEB_THREADS from the environment
        command = web_command(f"127.0.0.1:{port}")
    process = subprocess.Popen(
        command, env=bench_env(**extra_env), stdout=subprocess.DEVNULL, stderr=server_log, cwd=embedded.PROJECT_ROOT
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base)
        cookie = sign_in(base)
        deployment_id = deployment_running(rollout)
        run_load("127.0.0.1", port, "/", cookie=cookie, connections=CONNECTIONS, seconds=1)  # warm-up
        ticker = Ticker(deployment_id, rollout.manager)
        ticker.start()
        alone = run_load("127.0.0.1", port, "/", cookie=cookie, connections=CONNECTIONS, seconds=SECONDS)
        ticker.stop()

        after = Deployment.objects.get(pk=deployment_id).last_event_seq
        spawn = multiprocessing.get_context("spawn")
        opened, ended = spawn.Value("i", 0), spawn.Value("i", 0)
        results, sender = spawn.Pipe(duplex=False)
        path = f"/deployments/{deployment_id}/events/stream/?after={after}"
        watchers = spawn.Process(target=watch, args=(port, path, cookie, opened, ended, sender))
        watchers.start()
        wait_for(lambda: opened.value >= STREAMS, 20)
        open_streams = opened.value
        ticker = Ticker(deployment_id, rollout.manager)
        ticker.start()
        watched = run_load("127.0.0.1", port, "/", cookie=cookie, connections=CONNECTIONS, seconds=SECONDS)
        memory, connections = server_memory(process.pid), database_connections()
        committed = ticker.stop()
        ending = state_change(deployment_id, deployment_abort, rollout.manager)
        committed.update(ending)
        wait_for(lambda: ended.value >= STREAMS, 20)
        received = results.recv() if results.poll(30) else {}
        watchers.terminate()
        watchers.join()

        latencies = [(receipt - at) * 1000 for seq, at in committed.items() for receipt in received.get(seq, [])]
        print(f"\n{name}")
        print(f"  streams open within 20 s: {open_streams}/{STREAMS}; ended by `event: end`: {ended.value}")
        print(
            f"  events: {len(committed)} (pause/resume every {TICK} s, then abort); received {len(latencies)}/"
            f"{len(committed) * STREAMS}; commit → received p50 {percentile(latencies, 0.5):.0f} ms, "
            f"p95 {percentile(latencies, 0.95):.0f} ms, p99 {percentile(latencies, 0.99):.0f} ms"
        )
        print(
            f"  dashboard: {alone.rate:.1f} req/s with no stream (p50 {alone.percentile(0.5):.0f} ms), "
            f"{watched.rate:.1f} req/s with {open_streams} open (p50 {watched.percentile(0.5):.0f} ms, "
            f"p99 {watched.percentile(0.99):.0f} ms, errors {watched.errors}); ratio {watched.rate / alone.rate:.2f}"
        )
        print(f"  server RSS with the streams open: {memory:.0f} MiB; its database connections: {connections}")
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> int:
    rollout = prepare()
    print(
        f"{STREAMS} SSE clients, dashboard by {CONNECTIONS} connections for {SECONDS:.0f} s without and with them, "
        f"a committed state change every {TICK} s (goals: p95 ≤ 1000 ms, ratio ≥ 0.8)",
        flush=True,
    )
    chosen = os.environ.get("BENCH_LAYOUTS")
    port = 8790
    for name, extra_env in LAYOUTS.items():
        if chosen and chosen not in name:
            continue
        with tempfile.TemporaryFile("w+") as server_log:
            measure(name, extra_env, rollout, port, server_log)
            server_log.seek(0)
            logged = server_log.read()
        print(
            f"  server errors (HTTP 500): {logged.count('ERROR django.request')}; "
            f"PostgreSQL refused connections: {'yes' if 'too many clients' in logged else 'no'}"
        )
        port += 1
    from rdm_site.redis import redis_client

    redis_client().delete(QUEUE)  # the steps no worker ran
    return 0


if __name__ == "__main__":
    sys.exit(main())
