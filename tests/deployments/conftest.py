"""Deployment fixtures: a small landscape (environment, service, live CIs as targets, a process) and a driver
that runs the engine in this process, for tests that do not need a real worker."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from cmdb.choices import EnvironmentTier
from cmdb.models import Environment, Service
from deployments import engine
from deployments.models import Deployment, DeploymentProcess, Step, Target
from rdm_site.roles import Role
from tests.deployments.factories import (
    CiFactory,
    EnvironmentFactory,
    ProcessFactory,
    ServiceFactory,
    StepTemplateFactory,
    TargetFactory,
)
from tests.factories import UserFactory


@dataclass
class Landscape:
    environment: Environment
    service: Service
    targets: list[Target]
    process: DeploymentProcess


def make_landscape(
    *, targets: int = 3, tier: str = EnvironmentTier.TEST, steps: list[dict] | None = None, rings=None, **process
) -> Landscape:
    """``targets`` live CIs of one service in one environment, each a target; ``steps`` are template fields."""
    environment = EnvironmentFactory(tier=tier)
    service = ServiceFactory()
    made = []
    for n in range(targets):
        ci = CiFactory(name=f"{service.name}-{n:04}", environment=environment, service=service)
        made.append(TargetFactory(ci=ci, ring=rings[n] if rings else ""))
    process_row = ProcessFactory(service=service, **process)
    for position, fields in enumerate(steps or [{"name": "deploy", "executor": "simulator"}]):
        StepTemplateFactory(process=process_row, position=position, **fields)
    return Landscape(environment, service, made, process_row)


@pytest.fixture
def landscape(db):
    return make_landscape


@pytest.fixture
def manager(db):
    return UserFactory(username="dm", roles=[Role.DEPLOYMENT_MANAGER])


def drive(deployment: Deployment, *, rounds: int = 500) -> Deployment:
    """Run the engine here until nothing is queued: what the worker does, without one."""
    engine.deployment_advance(deployment_id=deployment.pk)
    for _ in range(rounds):
        queued = list(
            Step.objects.filter(deployment=deployment, lease_owner=engine.QUEUED).values_list("id", flat=True)
        )
        if not queued:
            break
        engine.steps_run(deployment_id=deployment.pk, step_ids=queued, owner="test-worker")
    deployment.refresh_from_db()
    return deployment
