from collections.abc import Iterator
from dataclasses import dataclass

from django.apps import apps
from django.db import models
from django.db.models import F, Min, Q, QuerySet

from rdm_site.models import ApiToken, AuditEvent, CalendarFeed, Notification


def audit_events_for(target: models.Model) -> QuerySet[AuditEvent]:
    """The history of one record, oldest first (it outlives the record: rows hold no foreign key)."""
    object_type, object_id = AuditEvent.reference_to(target)
    return AuditEvent.objects.filter(object_type=object_type, object_id=object_id).order_by("id")


def audit_events_in_id_order(events: QuerySet[AuditEvent] | None = None, *, chunk: int = 2000) -> Iterator[AuditEvent]:
    """Events oldest first, fetched ``chunk`` at a time by id.

    Memory stays flat however long the trail, and unlike ``QuerySet.iterator()`` this does not
    rely on server-side cursors, which a transaction-pooling proxy (PgBouncer) forbids.
    """
    events = AuditEvent.objects.all() if events is None else events
    last_id = 0
    if events.query.where:
        # start at the filter's first event, found through the filter's own index: with ``min(id)`` PostgreSQL
        # would read the id index from the start until a match, most of the trail for a recent period
        first = events.order_by().aggregate(first=Min(F("id") + 0))["first"]
        if first is None:
            return
        last_id = first - 1
    while rows := list(events.filter(id__gt=last_id).order_by("id")[:chunk]):
        yield from rows
        last_id = rows[-1].id


def notifications_for(user) -> QuerySet[Notification]:
    """A user's notifications, unread first, newest first."""
    return Notification.objects.filter(recipient=user).order_by(
        models.F("read_at").desc(nulls_first=True), "-created_at", "-id"
    )


def notifications_unread_count(user) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def notifications_about(target: models.Model, *, kind: str) -> QuerySet[Notification]:
    """What was sent about a record, of one kind (e.g. the stakeholder notices of a release)."""
    object_type, object_id = AuditEvent.reference_to(target)
    return Notification.objects.filter(object_type=object_type, object_id=object_id, kind=kind)


@dataclass(frozen=True)
class SearchGroup:
    label: str
    records: list


# (label, model label, view permission, fields searched, related rows a result's name reads); numbers and names
# match by substring.
_SEARCHED = (
    ("Releases", "releases.Release", "releases.view_release", ("name", "version"), ()),
    ("Changes", "releases.ChangeRecord", "releases.view_changerecord", ("number", "title"), ()),
    ("Services", "cmdb.Service", "cmdb.view_service", ("name", "slug"), ()),
    ("Configuration items", "cmdb.ConfigurationItem", "cmdb.view_configurationitem", ("name",), ("environment",)),
)


def search(user, query: str, *, limit: int = 20) -> list[SearchGroup]:
    """Records of each kind ``user`` may view whose name or number contains ``query``."""
    groups = []
    for label, model_label, permission, fields, related in _SEARCHED:
        if not user.has_perm(permission):
            continue
        matches = Q()
        for field in fields:
            matches |= Q(**{f"{field}__icontains": query})
        found = apps.get_model(model_label).objects.filter(matches).select_related(*related)
        records = list(found.order_by("-pk")[:limit])
        groups.append(SearchGroup(label, records))
    return groups


def tokens_of(user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(owner=user).order_by("revoked_at", "-created_at")


def calendar_feed_of(user) -> CalendarFeed | None:
    """The user's calendar feed that answers requests, if they have one."""
    return CalendarFeed.objects.filter(owner=user, revoked_at=None).first()
