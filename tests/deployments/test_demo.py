"""The demo deployments load on the demo CMDB, twice to the same data, with one finished rollout."""

import pytest
from django.core.management import call_command

from cmdb.models import Service
from deployments.models import Deployment, DeploymentProcess, Step, Target, Variable


def counts() -> list[int]:
    return [model.objects.count() for model in (DeploymentProcess, Target, Variable, Deployment, Step)]


@pytest.mark.django_db
def test_the_demo_deployments_load_twice_to_the_same_data(demo_users):
    call_command("demo_load")
    first = counts()
    call_command("demo_load")
    assert counts() == first

    # every demo service has a simulated process and targets in every environment where its CIs are live
    for service in Service.objects.all():
        assert service.deployment_processes.filter(name="simulated rollout").exists()
        environments = set(Target.objects.filter(ci__service=service).values_list("ci__environment__name", flat=True))
        assert environments == {"test", "staging", "production"}, "dev's applications are still in build"
    # secrets are stored encrypted
    token = Variable.objects.filter(name="DeployToken").first()
    assert token.is_secret
    assert "token" not in token.value
    # and one finished demo rollout
    finished = Deployment.objects.get(version="1.8.1")
    assert (finished.state, finished.environment.name) == ("succeeded", "test")
