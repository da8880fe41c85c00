"""DORA's metrics and the ITIL figures read a period's production deployments, and all they need of each, from one
index (an index-only scan once the table is vacuumed). Built concurrently, so deployments stay writable (rollouts
keep running) while it builds."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("deployments", "0011_dora_facts")]

    operations = [
        AddIndexConcurrently(
            model_name="deployment",
            index=models.Index(
                fields=["environment", "finished_at"],
                include=[
                    "id",
                    "service",
                    "state",
                    "started_at",
                    "package",
                    "change",
                    "replaces",
                    "change_started_at",
                    "followed_by_hotfix",
                ],
                name="deployments_dep_env_end_dora",
            ),
        ),
    ]
