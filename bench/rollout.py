"""Rollout engine benchmark: a 1,000-target phased rollout against 1,000 bare Celery tasks, same broker and
worker. Run with ``make bench`` (or ``python -m bench.rollout``).

Each target gets one zero-latency simulated step; the waves are a 1-target canary, then 10 %, 50 % and
100 % (cumulative), with no bake time and no health gate, so what is measured is the engine's own cost per
step: claiming, running, recording, events and wave transitions, up to the moment the deployment succeeded
(the time its end then takes to record each CI's new version in the CMDB is printed beside). The yardstick
is the same number of no-op tasks (``deployments.tasks.noop_task``) through the same Redis broker to the
same worker (prefork, ``BENCH_CONCURRENCY`` processes, the production settings: late acknowledgement,
prefetch 1).

It uses its own database (``BENCH_DATABASE``, ``rdm_bench_rollout`` by default, made afresh each run on the
embedded PostgreSQL or ``DATABASE_URL``'s server) and its own queue, so the demo data and a running RDM are
left alone. Prints steps/s, tasks/s, their ratio, and the worker's peak memory (RSS summed over its processes).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid

import psutil

from bench import serving
from rdm_site import embedded

TARGETS = int(os.environ.get("BENCH_TARGETS", "1000"))
TASKS = int(os.environ.get("BENCH_TASKS", str(TARGETS)))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "2"))
BENCH_DB = os.environ.get("BENCH_DATABASE", "rdm_bench_rollout")
QUEUE = f"rdm-bench-{uuid.uuid4().hex[:8]}"


def bench_env(database: str, **extra: str) -> dict[str, str]:
    return serving.bench_env(database, RDM_CELERY_QUEUE=QUEUE, **extra)


def prepare(database: str) -> None:
    """Servers started if needed, a fresh migrated database, and Django set up on it in this process."""
    embedded.start(postgres="DATABASE_URL" not in os.environ, redis="REDIS_URL" not in os.environ)
    serving.database_make(database, fresh=True)
    if "REDIS_URL" not in os.environ:
        os.environ["REDIS_URL"] = embedded.redis_url(db=2)
    os.environ.update(bench_env(database))
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], check=True, cwd=embedded.PROJECT_ROOT)
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rdm_site.settings")
    django.setup()


def start_worker(database: str, *, log=subprocess.DEVNULL, **env: str) -> subprocess.Popen:
    """The product's worker command on the bench queue, ``CONCURRENCY`` processes."""
    from rdm_site.launcher import worker_command

    return subprocess.Popen(
        worker_command(queue=QUEUE, concurrency=CONCURRENCY, hostname=f"bench-{QUEUE}@%h"),
        cwd=embedded.PROJECT_ROOT,
        env=bench_env(database, **env),
        stdout=log,
        stderr=log,
    )


class MemoryWatch(threading.Thread):
    """Samples the worker's process tree; ``peak`` is the largest sum of RSS seen."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.root, self.peak, self.stopped = psutil.Process(pid), 0, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.05):
            try:
                processes = [self.root, *self.root.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in processes if p.is_running()))
            except psutil.Error:
                pass


def queue_drained(client) -> bool:
    """Nothing waiting in our queue and nothing delivered but unacknowledged (acks_late: acked when done)."""
    return client.llen(QUEUE) == 0 and client.hlen("unacked") == 0


def wait(condition, timeout: float, what: str, interval: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(interval)


def landscape(*, services: int, targets: int, parameters: dict, executor: str = "simulator"):
    """``services`` services of ``targets`` live CIs each in one new environment, every CI a target, and per
    service a process of one step; returns the Deployment Manager, the processes and the environment."""
    from cmdb.choices import CiState, CiType, EnvironmentTier
    from cmdb.models import ConfigurationItem, Environment, Service
    from deployments.models import DeploymentProcess, StepTemplate, Target
    from rdm_site.demo import demo_users_load

    users = {user.username: user for user in demo_users_load()}
    tag = uuid.uuid4().hex[:6]
    environment = Environment.objects.create(
        name=f"bench-{tag}",
        slug=f"bench-{tag}",
        tier=EnvironmentTier.STAGING,
        promotion_order=1000 + int(tag, 16) % 10000,
    )
    made = Service.objects.bulk_create(
        Service(name=f"Bench {tag} {s:03}", slug=f"bench-{tag}-{s:03}", owner=users["oscar.owner"])
        for s in range(services)
    )
    cis = ConfigurationItem.objects.bulk_create(
        ConfigurationItem(
            name=f"node-{s:03}-{n:04}" if services > 1 else f"node-{n:04}",
            ci_type=CiType.SERVER,
            state=CiState.LIVE,
            environment=environment,
            service=service,
        )
        for s, service in enumerate(made)
        for n in range(targets)
    )
    Target.objects.bulk_create(Target(ci=ci) for ci in cis)
    processes = DeploymentProcess.objects.bulk_create(
        DeploymentProcess(service=service, name="bench") for service in made
    )
    StepTemplate.objects.bulk_create(
        StepTemplate(process=process, name="deploy", executor=executor, parameters=parameters) for process in processes
    )
    return users["dan.deploy"], processes, environment


def main() -> int:
    prepare(BENCH_DB)
    from django.utils import timezone

    from deployments.models import Deployment
    from deployments.services import deployment_create, deployment_start
    from deployments.tasks import noop_task
    from rdm_site.redis import redis_client

    client = redis_client()
    manager, (process,), environment = landscape(services=1, targets=TARGETS, parameters={"latency_ms": 0})
    worker = start_worker(BENCH_DB)
    watch = MemoryWatch(worker.pid)
    watch.start()
    try:
        for _ in range(50):  # warm-up: worker processes forked, connections open
            noop_task.delay()
        wait(lambda: queue_drained(client), 60, "the warm-up tasks")

        began = time.perf_counter()
        for _ in range(TASKS):
            noop_task.delay()
        wait(lambda: queue_drained(client), 300, "the no-op tasks")
        tasks_rate = TASKS / (time.perf_counter() - began)

        deployment = deployment_create(
            actor=manager,
            process=process,
            environment=environment,
            model="phased",
            version="2.0.0",
            phase_plan={"canary": 1, "percentages": [10, 50, 100]},
        )
        began, began_at = time.perf_counter(), timezone.now()
        deployment_start(deployment=deployment, actor=manager)

        def finished() -> bool:
            return Deployment.objects.filter(
                pk=deployment.pk, state__in=["succeeded", "failed", "rolled_back"]
            ).exists()

        wait(finished, 600, "the rollout")
        elapsed = time.perf_counter() - began
        deployment.refresh_from_db()
        if deployment.state != "succeeded":
            raise RuntimeError(f"the rollout ended {deployment.state}: {deployment.outcome}")
        steps = deployment.steps.filter(state="succeeded").count()
        # until it succeeded; the same transaction then records the version of each CI it reached (the CMDB's cost)
        rollout_seconds = (deployment.finished_at - began_at).total_seconds()
        steps_rate = steps / rollout_seconds
    finally:
        watch.stopped.set()
        worker.terminate()
        worker.wait(timeout=30)
    print(f"worker: prefork, concurrency {CONCURRENCY}, queue {QUEUE}, same Redis broker for both runs")
    print(f"no-op Celery tasks: {TASKS} in {TASKS / tasks_rate:.2f} s = {tasks_rate:8.1f} tasks/s")
    print(
        f"phased rollout:     {steps} steps on {TARGETS} targets in {rollout_seconds:.2f} s = "
        f"{steps_rate:8.1f} steps/s (then {elapsed - rollout_seconds:.2f} s to record the CIs' new version in the CMDB)"
    )
    print(f"ratio: {steps_rate / tasks_rate:.2f} (steps/s ÷ tasks/s; goal ≥ 0.5)")
    print(f"worker peak RSS: {watch.peak / 2**20:.0f} MiB (sum over its {CONCURRENCY + 1} processes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
