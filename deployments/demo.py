"""Demo deployments: a simulated process per demo service, its live CIs as targets, and one finished rollout.

Loading twice changes nothing. Needs the demo users and the demo CMDB first. Dev has no target: its
application CIs are still in build, and only a live CI is deployed to.
"""

from django.contrib.auth.models import User

from cmdb.choices import CiState, CiType
from cmdb.models import ConfigurationItem, Environment, Service
from deployments import engine, services
from deployments.models import Deployment, DeploymentProcess, StepTemplate, Target, Variable
from rdm_site.exceptions import UnmetConditions

PROCESS_NAME = "simulated rollout"
STEPS = [  # name, executor, parameters, run once
    ("deploy", "simulator", {"latency_ms": 1500, "failure_rate": 0}, False),
    ("smoke test", "simulator", {"latency_ms": 300}, False),
]
HEALTH_CHECKS = [{"executor": "wait", "parameters": {"duration_seconds": "2"}}]
FINISHED_DEMO = ("Customer Portal", "test", "1.8.1")


def _process(service: Service) -> DeploymentProcess:
    process, created = DeploymentProcess.objects.get_or_create(
        service=service,
        name=PROCESS_NAME,
        defaults={
            "description": "Pretends to deploy (the simulator executor): for demos.",
            "health_checks": HEALTH_CHECKS,
            "bake_seconds": 5,
        },
    )
    if created:
        for position, (name, executor, parameters, once) in enumerate(STEPS):
            StepTemplate.objects.create(
                process=process, position=position, name=name, executor=executor, parameters=parameters, run_once=once
            )
    return process


def demo_deployments_load() -> None:
    manager = User.objects.get(username="dan.deploy")
    for service in Service.objects.all():
        _process(service)
        if not Variable.objects.filter(service=service, name="DeployToken").exists():
            services.variable_set(
                actor=None, service=service, name="DeployToken", value=f"demo-{service.slug}-token", is_secret=True
            )
        for ci in ConfigurationItem.objects.filter(service=service, ci_type=CiType.APPLICATION, state=CiState.LIVE):
            if not Target.objects.filter(ci=ci).exists():
                Target.objects.create(ci=ci, ring=ci.environment.tier)
    _finished_demo_deployment(manager)


def _finished_demo_deployment(manager: User) -> None:
    """One big bang rollout to test, run here and now by the engine (the simulator is instant when asked)."""
    service_name, environment_name, version = FINISHED_DEMO
    service = Service.objects.filter(name=service_name).first()
    environment = Environment.objects.filter(name=environment_name).first()
    if (
        service is None
        or environment is None
        or not Target.objects.filter(ci__service=service, ci__environment=environment)
    ):
        return
    if Deployment.objects.filter(service=service, environment=environment, version=version).exists():
        return
    deployment = services.deployment_create(
        actor=manager, process=instant_process(service), environment=environment, version=version
    )
    try:
        services.deployment_start(deployment=deployment, actor=manager)
    except UnmetConditions:
        return  # outside a window or in a freeze today: the demo keeps it planned
    run_here(deployment)


def instant_process(service: Service) -> DeploymentProcess:
    """The simulator without latency, so that a demo rollout finishes while the data loads."""
    process, _ = DeploymentProcess.objects.get_or_create(
        service=service, name="instant demo", defaults={"description": "The simulator without latency."}
    )
    if not process.step_templates.exists():
        StepTemplate.objects.create(process=process, name="deploy", executor="simulator", parameters={})
    return process


def run_here(deployment: Deployment) -> Deployment:
    """Run a started deployment to its end in this process: what the worker does, without one."""
    engine.deployment_advance(deployment_id=deployment.pk)
    for _ in range(10):
        queued = list(deployment.steps.filter(lease_owner=engine.QUEUED).values_list("id", flat=True))
        if not queued:
            break
        engine.steps_run(deployment_id=deployment.pk, step_ids=queued, owner="demo-loader")
    deployment.refresh_from_db()
    return deployment
