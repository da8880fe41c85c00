"""The list indexes are built with CREATE INDEX CONCURRENTLY in non-atomic migrations: while one builds, the table
stays writable. Shown on the CI list's index (cmdb 0002) with a writer holding a transaction open on the table,
which keeps the build waiting, and a second writer whose insert completes meanwhile; a plain CREATE INDEX, in the
same situation, makes that second writer wait."""

import threading
import time
from importlib import import_module

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from cmdb.models import ConfigurationItem
from tests.cmdb.factories import ConfigurationItemFactory

pytestmark = pytest.mark.django_db(transaction=True)

INDEX = "cmdb_ci_environment_name"
BUILD_MIGRATION = ("cmdb", "0002_ci_list_index")
BEFORE = ("cmdb", "0001_initial")
LOCK_WAIT = "2s"  # a writer that waits this long for a lock is blocked


def _connect(autocommit: bool = False) -> psycopg.Connection:
    """A connection of its own to the test database, with Django's parameters (a socket directory included)."""
    return psycopg.connect(**connection.get_connection_params(), autocommit=autocommit)


def _copy_row_sql(template: ConfigurationItem, name: str) -> tuple[str, list]:
    """An INSERT of a copy of ``template`` under another name, in plain SQL for a connection of its own."""
    columns = [field.column for field in ConfigurationItem._meta.concrete_fields if not field.primary_key]
    chosen = ", ".join("%s" if column == "name" else column for column in columns)
    table = ConfigurationItem._meta.db_table
    return f"INSERT INTO {table} ({', '.join(columns)}) SELECT {chosen} FROM {table} WHERE id = %s", [name, template.pk]


def _index_state() -> bool | None:
    """Whether the index is valid (None: there is none)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [INDEX])
        row = cursor.fetchone()
    return None if row is None else row[0]


def _waiting_build(statement: str, seconds: float = 10) -> bool:
    """Whether a backend runs ``statement`` and waits on a lock, within ``seconds``."""
    deadline = time.monotonic() + seconds
    with _connect(autocommit=True) as watcher:  # a transaction would see one snapshot of the activity
        while time.monotonic() < deadline:
            found = watcher.execute(
                "SELECT 1 FROM pg_stat_activity WHERE query ILIKE %s AND state = 'active' AND wait_event_type = 'Lock'",
                [f"{statement}%"],
            ).fetchone()
            if found:
                return True
            time.sleep(0.05)
    return False


def _insert_within_lock_wait(template, name: str) -> bool:
    """A second writer's insert, committed: True when it did not wait for a lock longer than LOCK_WAIT."""
    sql, params = _copy_row_sql(template, name)
    with _connect() as writer:
        writer.execute(f"SET lock_timeout = '{LOCK_WAIT}'")
        try:
            writer.execute(sql, params)
        except psycopg.errors.LockNotAvailable:
            return False
        writer.commit()
    return True


def test_the_migration_is_not_atomic_and_builds_concurrently():
    migration = import_module(f"{BUILD_MIGRATION[0]}.migrations.{BUILD_MIGRATION[1]}").Migration
    assert migration.atomic is False
    assert {type(operation).__name__ for operation in migration.operations} == {"AddIndexConcurrently"}


def test_writes_go_on_while_the_index_builds():
    template = ConfigurationItemFactory()
    call_command("migrate", *BEFORE, verbosity=0)
    assert _index_state() is None
    holder = _connect()  # a writer whose transaction stays open: the concurrent build waits for it to end
    holder.execute(*_copy_row_sql(template, "held-open"))
    failures = []

    def build():
        try:
            call_command("migrate", *BUILD_MIGRATION, verbosity=0)
        except Exception as error:  # reported by the test below
            failures.append(error)
        finally:
            connection.close()

    migrating = threading.Thread(target=build)
    migrating.start()
    try:
        assert _waiting_build("CREATE INDEX CONCURRENTLY")
        assert _insert_within_lock_wait(template, "written-while-building")
        assert migrating.is_alive()  # the build was still under way when that insert committed
    finally:
        holder.commit()
        holder.close()
        migrating.join(timeout=60)

    assert not failures
    assert not migrating.is_alive()
    assert _index_state() is True
    assert set(ConfigurationItem.objects.filter(name__in=["held-open", "written-while-building"]).values_list(
        "name", flat=True
    )) == {"held-open", "written-while-building"}  # fmt: skip


def test_a_plain_index_build_would_have_stopped_the_writer():
    """The control: the same writer waits behind CREATE INDEX without CONCURRENTLY, so the test above can fail."""
    template = ConfigurationItemFactory()
    call_command("migrate", *BEFORE, verbosity=0)
    holder = _connect()
    holder.execute(*_copy_row_sql(template, "held-open"))
    builder = _connect()
    build = threading.Thread(
        target=lambda: builder.execute(f"CREATE INDEX {INDEX} ON cmdb_configurationitem (environment_id, name, id)")
    )
    build.start()
    try:
        assert _waiting_build(f"CREATE INDEX {INDEX}")
        assert not _insert_within_lock_wait(template, "written-while-building")
    finally:
        holder.rollback()
        holder.close()
        build.join(timeout=60)
        builder.rollback()
        builder.close()
        call_command("migrate", "cmdb", verbosity=0)
