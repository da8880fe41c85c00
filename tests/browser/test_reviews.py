"""The post-implementation review in the browser, on the demo data: Web Shop 5.1 went live (set up through the
services: deployed to production, early life support with one incident, exited), so its review is due for Sophie
Owner. She writes it from the pre-filled draft (the form saves itself), adds a lesson and an action item, and
submits it; Rita Release takes the post-release baseline and accepts the review; the release closes, and the
lesson is found in the knowledge base.
"""

import time
from datetime import timedelta

from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import expect

from deployments.models import Deployment, DeploymentProcess, Incident, Wave
from releases import services
from releases.choices import ReleaseState, ReviewState
from releases.models import ChangeRecord, KnowledgeArticle, PostImplementationReview, Release
from tests.browser.conftest import axe_violations, shot, sign_in

LESSON = "Warm the basket cache before the first wave.\nThe cold cache slowed checkout for twenty minutes."
ACTION = "Add a cache warm-up step to the Web Shop process"
TABLET = {"width": 768, "height": 1024}


def _ago(minutes: int):
    """``minutes`` after the rollout started, three hours ago."""
    return timezone.now() - timedelta(hours=3) + timedelta(minutes=minutes)


def _wait_for(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        time.sleep(0.1)


def web_shop_live_and_reviewed() -> PostImplementationReview:
    """Web Shop 5.1 (ready in the demo) deployed to production in two waves, through early life support with a
    P3 incident restored in 35 minutes, and out of it: the review falls due, pre-filled, for its service owner.
    """
    release = Release.objects.get(name="Web Shop", version="5.1")
    dan, sophie = User.objects.get(username="dan.deploy"), User.objects.get(username="sophie.owner")
    change = ChangeRecord.objects.get(release=release)
    # the change's window is the demo's next opening: move it to cover the rollout, as if that time had come
    ChangeRecord.objects.filter(pk=change.pk).update(planned_start=_ago(-30), planned_end=_ago(360))
    services.change_schedule(change=change, actor=dan)
    services.change_start(change=change, actor=dan)
    services.release_deploying(release=release, actor=dan)
    package = release.packages.get()
    deployment = Deployment.objects.create(
        service=release.services.get(),
        environment=change.configuration_items.first().environment,
        process=DeploymentProcess.objects.filter(service__name="Web Shop").first(),
        package=package,
        change=change,
        version=package.version,
        model="phased",
        state="succeeded",
        started_at=_ago(0),
        finished_at=_ago(18),
    )
    for index, (name, start, end) in enumerate((("canary", 0, 6), ("rest", 8, 18))):
        Wave.objects.create(
            deployment=deployment,
            index=index,
            name=name,
            target_count=1,
            state="passed",
            started_at=_ago(start),
            finished_at=_ago(end),
            health_gate=[{"url": "https://shop.rdm.example/health"}],
        )
    services.change_complete(change=change, actor=dan, outcome="implemented")
    services.release_deployed(release=release)
    services.release_els_start(release=release, actor=sophie)
    Release.objects.filter(pk=release.pk).update(els_min_duration_days=0, els_started_at=_ago(20))
    Incident.objects.create(
        title="Checkout slow after the release",
        severity="p3",
        state="resolved",
        release=release,
        deployment=deployment,
        opened_at=_ago(30),
        resolved_at=_ago(65),
    )
    services.release_review_start(release=release, actor=dan)
    return PostImplementationReview.objects.get(release=release)


def test_the_service_owner_files_the_review_and_the_release_manager_accepts_it(page):
    review = web_shop_live_and_reviewed()
    release = review.release

    # --- Sophie finds the review due for her, with its facts ---
    sign_in(page, "sophie.owner")
    page.goto("/reviews/?mine=true")
    row = page.locator("tbody tr").filter(has_text="Web Shop 5.1")
    expect(row).to_contain_text("Due")
    shot(page, "review-list")
    row.get_by_role("link", name="Web Shop 5.1").click()
    expect(page.locator("h1.page-title")).to_have_text("Review of Web Shop 5.1")
    expect(page.locator(".rdm-review-facts")).to_contain_text("Wave 2 (rest, 1 target(s)) passed its health gate")
    expect(page.locator(".rdm-review-incidents")).to_contain_text("35 min")
    assert axe_violations(page) == []
    page.get_by_role("link", name="Write the review").click()

    # --- the form is the draft written from the record ---
    expect(page.get_by_label("What went well")).to_have_value(
        f"- Deployment #{review.timeline[0]['deployment']} of 5.1.0+412 to production succeeded in 18 min: "
        "2 wave(s) passed their gates.\n- Every gate of the go/no-go checklist was green."
    )
    expect(page.get_by_label("What went badly")).to_contain_text("P3 incident")
    expect(page.get_by_label("Objectives", exact=True)).to_have_value("One-page checkout and saved baskets.")
    assert PostImplementationReview.objects.get(pk=review.pk).state == ReviewState.DRAFT  # opened: a draft

    # --- she completes it; the form saves itself ---
    page.get_by_label("Yes").check()
    lessons = page.locator("#lessons-rows")
    lessons.get_by_label("Lesson", exact=True).fill(LESSON)
    items = page.locator("#items-rows")
    items.get_by_label("What to do").fill(ACTION)
    items.get_by_label("Owner").select_option(label="Dan Deploy")
    items.get_by_label("Due on").fill((timezone.localdate() + timedelta(days=21)).isoformat())
    expect(page.locator("#autosave-status")).to_contain_text("Draft saved at", timeout=10_000)
    page.get_by_role("button", name="Add lesson").click()
    with page.expect_response(lambda response: response.url.endswith("/autosave/"), timeout=10_000):
        lessons.get_by_label("Lesson", exact=True).nth(1).fill("Announce the release window to support.")
    expect(page.locator("#autosave-status")).to_contain_text("Draft saved at")
    assert axe_violations(page) == []
    shot(page, "review-form")
    page.set_viewport_size(TABLET)
    shot(page, "review-form-tablet")
    page.set_viewport_size({"width": 1366, "height": 900})

    # nothing is lost by leaving at once without saving: the last words typed reach the review, then she submits it
    went_badly = page.get_by_label("What went badly")
    went_badly.fill(went_badly.input_value() + "\n- The warm-up was forgotten.")
    page.get_by_role("link", name="Back to the review").click()
    page.wait_for_url(f"**{review.get_absolute_url()}", wait_until="load")  # reloading sooner aborts its scripts
    _wait_for(lambda: "The warm-up was forgotten." in PostImplementationReview.objects.get(pk=review.pk).went_badly)
    page.reload()
    expect(page.locator('[data-answer="went_badly"]')).to_contain_text("The warm-up was forgotten.")
    expect(page.locator(".rdm-lessons")).to_contain_text("Warm the basket cache before the first wave.")
    expect(page.locator(".rdm-lessons")).to_contain_text("Announce the release window to support.")
    expect(page.locator(".rdm-action-items")).to_contain_text(ACTION)
    expect(page.locator(".rdm-action-items")).to_contain_text("Dan Deploy")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator(".rdm-messages")).to_contain_text("Submit: done for Review of Web Shop 5.1.")
    expect(page.locator(".rdm-withheld")).to_contain_text("segregation of duties")  # not hers to accept

    # --- Rita takes the post-release baseline, then accepts the review ---
    sign_in(page, "rita.release")
    page.goto(release.get_absolute_url())
    closing = page.locator(".rdm-closing")
    expect(closing).to_contain_text("Take the post-release baseline")
    expect(closing).to_contain_text("Accept its post-implementation review (it is submitted)")
    shot(page, "release-in-review")
    closing.get_by_role("button", name="Take post-release baseline").click()
    expect(page.locator(".rdm-closing")).not_to_contain_text("Not taken yet")
    closing.get_by_role("link", name="Review of Web Shop 5.1").click()
    page.get_by_role("button", name="Accept").click()
    dialog = page.get_by_role("dialog", name="Accept: Review of Web Shop 5.1")
    dialog.get_by_label("Comment").fill("Clear timeline and a concrete action.")
    dialog.get_by_role("button", name="Accept").click()
    expect(page.locator(".rdm-messages")).to_contain_text("Accept: done for Review of Web Shop 5.1.")
    expect(page.locator(".rdm-lessons + .card-footer")).to_contain_text("Warm the basket cache before the first wave.")
    shot(page, "review-accepted")

    page.goto(release.get_absolute_url())
    expect(page.locator(".page-header .rdm-badge").first).to_have_text("Closed")
    expect(page.locator(".rdm-closing")).to_contain_text("The release is closed.")
    assert Release.objects.get(pk=release.pk).state == ReleaseState.CLOSED
    assert axe_violations(page) == []
    page.set_viewport_size(TABLET)
    shot(page, "release-closed-tablet")
    page.set_viewport_size({"width": 1366, "height": 900})

    # --- the lesson is knowledge now ---
    page.goto("/knowledge/?q=basket+cache")
    hit = page.locator(".rdm-knowledge-hit").first
    expect(hit.locator("h2")).to_contain_text("Warm the basket cache before the first wave.")
    expect(hit.locator("mark").first).to_be_visible()
    assert KnowledgeArticle.objects.filter(review=review, service__name="Web Shop").count() == 2
    assert axe_violations(page) == []
    shot(page, "knowledge-search")
