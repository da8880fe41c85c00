"""Rollouts watched and controlled in the browser: the start from the ready demo release with its plan shown first,
the live grid moving without a reload, pause and resume, an automatic rollback after a failed health gate, a
manual intervention answered from the page, a cut stream that recovers without showing an event twice, and a
viewer who watches without controls.

The demo's simulated process runs on the real worker; Celery beat runs the reconciler every second (bake times,
waits). Web Shop gets a second staging node so that a phased rollout has two waves.
"""

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from cmdb.choices import CiState, CiType
from cmdb.models import ConfigurationItem, Environment, Service
from deployments import services
from deployments.choices import DeploymentModel
from deployments.models import Deployment, DeploymentEvent, DeploymentProcess, StepTemplate, Target
from releases.models import Release
from tests.browser.conftest import axe_violations, forged_post, shot, sign_in
from tests.harness.processes import start_beat

ROLLOUT_TIMEOUT = 60_000  # ms
# A page that posts a control (or is closed) cancels the requests it keeps open: its event stream, a re-read.
LEFT_BEHIND = re.compile(
    r"^failed GET \S+/deployments/\d+/(events/stream/|live/|progress/|steps/\d+/logs/)\S*: net::ERR_ABORTED$"
)


@pytest.fixture(autouse=True)
def _leaving_a_live_page_is_not_a_failure(page):
    yield
    page.watch.problems[:] = [problem for problem in page.watch.problems if not LEFT_BEHIND.match(problem)]


@pytest.fixture
def beat(site, process_log_dir):
    """Celery beat running the reconciler every second."""
    process = start_beat(process_log_dir, name="browser-beat", RDM_RECONCILE_SECONDS="1")
    yield process
    process.stop()


@pytest.fixture
def web_shop(site):
    """Web Shop with two live nodes in staging, both deployment targets."""
    staging = Environment.objects.get(name="staging")
    first = ConfigurationItem.objects.get(name="web-shop", environment=staging)
    second = ConfigurationItem.objects.create(
        name="web-shop-2",
        environment=staging,
        service=first.service,
        ci_type=CiType.APPLICATION,
        state=CiState.LIVE,
        version=first.version,
    )
    Target.objects.create(ci=second, ring=staging.tier)
    return first.service


def quick_process(service: Service, name: str, steps, health_checks=()) -> DeploymentProcess:
    """A process of (name, executor, parameters[, run once]) steps."""
    process = DeploymentProcess.objects.create(service=service, name=name, health_checks=list(health_checks))
    for position, (step_name, executor, parameters, *once) in enumerate(steps):
        StepTemplate.objects.create(
            process=process,
            position=position,
            name=step_name,
            executor=executor,
            parameters=parameters,
            run_once=bool(once and once[0]),
        )
    return process


def planned(process: DeploymentProcess, *, phased: bool = True) -> Deployment:
    """A deployment to staging planned by dan.deploy (two waves when phased: a canary, then the rest)."""
    plan = {"canary": 1, "percentages": [100], "bake_seconds": 0} if phased else {}
    return services.deployment_create(
        actor=User.objects.get(username="dan.deploy"),
        process=process,
        environment=Environment.objects.get(name="staging"),
        model=DeploymentModel.PHASED if phased else DeploymentModel.BIG_BANG,
        phase_plan=plan,
    )


def rollout_violations(page: Page, *parts: str) -> list[str]:
    """axe-core's serious and critical findings on the page's own parts (the rollout's, by default)."""
    axe_violations(page)  # loads axe-core
    include = [[part] for part in parts or ("[data-rollout]", "#rollout-connection")]
    result = page.evaluate("async (include) => await axe.run({include}, {resultTypes: ['violations']})", include)
    return [
        f"{violation['id']}: {violation['help']} ({[node['target'] for node in violation['nodes'][:3]]})"
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


def mark_page(page: Page) -> None:
    """Tag the loaded document: the tag is gone if the page reloads."""
    page.evaluate("() => { window.rdmNotReloaded = true; }")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("() => window.rdmNotReloaded === true"), "the page was reloaded"


def step_states(page: Page) -> list[str]:
    return page.locator("[data-step]").evaluate_all(
        "steps => steps.map(step => step.dataset.step + ':' + step.querySelector('.rdm-step-state').textContent)"
    )


def control(page: Page, action: str, label: str, reason: str) -> None:
    """Press a control, give the reason in its confirmation, confirm."""
    page.locator(f'#rollout-controls button[data-action="{action}"]').click()
    dialog = page.locator(f"#action-{action}")
    expect(dialog).to_be_visible()
    dialog.get_by_role("textbox").fill(reason)
    dialog.get_by_role("button", name=label).click()


def test_a_manager_starts_a_phased_rollout_sees_the_plan_first_pauses_resumes_and_it_succeeds(page, beat, web_shop):
    release = Release.objects.get(name="Web Shop", state="ready")
    sign_in(page, "dan.deploy")

    # step 1: choose, from the release
    page.goto(release.get_absolute_url())
    shot(page, "deployments-from-the-release")
    page.get_by_role("link", name="Plan a deployment").click()
    expect(page.get_by_role("heading", name="Start a deployment")).to_be_visible()
    page.get_by_label("Environment").select_option(label="staging")
    page.get_by_label("Phased").check()
    page.get_by_label("Canary targets").fill("1")
    page.get_by_label("Waves by percentage").fill("100")
    page.get_by_label("Bake time (seconds)").fill("1")
    assert rollout_violations(page, "form.card") == []
    shot(page, "deployments-start-form")
    page.get_by_role("button", name="Plan the deployment").click()

    # step 2: the stored plan and the guards' answers, before anything runs
    expect(page.get_by_role("heading", name="Wave 1: canary (1 target)")).to_be_visible()
    expect(page.get_by_role("heading", name="Wave 2: 100 %")).to_be_visible()
    guards = page.get_by_role("table", name="Guards checked by the start")
    expect(guards.get_by_role("row")).to_have_count(5)
    expect(guards).not_to_contain_text("Not met")
    expect(page.locator("[data-rollout-state]")).to_contain_text("Planned")
    assert {state.split(":")[1] for state in step_states(page)} == {"Pending"}
    assert rollout_violations(page) == []
    shot(page, "deployments-plan-before-start")
    deployment = Deployment.objects.get(package__release=release)
    assert deployment.state == "planned"

    page.get_by_role("button", name="Confirm start").click()
    expect(page.locator("#rollout-connection")).to_have_text("live")
    mark_page(page)

    # the cells move on their own: pending → running → succeeded
    first_deploy = page.locator("[data-wave]").first.locator("[data-step]").first
    expect(first_deploy).to_contain_text("Running", timeout=ROLLOUT_TIMEOUT)
    expect(first_deploy).to_contain_text("Succeeded", timeout=ROLLOUT_TIMEOUT)
    assert_not_reloaded(page)
    shot(page, "deployments-rollout-running")

    # paused: what runs finishes, then nothing changes
    control(page, "pause", "Pause", "Checking the canary's dashboards.")
    expect(page.locator("[data-rollout-state]")).to_contain_text("Paused")
    page.wait_for_timeout(1500)  # an event already on its way may land
    frozen = step_states(page)
    page.wait_for_timeout(3000)
    assert step_states(page) == frozen
    assert "Pending" in " ".join(frozen), "paused before the end"

    control(page, "resume", "Resume", "Dashboards are fine.")
    mark_page(page)
    expect(page.locator("[data-rollout-state]")).to_contain_text("Succeeded", timeout=ROLLOUT_TIMEOUT)
    expect(page.locator("#rollout-connection")).to_contain_text("finished")
    expect(page.locator("[data-step] .rdm-step-state", has_text="Pending")).to_have_count(0)
    assert_not_reloaded(page)
    deployment.refresh_from_db()
    assert deployment.state == "succeeded"
    expect(page.locator("#rollout-controls button")).to_have_count(0)


def test_a_failed_wave_2_health_gate_rolls_back_and_the_page_shows_it_live(page, beat, web_shop):
    process = quick_process(
        web_shop,
        "gate fails on the second node",
        [("deploy", "simulator", {"latency_ms": 0})],
        [{"executor": "simulator", "per_target": True, "parameters": {"fail_on_target": "web-shop-2"}}],
    )
    deployment = planned(process)
    sign_in(page, "dan.deploy")
    page.goto(f"/deployments/{deployment.pk}/")
    page.get_by_role("button", name="Confirm start").click()
    expect(page.locator("#rollout-connection")).to_have_text("live")
    mark_page(page)

    expect(page.locator("[data-rollout-state]")).to_contain_text("Rolled back", timeout=ROLLOUT_TIMEOUT)
    second = page.locator("[data-wave]").nth(1)
    expect(second.locator("[data-wave-state]")).to_have_text("Failed")
    expect(second.get_by_role("button", name="health gate: Simulator on web-shop-2 Failed")).to_be_visible()
    expect(second).to_contain_text("simulated failure on target web-shop-2")
    for wave in page.locator("[data-wave]").all():
        expect(wave.locator("[data-wave-rolled-back]")).to_have_text("Rolled back")
    assert_not_reloaded(page)
    deployment.refresh_from_db()
    assert deployment.state == "rolled_back"

    # the failed gate's log, read from the grid
    second.get_by_role("button", name="health gate: Simulator on web-shop-2 Failed").click()
    logs = page.locator("#step-log-lines")
    expect(logs).to_contain_text("simulated failure on target web-shop-2")
    expect(page.locator("#step-log-poller")).to_have_text("End of the log.", timeout=10_000)
    page.set_viewport_size({"width": 768, "height": 1024})
    shot(page, "deployments-rolled-back-tablet")


def test_a_manual_intervention_is_answered_from_the_page_and_the_rollout_continues(page, beat, web_shop):
    process = quick_process(
        web_shop,
        "with a check by hand",
        [
            ("deploy", "simulator", {"latency_ms": 0}),
            (
                "check the basket",
                "manual_intervention",
                {"instructions": "Open a basket and pay.", "deadline_minutes": 10},
                True,
            ),
        ],
    )
    deployment = planned(process, phased=False)
    sign_in(page, "dan.deploy")
    page.goto(f"/deployments/{deployment.pk}/")
    page.get_by_role("button", name="Confirm start").click()

    prompt = page.locator("[data-intervention]").first
    expect(prompt).to_contain_text("Open a basket and pay.", timeout=ROLLOUT_TIMEOUT)
    expect(prompt).to_contain_text("Answer by")
    shot(page, "deployments-manual-intervention")
    prompt.get_by_label("Proceed").check()
    prompt.get_by_label("Reason").fill("Paid with the test card.")
    prompt.get_by_role("button", name="Send the answer").click()

    expect(page.locator("[data-rollout-state]")).to_contain_text("Succeeded", timeout=ROLLOUT_TIMEOUT)
    expect(page.locator("[data-intervention]")).to_have_count(0)
    deployment.refresh_from_db()
    assert deployment.state == "succeeded"
    assert deployment.steps.get(name="check the basket").manual_answer == "proceed"


def test_a_cut_stream_reconnects_and_every_event_is_shown_exactly_once(page, beat, web_shop):
    process = quick_process(web_shop, "slower", [("deploy", "simulator", {"latency_ms": 800})])
    deployment = planned(process)
    sign_in(page, "dan.deploy")
    streams = []
    page.on("request", lambda request: "/events/stream/" in request.url and streams.append(request.url))
    page.goto(f"/deployments/{deployment.pk}/")
    page.get_by_role("button", name="Confirm start").click()
    expect(page.locator("#rollout-connection")).to_have_text("live")
    expect(page.locator("[data-step] .rdm-step-state", has_text="Running").first).to_be_visible(timeout=ROLLOUT_TIMEOUT)

    # the connection drops and the browser gives up on it: the page connects again from the last event it saw
    seen = page.evaluate(
        "() => { const stream = document.querySelector('[data-rollout]').rdmStream;"
        " stream.close(); stream.dispatchEvent(new Event('error'));"
        " return Math.max(...[...document.querySelectorAll('#rollout-events [data-seq]')].map(e => +e.dataset.seq)); }"
    )
    expect(page.locator("#rollout-connection")).to_have_text("reconnecting…")
    expect(page.locator("#rollout-connection")).to_have_text("live", timeout=10_000)
    assert streams[-1].endswith(f"/deployments/{deployment.pk}/events/stream/?after={seen}"), streams

    expect(page.locator("[data-rollout-state]")).to_contain_text("Succeeded", timeout=ROLLOUT_TIMEOUT)
    seqs = list(DeploymentEvent.objects.filter(deployment=deployment).order_by("-seq").values_list("seq", flat=True))
    shown = page.locator("#rollout-events [data-seq]")
    expect(shown).to_have_count(len(seqs))
    assert shown.evaluate_all("items => items.map(item => Number(item.dataset.seq))") == seqs


def test_a_viewer_watches_live_without_controls_and_a_forged_control_is_refused(page, beat, web_shop):
    process = quick_process(web_shop, "watched", [("deploy", "simulator", {"latency_ms": 800})])
    deployment = planned(process)
    sign_in(page, "vera.viewer")
    page.goto(f"/deployments/{deployment.pk}/")
    expect(page.get_by_role("button", name="Confirm start")).to_have_count(0)
    withheld = page.locator("#rollout-withheld")
    expect(withheld).to_contain_text("Not available to you")
    expect(withheld).to_contain_text("may not start")
    services.deployment_start(deployment=deployment, actor=User.objects.get(username="dan.deploy"))
    mark_page(page)

    expect(page.locator("[data-step] .rdm-step-state", has_text="Running").first).to_be_visible(timeout=ROLLOUT_TIMEOUT)
    expect(page.locator("#rollout-controls button")).to_have_count(0)
    page.watch.expected_statuses.add(403)
    assert forged_post(page, f"/deployments/{deployment.pk}/do/pause/", {"reason": "forged"}) == 403
    expect(page.locator("[data-rollout-state]")).to_contain_text("Succeeded", timeout=ROLLOUT_TIMEOUT)
    expect(withheld).not_to_contain_text("may not start")  # what is withheld follows the state, as the controls do
    expect(page.locator("#rollout-timeline")).to_contain_text("deployment.start by dan.deploy")
    assert_not_reloaded(page)
    assert Deployment.objects.get(pk=deployment.pk).state == "succeeded"
    assert not deployment.events.filter(state="paused").exists()


def test_the_dashboard_and_the_list_follow_a_rollout_without_reloading(page, beat, web_shop):
    process = quick_process(web_shop, "followed", [("deploy", "simulator", {"latency_ms": 800})])
    deployment = planned(process)
    services.deployment_start(deployment=deployment, actor=User.objects.get(username="dan.deploy"))
    sign_in(page, "vera.viewer")

    page.goto("/")
    mark_page(page)
    progress = page.locator(f'#active-deployments [data-deployment-progress="{deployment.pk}"]')
    expect(progress).to_contain_text("/ 2 steps")
    expect(progress).to_contain_text("1 / 2 steps", timeout=ROLLOUT_TIMEOUT)
    assert_not_reloaded(page)

    page.goto("/deployments/")
    mark_page(page)
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=str(deployment.pk), exact=True))
    expect(row.locator("[data-deployment-state]")).to_have_text("Succeeded", timeout=ROLLOUT_TIMEOUT)
    expect(row.locator("[data-deployment-progress]")).to_contain_text("2 / 2 steps")
    assert_not_reloaded(page)
    page.set_viewport_size({"width": 768, "height": 1024})
    shot(page, "deployments-list-tablet")
