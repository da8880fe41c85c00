"""The knowledge base: articles attached to services, packages and CIs, found by full-text search, ranked, with
highlights that are safe to show.
"""

import pytest

from releases import services
from releases.choices import KnowledgeKind
from releases.knowledge import highlighted, knowledge_search
from releases.models import KnowledgeArticle
from tests.releases.conftest import validated_package

pytestmark = pytest.mark.django_db


def article(world, title: str, body: str, service=None, **links) -> KnowledgeArticle:
    return services.knowledge_article_create(
        actor=world.people.rm,
        title=title,
        body=body,
        kind=KnowledgeKind.RUNBOOK,
        service=service or world.service,
        **links,
    )


def test_a_title_match_ranks_above_a_body_match_and_highlights_hold_the_term(world):
    # given one article about failover in its title, one mentioning it in its body, one unrelated
    in_body = article(world, "Cache warm-up", "Run it before a failover, or the replica starts cold.")
    in_title = article(world, "Database failover", "Promote the replica and repoint the application.")
    article(world, "Certificates", "Renew them a month ahead.")
    # when searching as people type ("failovers" stems to the same word)
    found = list(knowledge_search("failovers"))
    # then both are found, the title match first, and each highlight marks the term
    assert found == [in_title, in_body]
    assert found[0].rank > found[1].rank
    assert highlighted(found[0].title_headline) == "Database <mark>failover</mark>"
    assert "<mark>failover</mark>" in highlighted(found[1].body_headline)


def test_search_reads_websearch_syntax_and_narrows_to_a_service(world):
    article(world, "Database failover", "Promote the replica.")
    article(world, "Database backup", "Nightly, verified weekly.")
    article(world, "Search reindex", "Rebuild the database index.", service=world.other_service)
    assert [a.title for a in knowledge_search('database -failover "verified weekly"')] == ["Database backup"]
    assert [a.title for a in knowledge_search("database", service=world.other_service)] == ["Search reindex"]
    assert knowledge_search("").count() == 3


def test_highlights_are_escaped_so_an_article_never_reaches_a_page_as_html(world):
    article(world, "Rollback <script>alert(1)</script>", "Run <b>rollback</b> steps.")
    found = knowledge_search("rollback").get()
    assert "<script>" not in highlighted(found.title_headline)
    assert "&lt;script&gt;" in highlighted(found.title_headline)
    body = highlighted(found.body_headline)
    assert "<mark>rollback</mark>" in body
    assert "<b>" not in body


def test_runbooks_attach_to_a_package_and_cis_and_the_index_follows_edits(world):
    package = validated_package(world)
    runbook = article(
        world, "Deploy checklist", "Drain the node first.", package=package, configuration_items=[world.ci]
    )
    assert runbook.package == package
    assert list(runbook.configuration_items.all()) == [world.ci]
    services.knowledge_article_update(article=runbook, actor=world.people.rm, data={"body": "Quiesce the queue first."})
    assert list(knowledge_search("quiesce")) == [runbook]
    assert not knowledge_search("drain").exists()
