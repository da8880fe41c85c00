"""The incident correlation window becomes a release-policy setting. Existing policies start from the site's
``RDM_INCIDENT_CORRELATION_HOURS``, so their deployments keep the window they had."""

import django.core.validators
from django.conf import settings
from django.db import migrations, models


def site_window_for_existing_policies(apps, schema_editor):
    policies = apps.get_model("releases", "ReleasePolicy").objects
    policies.update(incident_correlation_hours=settings.RDM_INCIDENT_CORRELATION_HOURS)


class Migration(migrations.Migration):
    dependencies = [("releases", "0009_dashboard_indexes")]

    operations = [
        migrations.AddField(
            model_name="releasepolicy",
            name="incident_correlation_hours",
            field=models.PositiveSmallIntegerField(
                default=72,
                help_text="An incident naming no deployment is tied to a production deployment of this type of "
                "release that succeeded at most this many hours before it opened.",
                validators=[
                    django.core.validators.MinValueValidator(1, "The correlation window is at least one hour.")
                ],
                verbose_name="incident correlation window (hours)",
            ),
        ),
        migrations.RunPython(site_window_for_existing_policies, migrations.RunPython.noop, elidable=True),
        migrations.AddConstraint(
            model_name="releasepolicy",
            constraint=models.CheckConstraint(
                condition=models.Q(incident_correlation_hours__gte=1),
                name="releases_policy_correlation_window_positive",
            ),
        ),
    ]
