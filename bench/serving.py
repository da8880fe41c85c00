"""Serving layout benchmark: gunicorn (WSGI, gthread, persistent connections) against uvicorn
(ASGI, psycopg pool), on a realistic page and a 50-row DRF list. Run with ``make bench``.

It uses its own database (``rdm_bench``) on the embedded PostgreSQL (or on DATABASE_URL's
server), so the demo data is left alone. Figures are requests per second from a closed loop of
keep-alive connections on this machine; ratios are against gunicorn measured in the same run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

from bench.http_load import run_load
from rdm_site import embedded
from rdm_site.launcher import PYTHON, web_command

CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
BENCH_DB = "rdm_bench"
USERS = 60  # more than one API page of 50


# How the benchmarks run RDM's processes: as served (no query log, no template debugging), logging warnings only.
SERVED_ENV = {"DEBUG": "false", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}


def database_url(name: str) -> str:
    """Database ``name`` on DATABASE_URL's server (its path alone replaced: a user may share the database's name),
    or on the embedded one."""
    if "DATABASE_URL" not in os.environ:
        return embedded.database_url(name)
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{name}"))


def database_make(name: str, *, fresh: bool = False) -> None:
    """Database ``name`` on the benchmarks' server (started before): made if missing, or made afresh so that no
    earlier run's rows weigh on this one."""
    import psycopg

    with psycopg.connect(database_url("postgres"), autocommit=True) as connection:
        if fresh:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if fresh or not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def bench_env(database: str = BENCH_DB, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url(database),
        **SERVED_ENV,
        **extra,
    }


def prepare(database: str = BENCH_DB) -> None:
    """The demo data and more than a page of users in ``database`` (made if missing)."""
    embedded.start(postgres="DATABASE_URL" not in os.environ, redis="REDIS_URL" not in os.environ)
    database_make(database)
    env = bench_env(database)
    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], check=True, env=env)
    subprocess.run([PYTHON, "manage.py", "demo_load"], check=True, env=env, stdout=subprocess.DEVNULL)
    script = (
        "from django.contrib.auth.models import Group, User\n"
        "viewer = Group.objects.get(name='Viewer')\n"
        f"for n in range({USERS}):\n"
        "    user, _ = User.objects.get_or_create(username=f'bench{n:03}', defaults={'first_name': 'Bench'})\n"
        "    user.groups.add(viewer)\n"
    )
    subprocess.run([PYTHON, "manage.py", "shell", "-c", script], check=True, env=env)


def uvicorn_command(bind: str) -> list[str]:
    host, port = bind.split(":")
    return [PYTHON, "-m", "uvicorn", "rdm_site.asgi:application", "--host", host, "--port", port,
            "--workers", "2", "--no-access-log", "--log-level", "warning"]  # fmt: skip


def wait_ready(base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{base} did not come up")


def sign_in(base: str, username: str = "vera.viewer", password: str = "rdm-demo") -> str:  # noqa: S107 - the demo
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/accounts/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = {"username": username, "password": password, "csrfmiddlewaretoken": token}
    opener.open(urllib.request.Request(base + "/accounts/login/", urllib.parse.urlencode(form).encode()))
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in jar)


SCENARIOS = {
    "bare view (/healthz)": "/healthz",
    "page: team and roles (template, 3 queries)": "/team/",
    "DRF list: 50 users with roles": "/api/v1/users/",
}
SERVERS = {
    "gunicorn gthread 2x8 (WSGI, persistent connections)": (web_command, {}),
    "uvicorn 2 workers (ASGI, psycopg pool)": (uvicorn_command, {"DATABASE_POOL": "true"}),
}


def main() -> int:
    prepare()
    port = 8765
    results: dict[str, dict[str, float]] = {}
    for server_name, (command, extra_env) in SERVERS.items():
        bind = f"127.0.0.1:{port}"
        process = subprocess.Popen(command(bind), env=bench_env(**extra_env), stdout=subprocess.DEVNULL)
        try:
            base = f"http://{bind}"
            wait_ready(base)
            cookie = sign_in(base)
            for scenario, path in SCENARIOS.items():
                run_load("127.0.0.1", port, path, cookie=cookie, connections=CONNECTIONS, seconds=1)  # warm-up
                result = run_load("127.0.0.1", port, path, cookie=cookie, connections=CONNECTIONS, seconds=SECONDS)
                results.setdefault(scenario, {})[server_name] = result.rate
                print(
                    f"{server_name:<52} {scenario:<44} {result.rate:8.1f} req/s  "
                    f"p50 {result.percentile(0.5):6.1f} ms  p99 {result.percentile(0.99):7.1f} ms  "
                    f"errors {result.errors}",
                    flush=True,
                )
        finally:
            process.terminate()
            process.wait(timeout=20)
        port += 1
    baseline, other = SERVERS
    print(f"\nratio (uvicorn ÷ gunicorn, {CONNECTIONS} connections, {SECONDS:.0f} s each):")
    for scenario, rates in results.items():
        print(f"  {scenario:<44} ratio: {rates[other] / rates[baseline]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
