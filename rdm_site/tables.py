"""Columns every list page shares (django-tables2), and the table body written in Python.

django-tables2 renders each cell through its template (a loop, an ``attrs`` lookup and a filter per cell) and reads
the signature of the cell's render method for every cell: for a page of 25 rows of 8 columns that was a third of a
list page's time. ``table_body_html`` writes the same ``<tbody>`` in Python, and ``RdmTable``'s rows read each render
method's signature once.
"""

from functools import lru_cache

import django_tables2 as tables
from django.template.base import render_value_in_context
from django.utils import timezone
from django.utils.formats import date_format, localize
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe
from django_tables2.rows import BoundRow, BoundRows
from django_tables2.utils import AttributeDict, signature

from rdm_site.badges import field_badge


class BadgeColumn(tables.Column):
    """A choice field drawn as its coloured, labelled badge."""

    def render(self, value, record):
        return field_badge(record, self.accessor)


class DateTimeColumn(tables.Column):
    """A moment in the current time zone, as "2026-12-03 14:05" (django-tables2's own compiles a template for every
    cell)."""

    def render(self, value):
        return date_format(timezone.localtime(value) if timezone.is_aware(value) else value, "Y-m-d H:i")


@lru_cache(maxsize=1024)
def _parameters(function) -> tuple[tuple[str, ...], str | None]:
    return signature(function)


def call_with_known_signature(method, arguments: dict):
    """django-tables2's ``call_with_appropriate``: ``method`` called with the ``arguments`` it names (None when it
    names one not given), its signature read once per function rather than once per cell."""
    names, takes_any = _parameters(getattr(method, "__func__", method))
    if takes_any:
        return method(**arguments)
    names = names[1:] if hasattr(method, "__func__") else names  # a bound method's ``self``
    if any(name not in arguments for name in names):
        return None
    return method(**{name: arguments[name] for name in names})


class RdmBoundRow(BoundRow):
    def _call_render(self, bound_column, value=None):
        arguments = self._optional_cell_arguments(bound_column, value)
        content = call_with_known_signature(bound_column.render, arguments)
        return bound_column.link(content, **arguments) if bound_column.link else content


class RdmBoundRows(BoundRows):
    """A table's rows as ``RdmBoundRow``s (pinned rows as django-tables2 makes them)."""

    def __iter__(self):
        yield from self.generator_pinned_row(self.pinned_data.get("top"))
        for record in self.data:
            yield RdmBoundRow(record, table=self.table)
        yield from self.generator_pinned_row(self.pinned_data.get("bottom"))

    def __getitem__(self, key):
        if isinstance(key, slice):
            return type(self)(data=self.data[key], table=self.table, pinned_data=self.pinned_data)
        return RdmBoundRow(record=self.data[key], table=self.table)


class RdmTable(tables.Table):
    """Tabler's table look; every list sorts by its columns and paginates."""

    class Meta:
        attrs = {"class": "table table-vcenter card-table table-striped"}
        empty_text = "Nothing matches."

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rows = RdmBoundRows(data=self.data, table=self, pinned_data=self.pinned_data)


def _cell_html(column, cell, context) -> str:
    """A cell's content as the template's ``{{ cell }}`` (or ``cell|localize`` / ``cell|unlocalize``) writes it."""
    if column.localize is None:
        return render_value_in_context(cell, context)
    return conditional_escape(str(localize(cell, use_l10n=bool(column.localize))))


def table_body_html(table, context) -> str:
    """The ``<tbody>`` of django-tables2's ``bootstrap5.html``, the same markup written in Python."""
    body_attrs = table.attrs.get("tbody")
    parts = [f"<tbody {body_attrs.as_html() if isinstance(body_attrs, AttributeDict) else ''}>"]
    empty = True
    for row in table.paginated_rows:
        empty = False
        parts.append(f"<tr {row.attrs.as_html()}>")
        for column, cell in row.items():
            parts.append(f"<td {column.attrs['td'].as_html()}>{_cell_html(column, cell, context)}</td>")
        parts.append("</tr>")
    if empty and table.empty_text:
        parts.append(f'<tr><td colspan="{len(table.columns)}">{conditional_escape(table.empty_text)}</td></tr>')
    parts.append("</tbody>")
    return mark_safe("".join(parts))  # noqa: S308 - attributes come escaped from AttributeDict, cells are escaped
