"""The CI list's order (environment, then name) read from an index; built concurrently, so CIs stay writable."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("cmdb", "0001_initial")]

    operations = [
        AddIndexConcurrently(
            model_name="configurationitem",
            index=models.Index(fields=["environment", "name", "id"], name="cmdb_ci_environment_name"),
        ),
    ]
