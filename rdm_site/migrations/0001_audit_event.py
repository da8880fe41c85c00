"""The audit table, and triggers that make the database refuse to edit or remove its rows."""

import django.utils.timezone
from django.db import migrations, models

APPEND_ONLY = """
CREATE FUNCTION rdm_site_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING HINT = 'Audit events are evidence; record a new event instead.';
END;
$$;
CREATE TRIGGER rdm_site_audit_no_update_delete BEFORE UPDATE OR DELETE ON rdm_site_auditevent
    FOR EACH ROW EXECUTE FUNCTION rdm_site_audit_append_only();
CREATE TRIGGER rdm_site_audit_no_truncate BEFORE TRUNCATE ON rdm_site_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION rdm_site_audit_append_only();
"""

APPEND_ONLY_REVERSE = """
DROP TRIGGER rdm_site_audit_no_truncate ON rdm_site_auditevent;
DROP TRIGGER rdm_site_audit_no_update_delete ON rdm_site_auditevent;
DROP FUNCTION rdm_site_audit_append_only();
"""


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="AuditEvent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("occurred_at", models.DateTimeField(default=django.utils.timezone.now, verbose_name="occurred at")),
                ("actor_id", models.PositiveBigIntegerField(blank=True, null=True, verbose_name="actor id")),
                ("actor_label", models.CharField(max_length=200, verbose_name="actor")),
                (
                    "actor_kind",
                    models.CharField(
                        choices=[("user", "user"), ("token", "API token"), ("system", "system")],
                        max_length=10,
                        verbose_name="actor kind",
                    ),
                ),
                ("action", models.CharField(max_length=100, verbose_name="action")),
                ("object_type", models.CharField(blank=True, max_length=100, verbose_name="object type")),
                ("object_id", models.CharField(blank=True, max_length=64, verbose_name="object id")),
                ("object_repr", models.CharField(blank=True, max_length=200, verbose_name="object")),
                ("from_state", models.CharField(blank=True, max_length=50, verbose_name="from state")),
                ("to_state", models.CharField(blank=True, max_length=50, verbose_name="to state")),
                ("reason", models.TextField(blank=True, verbose_name="reason")),
                (
                    "changes",
                    models.JSONField(
                        blank=True, default=dict, help_text="For edits: {field: [old, new]}.", verbose_name="changes"
                    ),
                ),
                ("request_id", models.CharField(blank=True, max_length=128, verbose_name="request id")),
                ("previous_hash", models.CharField(max_length=64, verbose_name="previous hash")),
                ("hash", models.CharField(max_length=64, verbose_name="hash")),
            ],
            options={
                "verbose_name": "audit event",
                "verbose_name_plural": "audit events",
                "ordering": ["id"],
                "indexes": [
                    models.Index(fields=["object_type", "object_id"], name="rdm_site_audit_object_idx"),
                    models.Index(fields=["occurred_at"], name="rdm_site_audit_occurred_idx"),
                ],
                "constraints": [models.UniqueConstraint(fields=("previous_hash",), name="rdm_site_audit_no_fork")],
            },
        ),
        migrations.RunSQL(APPEND_ONLY, reverse_sql=APPEND_ONLY_REVERSE),
    ]
