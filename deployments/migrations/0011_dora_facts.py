"""DORA's per-deployment facts (``deployments.dora_facts``), and their values for the deployments that already
ended. Not atomic: adding the two columns changes only the catalogue (no default to write into each row, the
boolean's ``false`` is kept as the column's missing value), and the backfill runs a few services per transaction,
so rollouts keep writing deployments meanwhile."""

from django.db import migrations, models


def backfill(apps, schema_editor):
    from deployments.dora_facts import dora_facts_backfill

    dora_facts_backfill()


class Migration(migrations.Migration):
    atomic = False  # each backfill batch commits on its own

    dependencies = [("deployments", "0010_deployment_state_newest_index")]

    operations = [
        migrations.AddField(
            model_name="deployment",
            name="change_started_at",
            field=models.DateTimeField(
                blank=True,
                editable=False,
                help_text="Where the lead time of its change starts: its package's first commit, or its registration.",
                null=True,
                verbose_name="change started",
            ),
        ),
        migrations.AddField(
            model_name="deployment",
            name="followed_by_hotfix",
            field=models.BooleanField(
                default=False,
                editable=False,
                help_text="The next deployment of its service to its environment was a hotfix within the hotfix's window.",
                verbose_name="followed by a hotfix",
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
    ]
