"""I/O-bound rollout benchmark: steps that each wait 100 ms on a local target server, as a call to Argo CD,
Jenkins or a cloud API does. Run with ``make bench`` (or ``python -m bench.rollout_io``).

Every step is an ``http_call`` to ``/effects/<target>?delay=0.1`` on a target server in this process (the test
harness's effects route, served by one asyncio loop: it applies the effect once per idempotency key, counts it,
then answers 100 ms later; the harness's threaded server spends 30 to 40 ms of its own per call when 64 come
at once, which a real target does not). One worker
(the product's command, prefork, ``BENCH_CONCURRENCY`` processes) runs two scenarios with a step concurrency
limit of ``BENCH_STEP_CONCURRENCY`` (64), global and per deployment:

1. a 1,000-target phased rollout (a 1-target canary, then 10 %, 50 % and 100 %, no bake time, no gate);
2. 100 deployments of 10 targets each, on 100 services, started in one transaction.

Each is timed from its start to the end of its last deployment (as the worker wrote it), against the ideal
for the limit: a wave of n targets takes at least ⌈n / limit⌉ times 100 ms, waves one after another; the 100
deployments together are one wave of 1,000. The deployments name no version, so their ends record none in
the CMDB (``bench.rollout`` shows that cost). Each target must have been called once (no step ran twice) and
every deployment succeeded; the worker's log is searched for deadlocks. Its database is ``rdm_bench_io``
(``BENCH_DATABASE``), made afresh.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from pathlib import Path

from bench.rollout import CONCURRENCY, landscape, prepare, start_worker, wait

LATENCY = 0.1
LIMIT = int(os.environ.get("BENCH_STEP_CONCURRENCY", "64"))
BENCH_DB = os.environ.get("BENCH_DATABASE", "rdm_bench_io")
PHASED_TARGETS = 1000
MANY_DEPLOYMENTS, MANY_TARGETS = 100, 10
FINISHED = ("succeeded", "failed", "rolled_back", "aborted")


def ideal(wave_sizes: list[int]) -> float:
    return sum(math.ceil(size / LIMIT) for size in wave_sizes) * LATENCY


def run_together(deployments: list, manager) -> float:
    """Start the deployments in one transaction; seconds from its commit until the last one finished (by the
    finishing times the worker wrote, so that this process looks only now and then)."""
    from django.db import transaction
    from django.db.models import Max
    from django.utils import timezone

    from deployments.models import Deployment
    from deployments.services import deployment_start

    rows = Deployment.objects.filter(pk__in=[deployment.pk for deployment in deployments])
    with transaction.atomic():
        for deployment in deployments:
            deployment_start(deployment=deployment, actor=manager)
        began = timezone.now()  # the tasks are sent on commit, just after this
    wait(lambda: not rows.exclude(state__in=FINISHED).exists(), 900, "the rollouts", interval=0.1)
    return (rows.aggregate(Max("finished_at"))["finished_at__max"] - began).total_seconds()


def report(name: str, deployments: list, target, elapsed: float, wave_sizes: list[int]) -> list[str]:
    """The figures of one scenario; raises when a deployment did not succeed or a target was called twice."""
    from deployments.models import Deployment, Step

    ids = [deployment.pk for deployment in deployments]
    failed = list(Deployment.objects.filter(pk__in=ids).exclude(state="succeeded").values_list("pk", "outcome"))
    if failed:
        raise RuntimeError(f"{name}: {len(failed)} deployments did not succeed, e.g. {failed[0]}")
    steps = Step.objects.filter(deployment_id__in=ids).count()
    calls = target.requests
    called = {}
    for request in calls:
        called[request.path] = called.get(request.path, 0) + 1
    twice = {path: count for path, count in called.items() if count > 1}
    effects = target.effect_counts()
    if twice or len(effects) != steps or set(effects.values()) != {1}:
        raise RuntimeError(f"{name}: a step ran twice or not at all ({len(effects)} effects of {steps}; {twice})")
    best = ideal(wave_sizes)
    return [
        f"{name}: {len(ids)} deployment(s), {steps} steps in {elapsed:.2f} s; all succeeded, each target called once",
        f"  ideal for the limit {LIMIT}: {best:.2f} s ({' + '.join(f'⌈{n}/{LIMIT}⌉' for n in wave_sizes)}) x "
        f"{LATENCY * 1000:.0f} ms; makespan ÷ ideal = {elapsed / best:.2f} (goal ≤ 1.5)",
    ]


def phased_rollout(target) -> list[str]:
    from deployments.services import deployment_create

    manager, (process,), environment = landscape(
        services=1, targets=PHASED_TARGETS, executor="http_call", parameters=call_of(target)
    )
    deployment = deployment_create(
        actor=manager,
        process=process,
        environment=environment,
        model="phased",
        phase_plan={"canary": 1, "percentages": [10, 50, 100], "bake_seconds": 0},
    )
    waves = [wave.target_count for wave in deployment.waves.order_by("index")]
    return report("phased rollout", [deployment], target, run_together([deployment], manager), waves)


def many_deployments(target) -> list[str]:
    from deployments.services import deployment_create

    manager, processes, environment = landscape(
        services=MANY_DEPLOYMENTS, targets=MANY_TARGETS, executor="http_call", parameters=call_of(target)
    )
    deployments = [deployment_create(actor=manager, process=process, environment=environment) for process in processes]
    elapsed = run_together(deployments, manager)
    name = f"{MANY_DEPLOYMENTS} deployments together"
    return report(name, deployments, target, elapsed, [MANY_DEPLOYMENTS * MANY_TARGETS])


def call_of(target) -> dict:
    return {"url": target.url(f"/effects/#{{Target.Name}}?delay={LATENCY}", host="127.0.0.1")}


def main() -> int:
    prepare(BENCH_DB)
    from tests.harness.target_server import running_effects_server

    limits = {
        "RDM_STEP_CONCURRENCY": str(LIMIT),
        "RDM_DEPLOYMENT_STEP_CONCURRENCY": str(LIMIT),
        "OUTBOUND_ALLOWED_HOSTS": "127.0.0.1",
        "OUTBOUND_ALLOW_PRIVATE_NETWORKS": "true",
    }
    lines = []
    with tempfile.TemporaryDirectory() as scratch:
        log_path = Path(scratch) / "worker.log"
        with open(log_path, "wb") as log:
            worker = start_worker(BENCH_DB, log=log, **limits)
        try:
            for scenario in (phased_rollout, many_deployments):
                with running_effects_server() as target:
                    lines += scenario(target)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
        deadlocks = log_path.read_text(errors="replace").count("deadlock detected")
    print(f"worker: prefork, concurrency {CONCURRENCY}; steps wait {LATENCY * 1000:.0f} ms on the target server")
    print("\n".join(lines))
    print(f"deadlocks in the worker's log: {deadlocks}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
