"""The dashboard's pipeline board reads the most recently updated few releases of each state from an index instead
of ranking every release (a year holds 100,000, most of them closed). Built concurrently, so releases stay writable
while it builds."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("releases", "0007_change_list_index_by_schedule")]

    operations = [
        AddIndexConcurrently(
            model_name="release",
            index=models.Index(fields=["state", "-updated", "-id"], name="releases_release_state_updated"),
        ),
    ]
