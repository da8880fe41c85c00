"""The change list is ordered by planned start, latest first, not by creation: its state index follows that order
(and the index on creation, which no query used, goes); conflict detection reads the open changes' schedules from a
partial index. Built and dropped concurrently."""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE and DROP INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("releases", "0006_list_indexes")]

    operations = [
        RemoveIndexConcurrently(model_name="changerecord", name="releases_change_newest"),
        RemoveIndexConcurrently(model_name="changerecord", name="releases_change_state_newest"),
        AddIndexConcurrently(
            model_name="changerecord",
            index=models.Index(fields=["state", "-planned_start", "-id"], name="releases_change_state_planned"),
        ),
        AddIndexConcurrently(
            model_name="changerecord",
            index=models.Index(
                fields=["planned_start", "planned_end"],
                condition=models.Q(
                    ("state__in", ("draft", "submitted", "assessed", "approved", "scheduled", "implementing"))
                ),
                name="releases_change_open_schedule",
            ),
        ),
    ]
