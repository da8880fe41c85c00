"""``make run``: embedded servers if needed, migrate, demo data, then web + worker + beat.

Ctrl-C stops every process this started, including the embedded servers. ``python -m rdm_site.launcher serve``
runs the web server alone (the container image's command).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

from rdm_site import embedded

PYTHON = sys.executable


def web_command(bind: str) -> list[str]:
    """How RDM serves HTTP, in production and in tests alike (docs/serving.md says why).

    Many threads, because an open live event stream holds one while it waits; a connection pool, so that
    the database sees a few connections per process however many threads there are.
    """
    return [
        PYTHON, "-m", "gunicorn", "rdm_site.wsgi:application",
        "--bind", bind,
        "--worker-class", "gthread",
        "--workers", os.environ.get("WEB_WORKERS", "2"),
        "--threads", os.environ.get("WEB_THREADS", "256"),
        "--env", f"DATABASE_POOL={os.environ.get('DATABASE_POOL', 'true')}",
        "--timeout", "60",
        "--graceful-timeout", "10",
        "--access-logfile", "-",
    ]  # fmt: skip


def worker_command(*, queue: str, concurrency: int = 2, hostname: str = "worker@%h") -> list[str]:
    return [
        PYTHON, "-m", "celery", "-A", "rdm_site", "worker",
        "--queues", queue,
        "--concurrency", str(concurrency),
        "--hostname", hostname,
        "--loglevel", "INFO",
        "--without-gossip", "--without-mingle",
    ]  # fmt: skip


def beat_command() -> list[str]:
    return [PYTHON, "-m", "celery", "-A", "rdm_site", "beat", "--loglevel", "INFO"]


def _manage(*args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], check=True, cwd=embedded.PROJECT_ROOT)


def _wait_until_ready(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own http:// URL
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def address_from_environment() -> tuple[str, int]:
    """Where ``make run`` serves: ``HOST`` and ``PORT`` from the environment, 127.0.0.1:8000 by default."""
    host = os.environ.get("HOST", "127.0.0.1").strip() or "127.0.0.1"
    raw_port = os.environ.get("PORT", "8000").strip()
    if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
        raise SystemExit(f"PORT must be a port number from 1 to 65535, not {raw_port!r}.")
    return host, int(raw_port)


def run(host: str, port: int) -> int:
    started = embedded.start(
        postgres="DATABASE_URL" not in os.environ,
        redis="REDIS_URL" not in os.environ,
    )
    children: list[subprocess.Popen] = []
    try:
        _manage("migrate", "--noinput", "-v", "0")
        _manage("collectstatic", "--noinput", "-v", "0")
        _manage("demo_load")
        queue = os.environ.get("RDM_CELERY_QUEUE", "rdm")
        for stop_signal in (signal.SIGINT, signal.SIGTERM):  # even when started with SIGINT ignored (`cmd &`)
            signal.signal(stop_signal, signal.default_int_handler)
        for argv in (web_command(f"{host}:{port}"), worker_command(queue=queue), beat_command()):
            # Own sessions: Ctrl-C reaches the launcher only, which then stops the children in order.
            children.append(subprocess.Popen(argv, cwd=embedded.PROJECT_ROOT, start_new_session=True))
        url = f"http://{host}:{port}/"
        ready = _wait_until_ready(url + "readyz", timeout=60)
        _print_banner(url, ready)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("A process exited; stopping RDM.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping RDM…", flush=True)
        return 0
    finally:
        _stop(children)
        embedded.stop(started)


def _print_banner(url: str, ready: bool) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rdm_site.settings")
    django.setup()
    from rdm_site.demo import DEMO_PASSWORD, demo_logins

    lines = [f"RDM is {'ready' if ready else 'starting (readiness not reached yet)'} at {url}", "Demo logins:"]
    lines += [f"  {username:<16} {roles}" for username, roles in demo_logins()]
    lines += [
        f"Every demo password is {DEMO_PASSWORD!r}.",
        "Set HOST and PORT to serve elsewhere (e.g. PORT=8080 make run). Press Ctrl-C to stop.",
    ]
    print("\n" + "\n".join(lines) + "\n", flush=True)


def _stop(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()


def serve(host: str, port: int) -> None:
    """The web server alone, as the container image runs it (``python -m rdm_site.launcher serve``)."""
    command = web_command(f"{host}:{port}")
    os.execv(command[0], command)  # noqa: S606 - our own fixed command


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        serve(*address_from_environment())
    sys.exit(run(*address_from_environment()))
