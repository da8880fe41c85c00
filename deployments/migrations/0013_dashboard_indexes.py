"""The dashboard reads the rollouts ended in the last 30 days, the places where an earlier package succeeded and
the early life support periods under way from indexes, rather than scanning a year of deployments. Built concurrently, so deployments stay writable
(rollouts keep running) while they build."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("deployments", "0012_deployment_dora_index")]

    operations = [
        AddIndexConcurrently(
            model_name="deployment",
            index=models.Index(fields=["finished_at"], include=["state"], name="deployments_dep_finished"),
        ),
        AddIndexConcurrently(
            model_name="deployment",
            index=models.Index(
                fields=["service", "environment", "package"],
                condition=models.Q(state="succeeded", package__isnull=False),
                name="deployments_dep_succeeded_pkg",
            ),
        ),
        AddIndexConcurrently(
            model_name="earlylifesupport",
            index=models.Index(
                fields=["planned_end"],
                condition=models.Q(state__in=["active", "extended"]),
                name="deployments_els_running_end",
            ),
        ),
    ]
