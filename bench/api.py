"""API list benchmark: the releases and deployments lists of the API against a minimal DRF ListAPIView over the
same table (bench/urls.py), served by the same gunicorn in the same run. Run with ``make bench-api``.

Prints requests per second of each and the ratio (goal: the product's list at least 0.8 of the yardstick's), and
the query count of each product list with 50 and with 5,000 rows (they must be equal: no query per row). Uses its
own database (``rdm_bench_api``) on the embedded PostgreSQL (or on DATABASE_URL's server).
"""

from __future__ import annotations

import os
import subprocess
import sys

from bench import serving
from bench.http_load import run_load
from bench.serving import wait_ready
from rdm_site import embedded
from rdm_site.launcher import PYTHON, web_command

CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
BENCH_DB = "rdm_bench_api"
ROWS = (50, 5000)
LISTS = {
    "releases": ("/api/v1/releases/", "/bench/releases/"),
    "deployments": ("/api/v1/deployments/", "/bench/deployments/"),
}


def bench_env() -> dict[str, str]:
    return serving.bench_env(BENCH_DB, DJANGO_SETTINGS_MODULE="bench.settings")


def in_bench_database(*arguments: str) -> str:
    """Run ``python -m bench.api_data <arguments>`` against the bench database; return what it printed."""
    done = subprocess.run(
        [PYTHON, "-m", "bench.api_data", *arguments], check=True, env=bench_env(), capture_output=True, text=True
    )
    return done.stdout.strip()


def main() -> int:
    embedded.start(postgres="DATABASE_URL" not in os.environ, redis="REDIS_URL" not in os.environ)
    serving.database_make(BENCH_DB)
    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], check=True, env=bench_env())
    queries = {}
    for rows in ROWS:
        in_bench_database("seed", str(rows))
        for name, (path, _) in LISTS.items():
            queries[(name, rows)] = int(in_bench_database("queries", path))
    token = in_bench_database("token")

    port = 8775
    bind = f"127.0.0.1:{port}"
    server = subprocess.Popen(web_command(bind), env=bench_env(), stdout=subprocess.DEVNULL)
    rates = {}
    try:
        wait_ready(f"http://{bind}")
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        for paths in LISTS.values():
            for path in paths:
                run_load("127.0.0.1", port, path, connections=CONNECTIONS, seconds=1, extra_headers=headers)
                result = run_load(
                    "127.0.0.1", port, path, connections=CONNECTIONS, seconds=SECONDS, extra_headers=headers
                )
                rates[path] = result.rate
                print(
                    f"{path:<24} {result.rate:8.1f} req/s  p50 {result.percentile(0.5):6.1f} ms  "
                    f"p99 {result.percentile(0.99):7.1f} ms  errors {result.errors}",
                    flush=True,
                )
    finally:
        server.terminate()
        server.wait(timeout=20)

    print(f"\n{CONNECTIONS} connections, {SECONDS:.0f} s each, {ROWS[-1]} rows per table, 50 rows a page:")
    for name, (product, yardstick) in LISTS.items():
        ratio = rates[product] / rates[yardstick]
        counts = ", ".join(f"{queries[(name, rows)]} queries at {rows} rows" for rows in ROWS)
        print(f"  {name:<12} ratio (API list ÷ minimal ListAPIView): {ratio:.2f}   {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
