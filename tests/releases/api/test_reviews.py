"""``/api/v1/reviews/`` and ``/api/v1/knowledge/``: reading, editing while open, the transitions, action items,
search with highlights; and DESIGN.md's rows for them, for every role (``tests.api.matrix``).
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from rdm_site.roles import Role
from releases import services
from releases.choices import KnowledgeKind, ObjectivesMet, ReviewState
from releases.models import KnowledgeArticle, PostImplementationReview
from tests.api.matrix import cells
from tests.factories import UserFactory
from tests.releases.api.conftest import session

pytestmark = pytest.mark.django_db


def due_review(world, **fields) -> PostImplementationReview:
    """A review that fell due for the world's service owner (the release's own path is in test_review)."""
    return PostImplementationReview.objects.create(
        release=world.release,
        service=world.service,
        owner=world.service.owner,
        due_on=timezone.localdate() + timedelta(days=5),
        objectives="Faster checkout.",
        went_well="- Fast.",
        **fields,
    )


def caller(cell, world):
    """The cell's person; a Service Owner owns the world's service (the review's) as the row qualifies."""
    user = UserFactory(username="matrix", roles=[cell.role])
    if cell.role == Role.SERVICE_OWNER:
        world.service.owner = user
        world.service.save(update_fields=["owner"])
    return cell.client(user)


def test_the_owner_edits_with_action_items_and_submits_and_a_release_manager_accepts(world):
    p = world.people
    review = due_review(world)
    url = f"/api/v1/reviews/{review.pk}/"
    due = (timezone.localdate() + timedelta(days=14)).isoformat()
    edit = {
        "objectives_met": "yes",
        "lessons": ["Warm the cache before the canary."],
        "action_items": [{"text": "Add a cache warm-up step", "owner": "dm", "due_on": due}],
    }
    owner = session(p.so)
    response = owner.patch(url, edit, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == ReviewState.DRAFT
    assert body["action_items"] == [{"text": "Add a cache warm-up step", "owner": "dm", "due_on": due}]
    assert body["actions"] == ["update", "submit"]
    assert owner.post(f"{url}submit/").json()["state"] == ReviewState.SUBMITTED
    # the submitter may not accept it (403, segregation of duties); a Release Manager returns, then accepts
    refused = owner.post(f"{url}accept/", {"reason": "Mine."}, format="json")
    assert refused.status_code == 403
    assert "segregation of duties" in refused.json()["detail"]
    manager = session(p.rm)
    assert manager.post(f"{url}return/", {"reason": ""}, format="json").status_code == 400
    returned = manager.post(f"{url}return/", {"reason": "Name the failing gate."}, format="json").json()
    assert returned["state"] == ReviewState.RETURNED
    assert returned["decision_reason"] == "Name the failing gate."
    owner.post(f"{url}submit/")
    assert manager.post(f"{url}accept/", {}, format="json").json()["state"] == ReviewState.ACCEPTED
    assert KnowledgeArticle.objects.filter(review=review, kind=KnowledgeKind.LESSON_LEARNED).count() == 1


def test_reviews_are_listed_and_filtered_by_state(world):
    due_review(world)
    client = session(world.people.viewer)
    listed = client.get("/api/v1/reviews/", {"state": ReviewState.DUE}).json()
    assert [row["state"] for row in listed["results"]] == [ReviewState.DUE]
    assert client.get("/api/v1/reviews/", {"state": ReviewState.ACCEPTED}).json()["results"] == []


def test_knowledge_is_written_through_the_service_and_searched_with_highlights(world):
    client = session(world.people.rm)
    for title, body in (
        ("Cache warm-up", "Before a canary, warm the database caches."),
        ("Database failover", "Promote the replica; point the application at it."),
        ("Unrelated", "Nothing to see."),
    ):
        answer = client.post(
            "/api/v1/knowledge/",
            {"title": title, "body": body, "kind": KnowledgeKind.RUNBOOK, "service": world.service.pk},
            format="json",
        )
        assert answer.status_code == 201, answer.content
    found = client.get("/api/v1/knowledge/", {"q": "database"}).json()["results"]
    assert [row["title"] for row in found] == ["Database failover", "Cache warm-up"]
    assert found[0]["rank"] > found[1]["rank"]
    assert found[0]["title_highlight"] == "<mark>Database</mark> failover"
    assert "<mark>database</mark>" in found[1]["body_highlight"]
    assert client.get("/api/v1/knowledge/").json()["results"][0]["rank"] is None


@pytest.mark.parametrize("cell", cells("write and submit a PIR"), ids=str)
def test_write_and_submit_a_pir(cell, world):
    review = due_review(world)
    client = caller(cell, world)
    edit = {"objectives_met": ObjectivesMet.YES}
    cell.assert_answer(client.patch(f"/api/v1/reviews/{review.pk}/", edit, format="json"))
    cell.assert_answer(client.post(f"/api/v1/reviews/{review.pk}/submit/"))


@pytest.mark.parametrize("cell", cells("accept or return a PIR; write knowledge articles"), ids=str)
def test_accept_or_return_a_pir_and_write_knowledge(cell, world):
    review = due_review(world, objectives_met=ObjectivesMet.YES)
    services.review_submit(review=review, actor=world.people.so)
    client = caller(cell, world)
    cell.assert_answer(client.post(f"/api/v1/reviews/{review.pk}/return/", {"reason": "More."}, format="json"))
    article = {"title": "Runbook", "body": "Restart it.", "kind": KnowledgeKind.RUNBOOK, "service": world.service.pk}
    cell.assert_answer(client.post("/api/v1/knowledge/", article, format="json"))
