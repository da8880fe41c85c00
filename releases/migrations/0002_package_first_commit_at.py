from django.db import migrations, models


def first_commit_times_fill(apps, schema_editor):
    """Packages registered before the column existed get their first commit time from their commits."""
    from releases.models.package import first_commit_time

    ReleasePackage = apps.get_model("releases", "ReleasePackage")
    for package in ReleasePackage.objects.exclude(commits=[]).only("pk", "commits"):
        moment = first_commit_time(package.commits)
        if moment is not None:
            ReleasePackage.objects.filter(pk=package.pk).update(first_commit_at=moment)


class Migration(migrations.Migration):
    dependencies = [
        ("releases", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="releasepackage",
            name="first_commit_at",
            field=models.DateTimeField(
                blank=True,
                help_text="The earliest commit time in the package, where known: where DORA's lead time starts.",
                null=True,
                verbose_name="first commit at",
            ),
        ),
        migrations.RunPython(first_commit_times_fill, migrations.RunPython.noop),
    ]
