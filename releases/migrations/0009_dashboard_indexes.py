"""The dashboard counts the releases deployed this month and reads the validators' queue of built packages from
indexes, rather than scanning a year of releases and packages. Built concurrently, so releases stay writable
while they build."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("releases", "0008_release_state_updated_index")]

    operations = [
        AddIndexConcurrently(
            model_name="release",
            index=models.Index(
                fields=["deployed_at"], condition=models.Q(deployed_at__isnull=False), name="releases_release_deployed"
            ),
        ),
        AddIndexConcurrently(
            model_name="releasepackage",
            index=models.Index(
                fields=["registered_at", "id"],
                include=["built_by"],
                condition=models.Q(state="built"),
                name="releases_package_built_queue",
            ),
        ),
    ]
