"""The site's FilterSets, and what every list's FilterSet shares: filters that narrow a list without DISTINCT.

django-filter makes a choice among several values DISTINCT (meant for to-many relations). PostgreSQL must then sort
every matching row before it can take a page of them, where it would otherwise walk the list's ordering index and
stop at the page's end: 92,000 live CIs (123 ms -> 9 ms) or the changes of one service (130 ms -> 10 ms) on the
generated year (docs/performance.md).
"""

import django_filters
from django.db import models
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from django_filters.widgets import DateRangeWidget

from rdm_site.domain import BIGINT_MAX
from rdm_site.models import AuditEvent, WebhookDelivery


class ValuesFilter(django_filters.MultipleChoiceFilter):
    """Rows whose own column holds any of the chosen values (``?state=approved&state=ready``); a row's column cannot
    repeat it, so no DISTINCT."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, distinct=False, **kwargs)


class RelatedFilter(django_filters.ModelMultipleChoiceFilter):
    """Rows related to any of the chosen records through a to-many relation, as ``pk IN (…)`` (a semi-join, which
    repeats no row) instead of a join made DISTINCT."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, distinct=False, **kwargs)

    def filter(self, qs, value):
        everything = qs.model._base_manager.all()
        matching = super().filter(everything, value)
        return qs if matching is everything else qs.filter(pk__in=matching.values("pk"))


class RdmFilterSet(django_filters.FilterSet):
    """A FilterSet whose generated filters on many-to-many fields are ``RelatedFilter``s."""

    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        models.ManyToManyField: {**FILTER_FOR_DBFIELD_DEFAULTS[models.ManyToManyField], "filter_class": RelatedFilter},
    }


class AuditEventFilterSet(RdmFilterSet):
    """The audit trail's filters, shared by the list page, the CSV export and the API."""

    object_type = django_filters.CharFilter(label="Object type", max_length=100)
    object_id = django_filters.CharFilter(label="Object id", max_length=64)
    action = django_filters.CharFilter(label="Action", max_length=100)
    actor_id = django_filters.NumberFilter(label="Actor (user id)", min_value=1, max_value=BIGINT_MAX)
    actor_label = django_filters.CharFilter(label="Actor", lookup_expr="icontains", max_length=200)
    occurred = django_filters.DateFromToRangeFilter(
        field_name="occurred_at",
        label="Occurred between (dates, inclusive)",
        widget=DateRangeWidget(attrs={"type": "date"}),
    )

    class Meta:
        model = AuditEvent
        fields = ["object_type", "object_id", "action", "actor_id", "actor_label", "occurred"]


class WebhookDeliveryFilterSet(RdmFilterSet):
    class Meta:
        model = WebhookDelivery
        fields = ["webhook", "state", "event_type"]
