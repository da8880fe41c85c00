"""docs/api.md's pipeline journey, executed word for word against the live server (gunicorn), a real Celery
worker and beat: token -> package -> JUnit results -> evidence -> standard change -> production deployment ->
followed to success -> CI versions updated -> an incident opened."""

import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from cmdb.models import ConfigurationItem
from deployments.models import Deployment, DeploymentProcess, Incident
from rdm_site.models import AuditEvent
from releases import services
from releases.choices import BaselineKind
from tests.deployments.factories import CiFactory, StepTemplateFactory, TargetFactory
from tests.harness.processes import start_beat, subprocess_env
from tests.releases.conftest import add_unit, approve_plan, make_people, make_world
from tests.releases.factories import WindowFactory

DOC = Path(settings.BASE_DIR) / "docs" / "api.md"
VERSION = "2.4.0+build.118"
SHA256_AS_STORED = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"  # the doc sends it in capitals


def journey_script() -> str:
    """The shell blocks between the journey markers of docs/api.md, in order, exactly as written there."""
    text = DOC.read_text()
    journey = text.split("<!-- journey:start -->", 1)[1].split("<!-- journey:end -->", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", journey, flags=re.S)
    assert len(blocks) >= 6, "the journey lost its steps"
    return "set -euo pipefail\n" + "\n".join(blocks)


def a_checkout_to_run_in(directory: Path) -> Path:
    """A directory that looks like the project's root to the commands (``.venv/bin/python manage.py``), so that
    the files the journey writes (junit.xml) land there and not in the project."""
    (directory / ".venv").symlink_to(Path(settings.BASE_DIR) / ".venv")
    shutil.copy(Path(settings.BASE_DIR) / "manage.py", directory / "manage.py")
    return directory


def people_as_in_the_doc():
    people = make_people()
    for user, name in ((people.ci, "bill.build"), (people.dm, "dan.deploy"), (people.rm, "rita.release")):
        User.objects.filter(pk=user.pk).update(username=name)
        user.refresh_from_db()
    return people


def before_the_pipeline_runs():
    """What people did in RDM first (docs/api.md): a planned, approved release with its rollback plan, notice and
    baseline; a pre-approved change template; an open production window; a process with live targets."""
    now = timezone.now()
    world = make_world(people_as_in_the_doc())
    people, release = world.people, world.release
    add_unit(world)
    approve_plan(world)
    services.rollback_plan_write(release=release, actor=people.rm, steps="1. Redeploy 2.3\n2. Restore the database.")
    services.rollback_rehearsal_record(release=release, actor=people.dm, link="https://wiki.example/rehearsal")
    services.stakeholders_notify(release=release, actor=people.rm)
    services.release_baseline_take(release=release, actor=people.rm, kind=BaselineKind.PRE_RELEASE)
    template = services.change_template_create(
        actor=people.rm,
        name="Shop routine deploy",
        description="Roll out a tested build of Shop.",
        services=[world.service],
    )
    services.change_template_approve(template=template, actor=people.ca)
    WindowFactory(
        name="always open",
        first_date=(now - timedelta(days=2)).date(),
        start_time=(now - timedelta(hours=1)).time().replace(microsecond=0),
        rrule="FREQ=DAILY",
        duration=timedelta(hours=6),
        time_zone="UTC",
        environments=[world.production],
    )
    process = DeploymentProcess.objects.create(service=world.service, name="shop")
    StepTemplateFactory(process=process, position=0, name="deploy")
    targets = [
        TargetFactory(ci=CiFactory(name=f"shop-web-{n}", environment=world.production, service=world.service))
        for n in range(3)
    ]
    return world, targets


@pytest.mark.django_db(transaction=True)
def test_the_documented_pipeline_journey_runs_as_written(web_server, celery_worker, process_log_dir, tmp_path):
    # given what people prepared
    world, targets = before_the_pipeline_runs()
    beat = start_beat(process_log_dir)
    try:
        # when the pipeline runs the documented commands against the live server
        done = subprocess.run(
            ["bash", "-c", journey_script()],
            cwd=a_checkout_to_run_in(tmp_path),
            env={**subprocess_env(), "RDM": web_server, "HOME": str(tmp_path), "PYTHONPATH": str(settings.BASE_DIR)},
            capture_output=True,
            text=True,
            timeout=240,
        )
    finally:
        beat.stop()
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}\nworker:\n{celery_worker.log()}"

    # then the deployment succeeded in production and "what runs where" shows the new build
    deployment = Deployment.objects.get()
    assert f"deployment {deployment.pk}: succeeded" in done.stdout
    assert deployment.state == "succeeded"
    assert deployment.environment == world.production
    for ci in ConfigurationItem.objects.filter(pk__in=[target.ci_id for target in targets] + [world.ci.pk]):
        assert ci.version == VERSION, ci
    # the change was implemented, the release deployed and in early life support, the incident opened against
    # the deployment
    deployment.change.refresh_from_db()
    assert deployment.change.change_type == "standard"
    assert deployment.change.state == "implemented"
    world.release.refresh_from_db()
    assert world.release.state == "early_life_support"
    assert Incident.objects.get().deployment == deployment
    # and the trail names the tokens that acted
    starts = AuditEvent.objects.filter(action="deployment.start", object_id=str(deployment.pk))
    assert starts.get().actor_label.startswith("bill.build (token #")
    assert (
        deployment.package.artifacts.get().sha256
        == "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"[:64]
    )
