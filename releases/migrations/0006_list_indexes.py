"""The release and change lists' orders, alone and filtered by state, read from indexes; built concurrently, so
releases and changes stay writable while they build."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("releases", "0005_freezeoverride_outside_windows")]

    operations = [
        AddIndexConcurrently(
            model_name="changerecord",
            index=models.Index(fields=["-created", "-id"], name="releases_change_newest"),
        ),
        AddIndexConcurrently(
            model_name="changerecord",
            index=models.Index(fields=["state", "-created", "-id"], name="releases_change_state_newest"),
        ),
        AddIndexConcurrently(
            model_name="release",
            index=models.Index(fields=["state", "-created", "-id"], name="releases_release_state_newest"),
        ),
    ]
