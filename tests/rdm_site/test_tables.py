"""Table bodies written in Python (``rdm_site.tables``): the same ``<tbody>`` as django-tables2's template, rows,
links, badges, many-to-many cells, defaults, escaping and the empty text alike; moments formatted as django-tables2's
own column formats them; render methods called with the arguments they name."""

import re
from datetime import UTC, datetime

import django_tables2 as tables
import pytest
from django.test import RequestFactory
from django.utils import timezone

from rdm_site.tables import DateTimeColumn, call_with_known_signature
from releases.models import ChangeRecord, Release
from releases.selectors import changes_table, releases_table
from releases.tables import ChangeTable, ReleaseTable
from tests.releases.factories import ChangeFactory, ReleaseFactory, ServiceFactory

pytestmark = pytest.mark.django_db

TBODY = re.compile(r"<tbody.*?</tbody>", re.DOTALL)


def _bodies(table_class, queryset) -> tuple[str, str]:
    """The table's ``<tbody>`` through django-tables2's template, then through ours (whitespace between tags
    aside)."""
    request = RequestFactory().get("/")
    bodies = []
    for template in ("django_tables2/bootstrap5-responsive.html", "rdm_site/inc/table.html"):
        html = table_class(queryset, template_name=template).as_html(request)
        bodies.append(re.sub(r">\s+<", "><", TBODY.search(html).group(0)))
    return bodies[0], bodies[1]


def test_a_change_list_body_reads_as_django_tables2_writes_it():
    shop, search = ServiceFactory(name="Shop & <Checkout>"), ServiceFactory(name="Search")
    ChangeFactory(title="<b>Fix</b> & go", services=[shop, search])
    ChangeFactory(title="Overlapping", services=[search])

    expected, written = _bodies(ChangeTable, changes_table())

    assert written == expected
    assert "&lt;b&gt;Fix&lt;/b&gt; &amp; go" in written
    assert "Conflict" in written


def test_a_release_list_body_reads_as_django_tables2_writes_it():
    ReleaseFactory(name="Spring <sale>", services=[ServiceFactory(), ServiceFactory()])
    ReleaseFactory(services=[])

    expected, written = _bodies(ReleaseTable, releases_table())

    assert written == expected
    assert "Spring &lt;sale&gt;" in written


@pytest.mark.parametrize(("table_class", "model"), [(ChangeTable, ChangeRecord), (ReleaseTable, Release)])
def test_an_empty_list_says_so_as_django_tables2_does(table_class, model):
    expected, written = _bodies(table_class, model.objects.none())

    assert written == expected
    assert "Nothing matches." in written


def test_a_moment_reads_as_django_tables2s_column_formats_it_in_the_current_time_zone():
    class Moments(tables.Table):
        ours = DateTimeColumn(accessor="at")
        theirs = tables.DateTimeColumn(format="Y-m-d H:i", accessor="at")

    row = Moments([{"at": datetime(2026, 12, 3, 23, 40, tzinfo=UTC)}]).rows[0]

    with timezone.override("Asia/Kolkata"):
        assert row.get_cell("ours") == row.get_cell("theirs") == "2026-12-04 05:10"


def test_a_render_method_gets_the_arguments_it_names_and_none_when_one_is_missing():
    class Renders:
        def value_only(self, value):
            return f"value {value}"

        def anything(self, **given):
            return sorted(given)

    renders, given = Renders(), {"value": 1, "record": "r"}

    assert call_with_known_signature(renders.value_only, given) == "value 1"
    assert call_with_known_signature(renders.anything, given) == ["record", "value"]
    assert call_with_known_signature(lambda record, table: record, given) is None
    assert call_with_known_signature(lambda record: record, given) == "r"
