"""Pagination for lists that grow without end (releases, changes, deployments, CIs, the audit trail), one set of
rules for every browser list:

- Counts past ``ESTIMATE_ABOVE`` rows are PostgreSQL's estimate (the planner's row count for the filtered query, from
  ``EXPLAIN``, no scan) and read "about N"; smaller ones are exact. A page that turns out to be the last one makes
  the count exact again.
- The first ``KEYSET_FROM_PAGE`` pages have numbers (offsets stay short); from there on "Older" and "Newer" follow a
  cursor, the ordering's values of the last (or first) row shown, so a page deep in a list costs what the first
  one does. Cursors need an ordering of non-null model fields (the primary key is added as the tie-breaker); a
  list sorted otherwise keeps page numbers.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date, datetime

from django.core.exceptions import EmptyResultSet, FieldDoesNotExist, ValidationError
from django.core.paginator import Page, PageNotAnInteger, Paginator
from django.db import connections
from django.db.models import Q, QuerySet
from django.utils.functional import cached_property

ESTIMATE_ABOVE = 10_000
KEYSET_FROM_PAGE = 20


def estimated_count(queryset: QuerySet) -> int:
    """How many rows PostgreSQL's planner expects ``queryset`` to return, without running it."""
    try:
        sql, params = queryset.order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:  # a filter no row can match (an empty choice of ids)
        return 0
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def bounded_counts(querysets: list[QuerySet]) -> list[tuple[int, bool]]:
    """How many rows each queryset holds, and whether that is an estimate: exact up to ``ESTIMATE_ABOVE`` (reading
    at most one row past it), PostgreSQL's estimate beyond, as the lists count. One query for them all (of one
    database), and one planner's estimate for each past the bound."""
    parts, params = [], []
    for queryset in querysets:
        try:
            sql, part_params = queryset.order_by().values("pk")[: ESTIMATE_ABOVE + 1].query.sql_with_params()
        except EmptyResultSet:  # a filter no row can match
            parts.append("0")
            continue
        parts.append(f"(SELECT count(*) FROM ({sql}) AS bounded)")
        params.extend(part_params)
    with connections[querysets[0].db].cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(parts)}", params)
        exact = cursor.fetchone()
    return [
        (count, False) if count <= ESTIMATE_ABOVE else (max(estimated_count(queryset), count), True)
        for queryset, count in zip(querysets, exact, strict=True)
    ]


@dataclass(frozen=True)
class Key:
    """One column of a keyset ordering: the lookup path, its model field, and its direction."""

    path: str
    field: object
    descending: bool

    @property
    def order_by(self) -> str:
        return f"-{self.path}" if self.descending else self.path


def keyset_keys(queryset: QuerySet) -> list[Key] | None:
    """The queryset's ordering as keys a cursor can continue from, the primary key last; None when the ordering
    cannot be continued that way (an expression, an annotation, a relation, a column that may be null)."""
    model = queryset.model
    ordering = list(queryset.query.order_by) or (list(model._meta.ordering) if queryset.query.default_ordering else [])
    keys = []
    for entry in ordering:
        if not isinstance(entry, str) or entry == "?":
            return None
        descending, path = entry.startswith("-"), entry.lstrip("-")
        field = _field_at(model, path)
        if field is None:
            return None
        keys.append(Key(path, field, descending))
    if not any(key.field is model._meta.pk for key in keys):
        keys.append(Key("pk", model._meta.pk, keys[-1].descending if keys else True))
    return keys


def _field_at(model, path: str):
    """The non-null concrete field ``path`` (``environment__promotion_order``) ends on, through non-null foreign
    keys; None otherwise."""
    parts = path.split("__")
    for number, part in enumerate(parts):
        try:
            field = model._meta.pk if part == "pk" else model._meta.get_field(part)
        except FieldDoesNotExist:
            return None
        if not getattr(field, "concrete", False) or field.null or field.many_to_many or field.one_to_many:
            return None
        last = number == len(parts) - 1
        if field.is_relation:
            if last:
                return None  # ordering by a relation orders by the related model's ordering
            model = field.related_model
        elif not last:
            return None
    return field


def encode_cursor(values: list) -> str:
    text = json.dumps([value.isoformat() if isinstance(value, date | datetime) else value for value in values])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, keys: list[Key]) -> list:
    """The ordering values a cursor holds, each checked by its field; PageNotAnInteger when it is not one of ours."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != len(keys):
            raise ValueError("wrong length")
        return [key.field.to_python(value) for key, value in zip(keys, values, strict=True)]
    except (ValueError, TypeError, ValidationError, binascii.Error, UnicodeDecodeError) as error:
        raise PageNotAnInteger("That position in the list is not valid.") from error


def _beyond(keys: list[Key], values: list, *, backwards: bool = False) -> Q:
    """Rows after ``values`` in the keys' order (before them when ``backwards``). The first key's bound stands
    alone as well, so PostgreSQL starts its index scan there instead of filtering every row from the top."""
    key, value = keys[0], values[0]
    going_down = key.descending != backwards
    strictly = Q(**{f"{key.path}__{'lt' if going_down else 'gt'}": value})
    if len(keys) == 1:
        return strictly
    bound = Q(**{f"{key.path}__{'lte' if going_down else 'gte'}": value})
    return bound & (strictly | (Q(**{key.path: value}) & _beyond(keys[1:], values[1:], backwards=backwards)))


def _cursor_of(record, keys: list[Key]) -> str:
    values = []
    for key in keys:
        value = record
        for part in key.path.split("__"):
            value = getattr(value, part)
        values.append(value)
    return encode_cursor(values)


def cursor_at(queryset: QuerySet, row: int) -> str | None:
    """The "Older" cursor a list offers after its ``row``-th row (one-based); None past its end or without keys."""
    keys = keyset_keys(queryset)
    if keys is None:
        return None
    found = queryset.order_by(*(key.order_by for key in keys)).values_list(*(key.path for key in keys))[row - 1 : row]
    return encode_cursor(list(found[0])) if found else None


def cursor_arguments(request) -> dict[str, str]:
    """The list position a request asks for: ``after`` or ``before`` a cursor."""
    return {name: request.GET[name] for name in ("after", "before") if request.GET.get(name)}


def _queryset_of(object_list):
    """The queryset behind a list or a django-tables2 table's rows, or None."""
    if isinstance(object_list, QuerySet):
        return object_list
    inner = getattr(getattr(object_list, "data", None), "data", None)  # BoundRows -> TableQuerysetData -> QuerySet
    return inner if isinstance(inner, QuerySet) else None


class ListPage(Page):
    """A page of a list: numbered (an offset) or reached by a cursor (``number`` is None then). ``older_cursor``
    and ``newer_cursor`` are the links to offer instead of page numbers."""

    def __init__(self, object_list, number, paginator, *, more_older: bool, more_newer: bool, keys, records):
        super().__init__(object_list, number, paginator)
        self.more_older, self.more_newer = more_older, more_newer
        by_cursor = number is None or number >= KEYSET_FROM_PAGE
        self.older_cursor = _cursor_of(records[-1], keys) if keys and records and more_older and by_cursor else ""
        self.newer_cursor = _cursor_of(records[0], keys) if keys and records and more_newer and number is None else ""

    def has_next(self) -> bool:
        return self.more_older

    def has_previous(self) -> bool:
        return self.more_newer or self.number is None or self.number > 1

    def next_page_number(self) -> int:
        return self.number + 1

    def previous_page_number(self) -> int:
        return self.number - 1

    def start_index(self) -> int | None:
        return None if self.number is None else (self.number - 1) * self.paginator.per_page + 1

    def end_index(self) -> int | None:
        return None if self.number is None else (self.number - 1) * self.paginator.per_page + len(self)


class ListPaginator(Paginator):
    """A ``Paginator`` (for ``ListView`` and django-tables2 alike) that follows the rules above. ``after`` or
    ``before`` (from ``cursor_arguments``) asks for the page past a cursor instead of a page number."""

    def __init__(self, object_list, per_page, orphans=0, allow_empty_first_page=True, *, after="", before=""):
        super().__init__(object_list, per_page, orphans, allow_empty_first_page)
        self.after, self.before = after, before
        self.queryset = _queryset_of(object_list)
        self.keys = keyset_keys(self.queryset) if self.queryset is not None else None
        self._estimated = False
        if self.keys:
            self.queryset = self.queryset.order_by(*(key.order_by for key in self.keys))

    @cached_property
    def count(self) -> int:
        if self.queryset is None:
            return super().count
        estimate = estimated_count(self.queryset)
        if estimate > ESTIMATE_ABOVE:
            self._estimated = True
            return estimate
        return self.queryset.order_by().values("pk").count()  # without the annotations the page shows

    @property
    def count_is_estimate(self) -> bool:
        return self.count is not None and self._estimated

    def validate_number(self, number) -> int:
        try:
            number = int(number)
        except (TypeError, ValueError) as error:
            raise PageNotAnInteger("That page number is not an integer.") from error
        return max(number, 1)  # a page past the end is an empty page, not an error: counts may be estimates

    def page(self, number) -> ListPage:
        if self.keys and (self.after or self.before):
            return self._cursor_page()
        number = self.validate_number(number)
        start = (number - 1) * self.per_page
        if self.queryset is None:
            records = list(self.object_list[start : start + self.per_page + 1])
        else:
            records = self._fetch(self.queryset[start : start + self.per_page + 1])
        more_older = len(records) > self.per_page
        records = records[: self.per_page]
        if not more_older and (records or number == 1) and self.count_is_estimate:
            self.count, self._estimated = start + len(records), False  # the last page: the count is exact now
        return ListPage(
            self._wrap(records), number, self, more_older=more_older, more_newer=number > 1, keys=self.keys,
            records=records,
        )  # fmt: skip

    def _cursor_page(self) -> ListPage:
        backwards = not self.after
        try:
            values = decode_cursor(self.after or self.before, self.keys)
        except PageNotAnInteger:
            self.after = self.before = ""  # asked again (django-tables2 asks for page 1), the list starts at the top
            raise
        rows = self.queryset.filter(_beyond(self.keys, values, backwards=backwards))
        if backwards:
            rows = rows.reverse()
        records = self._fetch(rows[: self.per_page + 1])
        more = len(records) > self.per_page
        records = records[: self.per_page]
        if backwards:
            records.reverse()
        return ListPage(
            self._wrap(records), None, self, more_older=more or backwards, more_newer=not backwards or more,
            keys=self.keys, records=records,
        )  # fmt: skip

    def _fetch(self, rows: QuerySet) -> list:
        """A page's records: their ids in the list's order first, then the rows with what they are annotated with
        for those ids alone (PostgreSQL computes the annotations of every row it sorts, before the limit)."""
        ids = list(rows.values_list("pk", flat=True))
        found = self.queryset.order_by().in_bulk(ids)
        return [found[pk] for pk in ids if pk in found]

    def _wrap(self, records: list):
        """Records as the list iterates them: a django-tables2 table's rows, or the records themselves."""
        table = getattr(self.object_list, "table", None)
        if table is None:
            return records
        return type(self.object_list)(records, table=table)


class ListPaginationMixin:
    """For a ``ListView``: pages by ``ListPaginator``, cursors taken from the request."""

    paginator_class = ListPaginator

    def get_paginator(self, queryset, per_page, orphans=0, allow_empty_first_page=True, **kwargs):
        return super().get_paginator(
            queryset, per_page, orphans, allow_empty_first_page, **cursor_arguments(self.request), **kwargs
        )
