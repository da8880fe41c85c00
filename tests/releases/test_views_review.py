"""The review pages: the list and its filters, the review with the facts it was pre-filled from, the owner's form
(opening it starts the draft, autosave, refusals that keep what was typed), accepting and returning, the release
page's "Review and closing" card with the post-release baseline, permissions per role and query counts.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from rdm_site.exceptions import NotAllowed
from releases import services
from releases.choices import BaselineKind, ObjectivesMet, ReleaseState, ReviewState
from releases.models import KnowledgeArticle, PostImplementationReview
from tests.releases.api.conftest import session
from tests.releases.factories import ReleaseFactory
from tests.releases.test_review import reviewed_release

pytestmark = pytest.mark.django_db


def _url(name: str, review, *args) -> str:
    return reverse(f"releases:{name}", args=[review.pk, *args])


def _form_data(review, **fields) -> dict:
    """What the form posts: the owner's fields, a lesson, an action item (and the formsets' bookkeeping)."""
    data = {
        "objectives": review.objectives,
        "objectives_met": ObjectivesMet.YES,
        "objectives_note": "",
        "went_well": review.went_well,
        "went_badly": review.went_badly,
        "lessons-TOTAL_FORMS": "1",
        "lessons-INITIAL_FORMS": "0",
        "lessons-0-text": "Warm the cache before the canary.",
        "items-TOTAL_FORMS": "1",
        "items-INITIAL_FORMS": "0",
        "items-0-text": "Add a cache warm-up step",
        "items-0-owner": str(review.owner.pk),
        "items-0-due_on": (timezone.localdate() + timedelta(days=14)).isoformat(),
    }
    return {**data, **fields}


def _submitted(world) -> PostImplementationReview:
    review = reviewed_release(world)
    services.review_update(review=review, actor=world.people.so, data={"objectives_met": ObjectivesMet.YES})
    return services.review_submit(review=review, actor=world.people.so)


# --- reading ---------------------------------------------------------------------------------------


def test_the_review_page_shows_the_facts_it_was_prefilled_from(client, world):
    review = reviewed_release(world)
    client.force_login(world.people.viewer)
    page = client.get(review.get_absolute_url()).content.decode()
    # the rollout's timeline, the incident with its time to restore, the checklist at go-live
    assert "Wave 2 (10 %, 4 target(s)) failed after 7 min: health check" in page
    assert "Override of every freeze granted by ea: The outage fix cannot wait." in page
    assert "#{} Checkout slow".format(review.incidents[0]["id"]) in page
    assert "1 h 20 min" in page
    assert 'data-gate="rollback_ready"' in page
    # and the drafts of what went well and badly
    assert "succeeded in 12 min: 1 wave(s) passed their gates" in page
    # a viewer has no button and no form
    assert "data-action=" not in page
    assert _url("review_update", review) not in page


def test_the_owner_is_offered_the_form_and_submit_and_a_release_manager_nothing_yet(client, world):
    review = reviewed_release(world)
    client.force_login(world.people.so)
    page = client.get(review.get_absolute_url()).content.decode()
    assert "Write the review" in page
    assert 'data-action="submit"' in page
    client.force_login(world.people.rm)
    page = client.get(review.get_absolute_url()).content.decode()
    assert "Write the review" not in page
    assert 'data-action="submit"' not in page
    assert 'data-action="accept"' not in page  # nothing to decide before it is submitted


def test_the_list_filters_by_state_mine_overdue_and_service(client, world):
    p = world.people
    review = reviewed_release(world)
    late = PostImplementationReview.objects.create(
        release=ReleaseFactory(services=[world.other_service]),
        service=world.other_service,
        owner=p.so_other,
        due_on=timezone.localdate() - timedelta(days=2),
    )
    url = reverse("releases:review_list")

    def listed(user, **filters) -> set[int]:
        client.force_login(user)
        answer = client.get(url, filters)
        assert answer.status_code == 200
        return {row.record.pk for row in answer.context["table"].page.object_list}

    assert listed(p.viewer) == {review.pk, late.pk}
    assert listed(p.so, mine="true") == {review.pk}
    assert listed(p.so_other, mine="true") == {late.pk}
    assert listed(p.viewer, overdue="true") == {late.pk}
    assert listed(p.viewer, overdue="false") == {review.pk}
    assert listed(p.viewer, service=world.service.pk) == {review.pk}
    assert listed(p.viewer, state=ReviewState.DUE) == {review.pk, late.pk}
    assert listed(p.viewer, state=ReviewState.SUBMITTED) == set()
    client.force_login(p.viewer)
    page = client.get(url).content.decode()
    assert page.count(">Overdue</span>") == 1
    assert f'href="{review.get_absolute_url()}"' in page


# --- the owner's form ------------------------------------------------------------------------------


def test_opening_the_form_starts_the_draft_prefilled_where_the_owner_left_fields_empty(client, world):
    review = reviewed_release(world)
    services.review_update(review=review, actor=world.people.so, data={"went_well": ""})
    PostImplementationReview.objects.filter(pk=review.pk).update(state=ReviewState.DUE)  # as if never opened
    client.force_login(world.people.so)
    answer = client.get(_url("review_update", review))
    assert answer.status_code == 200
    assert PostImplementationReview.objects.get(pk=review.pk).state == ReviewState.DRAFT
    # the emptied field is drafted again from the record; the facts are beside the form
    assert "succeeded in 12 min: 1 wave(s) passed their gates" in answer.context["form"]["went_well"].value()
    page = answer.content.decode()
    assert "Wave 1 (canary, 1 target(s)) passed its health gate after 10 min" in page
    assert 'hx-post="{}"'.format(_url("review_autosave", review)) in page


def test_only_the_owner_of_the_service_opens_the_form_or_autosaves(client, world):
    review = reviewed_release(world)
    for outsider in (world.people.so_other, world.people.rm, world.people.viewer):
        client.force_login(outsider)
        assert client.get(_url("review_update", review)).status_code == 403
        assert client.post(_url("review_update", review), _form_data(review)).status_code == 403
        assert client.post(_url("review_autosave", review), _form_data(review)).status_code == 403
    review.refresh_from_db()
    assert (review.state, review.lessons) == (ReviewState.DUE, [])


def test_autosave_saves_the_draft_and_says_when(client, world):
    review = reviewed_release(world)
    client.force_login(world.people.so)
    answer = client.post(_url("review_autosave", review), _form_data(review, went_badly="The cache was cold."))
    assert answer.status_code == 200
    assert "Draft saved at" in answer.content.decode()
    review = PostImplementationReview.objects.get(pk=review.pk)
    assert review.state == ReviewState.DRAFT
    assert review.went_badly == "The cache was cold."
    assert review.lessons == ["Warm the cache before the canary."]
    assert [(item.text, item.owner) for item in review.action_items.all()] == [
        ("Add a cache warm-up step", world.people.so)
    ]
    # the page is not redrawn between saves: saving again from the same rows keeps them
    assert "Draft saved at" in client.post(_url("review_autosave", review), _form_data(review)).content.decode()
    review = PostImplementationReview.objects.get(pk=review.pk)
    assert review.lessons == ["Warm the cache before the canary."]
    assert review.action_items.count() == 1


def test_autosave_keeps_the_rest_while_an_action_item_is_incomplete(client, world):
    review = reviewed_release(world)
    client.force_login(world.people.so)
    data = _form_data(review, **{"lessons-0-text": "Bake longer.", "items-0-owner": "", "items-0-due_on": ""})
    answer = client.post(_url("review_autosave", review), data)
    page = answer.content.decode()
    assert "Draft saved at" in page
    assert "an action item needs what to do, an owner and a due date" in page.lower()
    review = PostImplementationReview.objects.get(pk=review.pk)
    assert review.lessons == ["Bake longer."]
    assert not review.action_items.exists()


def test_autosave_saves_nothing_while_a_field_is_invalid_and_says_which(client, world):
    review = reviewed_release(world)
    client.force_login(world.people.so)
    answer = client.post(_url("review_autosave", review), _form_data(review, objectives_met="mostly"))
    page = answer.content.decode()
    assert "Not saved." in page
    assert "Were the objectives met?: Select a valid choice." in page
    assert PostImplementationReview.objects.get(pk=review.pk).lessons == []


def test_a_refused_save_shows_the_problem_on_the_field_and_keeps_what_was_typed(client, world):
    review = reviewed_release(world)
    client.force_login(world.people.so)
    data = _form_data(review, **{"went_badly": "Typed, not to be lost.", "items-0-due_on": "31/02/2030"})
    answer = client.post(_url("review_update", review), data)
    assert answer.status_code == 422
    assert "due_on" in answer.context["items"].forms[0].errors
    page = answer.content.decode()
    assert "Typed, not to be lost." in page
    assert 'value="Add a cache warm-up step"' in page
    assert "Warm the cache before the canary." in page
    assert PostImplementationReview.objects.get(pk=review.pk).lessons == []


def test_saving_the_form_replaces_lessons_and_action_items_and_removed_rows_go(client, world):
    review = reviewed_release(world)
    client.force_login(world.people.so)
    answer = client.post(_url("review_update", review), _form_data(review))
    assert answer.status_code == 302
    assert answer.url == review.get_absolute_url()
    # the saved rows come back as initial rows; the one ticked for removal is dropped
    form = client.get(_url("review_update", review)).context["items"]
    assert form.initial_form_count() == 1
    data = _form_data(review, **{"items-INITIAL_FORMS": "1", "items-0-DELETE": "on"})
    assert client.post(_url("review_update", review), data).status_code == 302
    review = PostImplementationReview.objects.get(pk=review.pk)
    assert not review.action_items.exists()
    assert review.lessons == ["Warm the cache before the canary."]


def test_the_form_of_a_submitted_review_sends_its_owner_back_to_the_review(client, world):
    review = _submitted(world)
    client.force_login(world.people.so)
    answer = client.get(_url("review_update", review))
    assert answer.status_code == 302
    assert answer.url == review.get_absolute_url()


# --- deciding --------------------------------------------------------------------------------------


def test_the_submitter_may_not_accept_and_a_forged_post_is_refused(client, world):
    review = _submitted(world)
    client.force_login(world.people.so)
    page = client.get(review.get_absolute_url()).content.decode()
    assert 'data-action="accept"' not in page
    assert "segregation of duties" in page
    assert client.post(_url("review_transition", review, "accept"), {"reason": "mine"}).status_code == 403
    client.force_login(world.people.dm)
    assert client.post(_url("review_transition", review, "accept"), {"reason": "x"}).status_code == 403
    assert PostImplementationReview.objects.get(pk=review.pk).state == ReviewState.SUBMITTED


def test_returning_needs_a_comment(client, world):
    review = _submitted(world)
    client.force_login(world.people.rm)
    page = client.get(review.get_absolute_url()).content.decode()
    assert 'data-action="return_"' in page
    url = _url("review_transition", review, "return_")
    answer = client.post(url, {"reason": ""}, follow=True)
    assert "what to rework" in answer.content.decode()
    assert PostImplementationReview.objects.get(pk=review.pk).state == ReviewState.SUBMITTED
    client.post(url, {"reason": "Say why the gate failed."})
    review = PostImplementationReview.objects.get(pk=review.pk)
    assert (review.state, review.decision_reason) == (ReviewState.RETURNED, "Say why the gate failed.")
    # the owner reads the comment on the page and on the form, where reworking starts the draft again
    client.force_login(world.people.so)
    assert "Say why the gate failed." in client.get(review.get_absolute_url()).content.decode()
    assert "Say why the gate failed." in client.get(_url("review_update", review)).content.decode()
    assert PostImplementationReview.objects.get(pk=review.pk).state == ReviewState.DRAFT


def test_accepting_closes_the_release_once_the_post_release_baseline_is_taken(client, world):
    review = _submitted(world)
    release = world.reload()
    client.force_login(world.people.rm)
    page = client.get(release.get_absolute_url()).content.decode()
    assert "Review and closing" in page
    assert "Take post-release baseline" in page
    assert "accept its post-implementation review (it is submitted)".capitalize() in page
    # the Release Manager takes the baseline from the release page, then accepts the review
    answer = client.post(
        reverse("releases:release_transition", args=[release.pk, "baselines"]), {"kind": "post_release"}
    )
    assert answer.status_code == 302
    assert release.baselines.filter(kind=BaselineKind.POST_RELEASE).exists()
    client.post(_url("review_transition", review, "accept"), {"reason": "Thorough."})
    assert PostImplementationReview.objects.get(pk=review.pk).state == ReviewState.ACCEPTED
    assert world.reload().state == ReleaseState.CLOSED
    page = client.get(release.get_absolute_url()).content.decode()
    assert "The release is closed." in page
    assert "Take post-release baseline" not in page
    assert not KnowledgeArticle.objects.filter(review=review).exists()  # no lesson was written


def test_only_release_managers_take_the_post_release_baseline(client, world):
    _submitted(world)
    release = world.reload()
    client.force_login(world.people.so)
    assert "Take post-release baseline" not in client.get(release.get_absolute_url()).content.decode()
    url = reverse("releases:release_transition", args=[release.pk, "baselines"])
    assert client.post(url, {"kind": "post_release"}).status_code == 403
    with pytest.raises(NotAllowed, match="may not take a post-release baseline"):
        services.release_baseline_take(release=release, actor=world.people.dm, kind=BaselineKind.POST_RELEASE)
    assert not release.baselines.filter(kind=BaselineKind.POST_RELEASE).exists()
    # RDM itself takes one after a production deployment
    services.release_baseline_take(release=release, actor=None, kind=BaselineKind.POST_RELEASE)
    assert release.baselines.filter(kind=BaselineKind.POST_RELEASE).exists()


def test_the_api_takes_a_baseline_of_the_kind_asked(world):
    _submitted(world)
    release = world.reload()
    url = f"/api/v1/releases/{release.pk}/baselines/"
    assert session(world.people.so).post(url, {"kind": "post_release"}, format="json").status_code == 403
    assert session(world.people.rm).post(url, {}, format="json").status_code == 400
    answer = session(world.people.rm).post(url, {"kind": "post_release"}, format="json")
    assert answer.status_code == 200
    assert release.baselines.filter(kind=BaselineKind.POST_RELEASE).count() == 1


# --- query counts ----------------------------------------------------------------------------------


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_list_makes_as_many_queries_for_ten_times_the_rows(client, world):
    def grow(count):
        for _ in range(count):
            release = ReleaseFactory(services=[world.service])
            PostImplementationReview.objects.create(
                release=release, service=world.service, owner=world.people.so, due_on=timezone.localdate()
            )

    client.force_login(world.people.viewer)
    url = reverse("releases:review_list")
    grow(2)
    few = _queries(client, url)
    grow(18)
    assert _queries(client, url) == few


def test_the_review_page_makes_as_many_queries_for_more_action_items(client, world):
    review = reviewed_release(world)
    client.force_login(world.people.so)

    def items(count):
        due = timezone.localdate() + timedelta(days=7)
        rows = [{"text": f"Item {n}", "owner": world.people.dm, "due_on": due} for n in range(count)]
        services.review_update(review=review, actor=world.people.so, data={"action_items": rows})

    items(1)
    few = _queries(client, review.get_absolute_url())
    items(10)
    assert _queries(client, review.get_absolute_url()) == few
