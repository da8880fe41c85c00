"""Real subprocesses for tests: a Celery worker and the production web server, on the test database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from rdm_site.embedded import PROJECT_ROOT
from rdm_site.launcher import beat_command, web_command, worker_command

T = TypeVar("T")


def wait_until(condition: Callable[[], T], *, timeout: float = 15.0, interval: float = 0.05, what: str = "") -> T:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)


def database_url_of(settings_dict: dict) -> str:
    """A DATABASE_URL naming the database this process is connected to (the test database)."""
    options = settings_dict.get("OPTIONS", {})
    host = settings_dict["HOST"] or options.get("host", "")
    port = settings_dict["PORT"] or options.get("port", "")
    credentials = quote(settings_dict["USER"] or "", safe="")
    if settings_dict["PASSWORD"]:
        credentials += ":" + quote(settings_dict["PASSWORD"], safe="")
    name = settings_dict["NAME"]
    if str(host).startswith("/"):
        return f"postgres://{credentials}@/{name}?host={host}&port={port}"
    return f"postgres://{credentials}@{host}:{port}/{name}"


# Set for this test process only (Playwright's event loop, tests/browser/conftest.py); never for a child.
TEST_PROCESS_ONLY = frozenset({"DJANGO_ALLOW_ASYNC_UNSAFE"})


def parent_env() -> dict[str, str]:
    """This process's environment as a child should inherit it."""
    return {name: value for name, value in os.environ.items() if name not in TEST_PROCESS_ONLY}


def subprocess_env(**overrides: str) -> dict[str, str]:
    """The environment a child process needs to share this test session's database, Redis and queue."""
    env = {
        **parent_env(),
        "DATABASE_URL": database_url_of(connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "RDM_CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
        "PYTHONUNBUFFERED": "1",
    }
    env.update(overrides)
    return env


@dataclass
class ManagedProcess:
    """A child process whose output goes to a log file that a failing test can show."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = field(default=None, init=False)

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.process = subprocess.Popen(
            self.argv, cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole process group at once: nothing gets to clean up."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 15) -> None:
        if not self.alive():
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_worker(log_dir: Path, *, name: str = "worker", concurrency: int = 1, **env: str) -> ManagedProcess:
    environment = subprocess_env(**env)
    argv = worker_command(queue=environment["RDM_CELERY_QUEUE"], concurrency=concurrency, hostname=f"{name}@%h")
    return ManagedProcess(name, argv, environment, log_dir / f"{name}.log").start()


def start_beat(log_dir: Path, *, name: str = "beat", **env: str) -> ManagedProcess:
    """Celery beat sending this session's periodic tasks (its schedule file in ``log_dir``)."""
    environment = subprocess_env(CELERY_BEAT_SCHEDULE_FILENAME=str(log_dir / f"{name}-schedule"), **env)
    return ManagedProcess(name, beat_command(), environment, log_dir / f"{name}.log").start()


def start_web_server(log_dir: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    server = ManagedProcess("web", web_command(f"127.0.0.1:{port}"), subprocess_env(), log_dir / "web.log").start()
    base_url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if not server.alive():
            raise AssertionError(f"the web server exited:\n{server.log()}")
        try:
            with urllib.request.urlopen(base_url + "/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    wait_until(healthy, timeout=30, what="the web server to answer /healthz")
    return server, base_url


PYTHON = sys.executable
