"""Browser pages benchmark: the dashboard and the releases list against the serving benchmark's minimal DRF list
(50 users with their roles), served by the production command (gunicorn, ``rdm_site.launcher.web_command``) in
the same run, signed in as the Viewer.

Run with ``make bench-pages`` (part of ``make bench``), or ``.venv/bin/python -m bench.pages``. Environment:
``BENCH_ROWS`` (releases, changes and deployments to grow the demo to; default 2000), ``BENCH_CONNECTIONS``,
``BENCH_SECONDS``. It uses its own database (``rdm_bench_pages``) on the embedded PostgreSQL, or on
DATABASE_URL's server (where that database must exist). Prints requests per second, p50 and p99 of each page
and its ratio to the DRF list.

The demo is grown with the API benchmark's copies (``bench.api_data seed``), spread over every release,
change and deployment state, with deployments finished over the last 60 days, so each part of the dashboard
has rows to read.
"""

from __future__ import annotations

import os
import subprocess
import sys

from bench.http_load import run_load
from bench.serving import CONNECTIONS, SECONDS, bench_env, prepare, sign_in, wait_ready
from rdm_site.launcher import PYTHON, web_command

PAGES_DB = "rdm_bench_pages"
ROWS = int(os.environ.get("BENCH_ROWS", "2000"))
YARDSTICK = "DRF list: 50 users with roles"
SCENARIOS = {
    YARDSTICK: "/api/v1/users/",
    "dashboard": "/",
    "releases list (first page)": "/releases/",
}


def env() -> dict[str, str]:
    return bench_env(PAGES_DB, DJANGO_SETTINGS_MODULE="bench.settings")  # the API unthrottled: a yardstick, not a limit


def spread_states() -> None:
    """Give the bench copies every state, and the finished deployments the last 60 days (bulk updates)."""
    import django

    django.setup()
    from datetime import timedelta

    from django.db.models import F
    from django.utils import timezone

    from deployments.choices import DeploymentState
    from deployments.models import Deployment
    from releases.choices import ChangeState, ReleaseState
    from releases.models import ChangeRecord, Release

    def spread(rows, states) -> None:
        for index, state in enumerate(states):
            rows.annotate(bucket=F("id") % len(states)).filter(bucket=index).update(state=state)

    spread(Release.objects.filter(name__startswith="Bench "), ReleaseState.values)
    spread(ChangeRecord.objects.filter(number__startswith="BENCH-"), ChangeState.values)
    copies = Deployment.objects.exclude(pk=Deployment.objects.order_by("id").values("pk")[:1])
    spread(copies, [DeploymentState.SUCCEEDED] * 8 + [DeploymentState.FAILED, DeploymentState.ROLLED_BACK])
    now = timezone.now()
    for day in range(60):
        copies.annotate(bucket=F("id") % 60).filter(bucket=day).update(finished_at=now - timedelta(days=day))


def main() -> int:
    prepare(PAGES_DB)
    subprocess.run([PYTHON, "-m", "bench.api_data", "seed", str(ROWS)], check=True, env=env())
    subprocess.run([PYTHON, "-m", "bench.pages", "spread"], check=True, env=env())
    port = 8775
    bind = f"127.0.0.1:{port}"
    process = subprocess.Popen(web_command(bind), env=env(), stdout=subprocess.DEVNULL)
    rates = {}
    try:
        base = f"http://{bind}"
        wait_ready(base)
        cookie = sign_in(base)
        print(f"gunicorn, {ROWS} releases, changes and deployments, {CONNECTIONS} connections, {SECONDS:.0f} s each")
        for scenario, path in SCENARIOS.items():
            run_load("127.0.0.1", port, path, cookie=cookie, connections=CONNECTIONS, seconds=1)  # warm-up
            result = run_load("127.0.0.1", port, path, cookie=cookie, connections=CONNECTIONS, seconds=SECONDS)
            rates[scenario] = result.rate
            print(
                f"{scenario:<32} {path:<16} {result.rate:8.1f} req/s  p50 {result.percentile(0.5):7.1f} ms  "
                f"p99 {result.percentile(0.99):7.1f} ms  errors {result.errors}",
                flush=True,
            )
    finally:
        process.terminate()
        process.wait(timeout=20)
    print(f"\nratio to the {YARDSTICK}:")
    for scenario, rate in rates.items():
        if scenario != YARDSTICK:
            print(f"  {scenario:<32} {rate / rates[YARDSTICK]:.2f}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["spread"]:
        spread_states()
        sys.exit(0)
    sys.exit(main())
