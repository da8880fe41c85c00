"""Tampering with the audit table, as only its owner could: the way tests prove tampering is caught."""

from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def audit_triggers_disabled():
    """Yield a cursor inside a transaction in which the append-only triggers are off.

    ALTER TABLE is transactional in PostgreSQL, so the triggers come back even if the block fails. Foreign keys
    to the table (the outbox's) are checked at once rather than at commit: PostgreSQL refuses to alter a table
    with checks still pending.
    """
    from rdm_site.models import AuditEvent

    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        yield cursor
        cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
