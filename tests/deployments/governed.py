"""A governed production landscape for deployment tests: a green release, an approved change and an open window."""

from datetime import timedelta

from django.utils import timezone

from deployments import services
from deployments.models import DeploymentProcess
from tests.deployments.factories import CiFactory, StepTemplateFactory, TargetFactory
from tests.releases.conftest import green_release, make_world
from tests.releases.factories import WindowFactory


class Governed:
    """A green release of "Shop" with an approved change covering now, in a window open now, and 4 live targets
    in production."""

    def __init__(self, *, fail_on_target: bool = False, targets: int = 4, steps: list[dict] | None = None, **process):
        now = timezone.now()
        self.world = world = make_world()
        WindowFactory(
            name="always-now",
            first_date=(now - timedelta(days=2)).date(),
            start_time=(now - timedelta(hours=1)).time().replace(microsecond=0),
            rrule="FREQ=DAILY",
            duration=timedelta(hours=6),
            time_zone="UTC",
            environments=[world.production],
        )
        self.release, self.change = green_release(world, change_start=now - timedelta(minutes=30))
        self.package = self.release.packages.get()
        self.targets = [
            TargetFactory(ci=CiFactory(name=f"shop-{n}", environment=world.production, service=world.service))
            for n in range(targets)
        ]
        self.process = DeploymentProcess.objects.create(service=world.service, name="shop", **process)
        failing = {"fail_on_target": self.targets[1].ci.name} if fail_on_target else {}
        for position, fields in enumerate(steps or [{"name": "deploy", "parameters": failing}]):
            StepTemplateFactory(process=self.process, position=position, **fields)
        self.dm = world.people.dm

    def plan(self, **fields):
        fields = {"package": self.package, "change": self.change, **fields}
        return services.deployment_create(
            actor=self.dm, process=self.process, environment=self.world.production, **fields
        )
