"""Reading the knowledge base: PostgreSQL full-text search, ranked, with highlights. Nothing here writes.

Articles carry a ``search_vector`` that PostgreSQL computes from the title (weight A) and the body (weight B)
as a generated column with a GIN index (``KnowledgeArticle``), so a search reads the index and a title match
ranks above a body match. Queries are read as people type them into a search box (``websearch``: words,
"quoted phrases", ``or``, ``-excluded``).
"""

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank
from django.db.models import F, QuerySet
from django.utils.html import escape

from releases.models import KnowledgeArticle
from releases.models.release import SEARCH_CONFIG

# Highlights are marked with control characters PostgreSQL leaves alone, then the text is escaped and the
# marks become <mark> tags: an article's text never reaches a page as HTML.
_START, _STOP = "\x02", "\x03"
_MARKS = {"start_sel": _START, "stop_sel": _STOP}
# The body's best fragments; the title whole.
BODY_HEADLINE = {**_MARKS, "max_words": 35, "min_words": 15, "max_fragments": 3}
TITLE_HEADLINE = {**_MARKS, "highlight_all": True}


def knowledge_list() -> QuerySet:
    return KnowledgeArticle.objects.select_related(
        "service", "release", "package", "review", "author"
    ).prefetch_related("configuration_items")


def knowledge_search(query: str, service=None) -> QuerySet:
    """Articles matching ``query`` (of ``service`` when given), best first, each annotated with its ``rank``
    and the ``title_headline`` and ``body_headline`` (see ``highlighted``). An empty query finds everything,
    newest first.
    """
    articles = knowledge_list()
    if service is not None:
        articles = articles.filter(service=service)
    query = (query or "").strip()
    if not query:
        return articles
    search = SearchQuery(query, search_type="websearch", config=SEARCH_CONFIG)
    return (
        articles.filter(search_vector=search)
        .annotate(
            rank=SearchRank(F("search_vector"), search),
            title_headline=SearchHeadline("title", search, config=SEARCH_CONFIG, **TITLE_HEADLINE),
            body_headline=SearchHeadline("body", search, config=SEARCH_CONFIG, **BODY_HEADLINE),
        )
        .order_by("-rank", "-updated", "-id")
    )


def highlighted(headline: str | None) -> str:
    """A headline as safe HTML: the text escaped, the matched words in ``<mark>``."""
    if not headline:
        return ""
    return escape(headline).replace(_START, "<mark>").replace(_STOP, "</mark>")
