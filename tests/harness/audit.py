"""Tampering with the audit tables, as only their owner could: the way tests prove tampering is caught."""

from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def audit_triggers_disabled():
    """Yield a cursor inside a transaction in which the append-only triggers (events and anchors) are off.

    ALTER TABLE is transactional in PostgreSQL, so the triggers come back even if the block fails. Foreign keys
    to the table (the outbox's) are checked at once rather than at commit: PostgreSQL refuses to alter a table
    with checks still pending.
    """
    from rdm_site.models import AuditAnchor, AuditEvent

    tables = [connection.ops.quote_name(model._meta.db_table) for model in (AuditEvent, AuditAnchor)]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for table in tables:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        yield cursor
        for table in tables:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
