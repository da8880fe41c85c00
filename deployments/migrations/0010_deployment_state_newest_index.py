"""The deployment list filtered by state, newest first, read from an index; built concurrently, so deployments stay
writable (rollouts keep running) while it builds."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("deployments", "0009_continuous_promotion")]

    operations = [
        AddIndexConcurrently(
            model_name="deployment",
            index=models.Index(fields=["state", "-created", "-id"], name="deployments_dep_state_newest"),
        ),
    ]
