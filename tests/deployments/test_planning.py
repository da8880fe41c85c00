"""Plans: which targets in which wave, and the stored steps, computed before anything runs."""

import pytest

from deployments import services
from deployments.choices import StepKind
from deployments.models import Step
from deployments.planning import big_bang_waves, phase_plan_problems, phased_waves
from deployments.selectors import deployment_plan
from rdm_site.exceptions import InvalidInput
from tests.deployments.conftest import make_landscape


class FakeTarget:
    def __init__(self, n, ring=""):
        self.n, self.ring = n, ring


def targets(count, rings=None):
    return [FakeTarget(n, rings[n] if rings else "") for n in range(count)]


def test_big_bang_is_one_wave_of_every_target():
    waves = big_bang_waves(targets(5))
    assert [len(wave.targets) for wave in waves] == [5]


def test_percentages_are_cumulative_after_a_canary():
    # given 1,000 targets and a canary of one, then 10 %, 50 %, 100 %
    waves = phased_waves(targets(1000), {"canary": 1, "percentages": [10, 50, 100]})

    # then each wave adds the targets that bring the total to its percentage
    assert [len(wave.targets) for wave in waves] == [1, 99, 400, 500]
    assert [wave.name for wave in waves] == ["canary (1 target)", "10 %", "50 %", "100 %"]
    every = [target.n for wave in waves for target in wave.targets]
    assert every == list(range(1000)), "every target once, in order"


def test_a_last_wave_reaches_every_target_even_when_the_plan_stops_short():
    waves = phased_waves(targets(10), {"percentages": [30]})
    assert [len(wave.targets) for wave in waves] == [3, 7]


def test_small_fleets_skip_empty_waves():
    waves = phased_waves(targets(2), {"canary": 1, "percentages": [10, 50, 100]})
    assert [len(wave.targets) for wave in waves] == [1, 1]


def test_rings_go_in_order_and_unlisted_rings_go_last():
    fleet = targets(5, rings=["eu", "canary", "us", "eu", "lab"])
    waves = phased_waves(fleet, {"rings": ["canary", "eu", "us"]})
    assert [(wave.name, [t.n for t in wave.targets]) for wave in waves] == [
        ("ring canary", [1]),
        ("ring eu", [0, 3]),
        ("ring us", [2]),
        ("remaining targets", [4]),
    ]


def test_every_problem_of_a_phase_plan_is_reported_at_once():
    problems = phase_plan_problems("phased", {"rings": ["a"], "percentages": [50, 20], "bake_seconds": -1, "extra": 1})
    assert problems == [
        "'extra' is not used by a phased deployment",
        "bake_seconds must be a whole number of seconds, 0 or more",
        "give either rings or percentages (with an optional canary), not both",
        "percentages are cumulative and must rise",
    ]


def test_big_bang_takes_no_phases():
    assert phase_plan_problems("big_bang", {"rings": ["a"]}) == ["'rings' is not used by a big bang deployment"]


def test_the_plan_is_stored_when_the_deployment_is_planned(landscape, manager):
    # given a process with a per-target step, a step for the "web" group only, a run-once step and a gate
    land = landscape(
        targets=4,
        steps=[
            {"name": "deploy", "executor": "simulator"},
            {"name": "warm web", "executor": "simulator", "target_filter": "web"},
            {"name": "announce", "executor": "wait", "parameters": {"duration_seconds": 0}, "run_once": True},
        ],
        health_checks=[{"executor": "wait", "parameters": {"duration_seconds": "0"}}],
    )
    land.targets[0].group = "web"
    land.targets[0].save()

    # when a phased deployment is planned
    deployment = services.deployment_create(
        actor=manager,
        process=land.process,
        environment=land.environment,
        model="phased",
        phase_plan={"canary": 1, "percentages": [100]},
    )

    # then its waves and steps are stored, with stable idempotency keys naming deployment and step
    plan = deployment_plan(deployment)
    assert [(wave.name, len(wave.targets)) for wave in plan] == [("canary (1 target)", 1), ("100 %", 3)]
    assert [(s.name, len(s.targets)) for s in plan[0].steps] == [
        ("deploy", 1),
        ("warm web", 1),
        ("announce", 0),
        ("health gate: Wait", 0),
    ]
    assert [s.name for s in plan[1].steps] == ["deploy", "announce", "health gate: Wait"]
    for step in Step.objects.filter(deployment=deployment):
        assert step.idempotency_key == f"{deployment.pk}:{step.pk}"
    assert Step.objects.filter(deployment=deployment, kind=StepKind.GATE).count() == 2


def test_secrets_stay_references_in_the_stored_plan(landscape, manager):
    # given a process whose step names a public and a secret variable
    land = landscape(
        targets=1,
        steps=[
            {
                "name": "call",
                "executor": "http_call",
                "parameters": {"url": "https://#{Host}/deploy?v=#{Deployment.Version}", "headers": {"X-T": "#{Token}"}},
            }
        ],
    )
    services.variable_set(actor=None, service=land.service, name="Host", value="ci.example.com")
    services.variable_set(actor=None, service=land.service, name="Token", value="s3cr3t-token", is_secret=True)

    # when it is planned
    deployment = services.deployment_create(
        actor=manager, process=land.process, environment=land.environment, version="2.0"
    )

    # then the public values are in, and the secret is still a reference
    step = Step.objects.get(deployment=deployment, kind=StepKind.DEPLOY)
    assert step.parameters == {
        "url": "https://ci.example.com/deploy?v=2.0",
        "headers": {"X-T": "#{Token}"},
    }


def test_every_problem_of_a_plan_is_reported_at_once(landscape, manager):
    # given steps with an unknown variable and a parameter the executor refuses, on several targets
    land = landscape(
        targets=5,
        steps=[
            {"name": "a", "executor": "http_call", "parameters": {"url": "#{Nowhere}"}},
            {"name": "b", "executor": "simulator", "parameters": {"failure_rate": "often"}},
        ],
    )

    # when it is planned, then both problems are named, with the targets they concern
    with pytest.raises(InvalidInput) as raised:
        services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    assert len(raised.value.errors) == 2
    assert raised.value.errors[0].startswith("step 'a': unknown variables: Nowhere (on ")
    assert "and 2 more" in raised.value.errors[0]
    assert raised.value.errors[1].startswith("step 'b': failure_rate: must be a number")


def test_only_live_targets_are_planned(db, manager):
    from cmdb.choices import CiState

    land = make_landscape(targets=3)
    ci = land.targets[1].ci
    ConfigurationItemState = type(ci)
    ConfigurationItemState.objects.filter(pk=ci.pk).update(state=CiState.MAINTENANCE)
    deployment = services.deployment_create(actor=manager, process=land.process, environment=land.environment)
    planned = set(Step.objects.filter(deployment=deployment).values_list("target__ci__name", flat=True))
    assert ci.name not in planned
    assert len(planned) == 2


def test_a_fast_rollback_is_planned_in_the_same_waves_without_bake_time_or_health_gate(landscape, manager):
    # given a process that bakes each wave for ten minutes and then runs a health gate
    land = landscape(
        targets=2, bake_seconds=600, health_checks=[{"executor": "wait", "parameters": {"duration_seconds": "0"}}]
    )
    phased = {"model": "phased", "phase_plan": {"canary": 1, "percentages": [100]}}

    # when the same phased deployment is planned as usual and as a fast rollback
    usual = services.deployment_create(actor=manager, process=land.process, environment=land.environment, **phased)
    fast = services.deployment_create(
        actor=manager, process=land.process, environment=land.environment, fast_rollback=True, **phased
    )

    # then the fast one has the same waves, with no bake time and no gate step
    assert [(w.name, w.bake_seconds) for w in usual.waves.all()] == [("canary (1 target)", 600), ("100 %", 600)]
    assert [(w.name, w.bake_seconds, w.health_gate) for w in fast.waves.all()] == [
        ("canary (1 target)", 0, []),
        ("100 %", 0, []),
    ]
    assert not fast.steps.filter(kind=StepKind.GATE).exists()
    assert usual.steps.filter(kind=StepKind.GATE).count() == 2
