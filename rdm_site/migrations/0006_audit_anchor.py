"""Audit anchors, and triggers that make the database refuse to edit or remove them (like audit events)."""

import django.utils.timezone
from django.db import migrations, models

APPEND_ONLY = """
CREATE FUNCTION rdm_site_audit_anchor_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit anchors are append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING HINT = 'An anchor vouches for the audit chain as it was; a new one is recorded when it moves.';
END;
$$;
CREATE TRIGGER rdm_site_audit_anchor_no_update_delete BEFORE UPDATE OR DELETE ON rdm_site_auditanchor
    FOR EACH ROW EXECUTE FUNCTION rdm_site_audit_anchor_append_only();
CREATE TRIGGER rdm_site_audit_anchor_no_truncate BEFORE TRUNCATE ON rdm_site_auditanchor
    FOR EACH STATEMENT EXECUTE FUNCTION rdm_site_audit_anchor_append_only();
"""

APPEND_ONLY_REVERSE = """
DROP TRIGGER rdm_site_audit_anchor_no_truncate ON rdm_site_auditanchor;
DROP TRIGGER rdm_site_audit_anchor_no_update_delete ON rdm_site_auditanchor;
DROP FUNCTION rdm_site_audit_anchor_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("rdm_site", "0005_calendar_feed")]

    operations = [
        migrations.CreateModel(
            name="AuditAnchor",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("event_id", models.PositiveBigIntegerField(verbose_name="event id")),
                ("head_hash", models.CharField(max_length=64, verbose_name="head hash")),
                ("event_count", models.PositiveBigIntegerField(verbose_name="event count")),
                (
                    "recorded_at",
                    models.DateTimeField(default=django.utils.timezone.now, verbose_name="recorded at"),
                ),
            ],
            options={"verbose_name": "audit anchor", "verbose_name_plural": "audit anchors", "ordering": ["-id"]},
        ),
        migrations.RunSQL(APPEND_ONLY, reverse_sql=APPEND_ONLY_REVERSE),
    ]
