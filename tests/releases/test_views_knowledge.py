"""The knowledge base pages: search ranked with safe highlights, the service filter, an article's page, writing
and editing articles (Release Managers and Service Owners only), refusals that keep what was typed, query counts.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from releases import services
from releases.choices import KnowledgeKind
from releases.models import KnowledgeArticle

pytestmark = pytest.mark.django_db

SEARCH = reverse("releases:knowledge_search")
CREATE = reverse("releases:knowledge_create")


def _article(world, title: str, body: str, service=None) -> KnowledgeArticle:
    return services.knowledge_article_create(
        actor=world.people.rm,
        title=title,
        body=body,
        kind=KnowledgeKind.RUNBOOK,
        service=service or world.service,
    )


def test_search_ranks_a_title_match_first_and_highlights_it_safely(client, world):
    in_body = _article(world, "Database failover", "Before a failover, warm the cache of the replica.")
    in_title = _article(world, "Cache warm-up", "Run the warm-up job before the canary.")
    _article(world, "Unrelated <b>bold</b>", "Nothing to see.")
    hostile = _article(world, "<script>alert(1)</script> note", "A <img src=x onerror=alert(1)> cache note.")
    client.force_login(world.people.viewer)
    answer = client.get(SEARCH, {"q": "cache"})
    ranked = [article.pk for article in answer.context["articles"]]
    assert ranked[0] == in_title.pk
    assert set(ranked) == {in_title.pk, in_body.pk, hostile.pk}
    page = answer.content.decode()
    assert "<mark>Cache</mark> warm-up" in page
    assert "warm the <mark>cache</mark> of the replica" in page
    # an article's text reaches the page as text: only the highlight is markup
    assert "<script>alert(1)</script>" not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; note" in page
    assert "alert(1)&gt; <mark>cache</mark> note" in page
    assert "3 articles match “cache”" in page


def test_search_filters_by_service_and_an_empty_query_lists_the_newest(client, world):
    shop = _article(world, "Shop restart", "Restart the shop nodes one by one.")
    search = _article(world, "Search restart", "Restart the search nodes.", service=world.other_service)
    client.force_login(world.people.viewer)
    answer = client.get(SEARCH, {"q": "restart", "service": world.other_service.pk})
    assert [article.pk for article in answer.context["articles"]] == [search.pk]
    answer = client.get(SEARCH)
    assert [article.pk for article in answer.context["articles"]] == [search.pk, shop.pk]
    assert client.get(SEARCH, {"service": "not a service"}).context["articles"].count() == 0


def test_a_viewer_reads_but_may_not_write(client, world):
    article = _article(world, "Cache warm-up", "Run the warm-up job.")
    client.force_login(world.people.viewer)
    assert "New article" not in client.get(SEARCH).content.decode()
    page = client.get(article.get_absolute_url())
    assert page.status_code == 200
    assert "Run the warm-up job." in page.content.decode()
    assert reverse("releases:knowledge_update", args=[article.pk]) not in page.content.decode()
    assert client.get(CREATE).status_code == 403
    assert client.post(CREATE, {"title": "x", "body": "y", "kind": "runbook"}).status_code == 403
    update = reverse("releases:knowledge_update", args=[article.pk])
    assert client.get(update).status_code == 403
    assert client.post(update, {"title": "Forged"}).status_code == 403
    assert KnowledgeArticle.objects.get(pk=article.pk).title == "Cache warm-up"


@pytest.mark.parametrize("role", ["dm", "ci", "ca"])
def test_roles_that_do_not_write_knowledge_are_refused(client, world, role):
    client.force_login(getattr(world.people, role))
    assert client.get(CREATE).status_code == 403


def test_a_release_manager_writes_an_article_and_a_service_owner_improves_it(client, world):
    client.force_login(world.people.rm)
    assert client.get(CREATE).status_code == 200
    data = {
        "title": "Cache warm-up",
        "kind": KnowledgeKind.RUNBOOK,
        "service": world.service.pk,
        "configuration_items": [world.ci.pk],
        "body": "1. Run the warm-up job.",
    }
    answer = client.post(CREATE, data)
    article = KnowledgeArticle.objects.get(title="Cache warm-up")
    assert answer.status_code == 302
    assert answer.url == article.get_absolute_url()
    assert (article.author, list(article.configuration_items.all())) == (world.people.rm, [world.ci])
    client.force_login(world.people.so)
    update = reverse("releases:knowledge_update", args=[article.pk])
    assert client.post(update, {**data, "body": "1. Run the warm-up job.\n2. Watch the hit rate."}).status_code == 302
    assert "Watch the hit rate" in KnowledgeArticle.objects.get(pk=article.pk).body


def test_bad_input_is_shown_on_the_field_and_nothing_typed_is_lost(client, world):
    client.force_login(world.people.so)
    answer = client.post(CREATE, {"title": "", "kind": KnowledgeKind.RUNBOOK, "body": "Typed, not to be lost."})
    assert answer.status_code == 422
    assert set(answer.context["form"].errors) == {"title", "service"}
    assert "Typed, not to be lost." in answer.content.decode()
    assert not KnowledgeArticle.objects.exists()


def test_search_makes_as_many_queries_for_ten_times_the_articles(client, world):
    def grow(start, count):
        for n in range(start, start + count):
            article = _article(world, f"Runbook {n} cache", f"Warm the cache, step {n}.")
            article.configuration_items.set([world.ci])

    def queries(**query) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(SEARCH, query).status_code == 200
        return len(captured)

    client.force_login(world.people.viewer)
    grow(0, 2)
    few, few_found = queries(), queries(q="cache")
    grow(2, 16)
    assert (queries(), queries(q="cache")) == (few, few_found)
