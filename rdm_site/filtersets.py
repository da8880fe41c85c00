import django_filters
from django_filters.widgets import DateRangeWidget

from rdm_site.models import AuditEvent, WebhookDelivery


class AuditEventFilterSet(django_filters.FilterSet):
    """The audit trail's filters, shared by the list page, the CSV export and the API."""

    object_type = django_filters.CharFilter(label="Object type", max_length=100)
    object_id = django_filters.CharFilter(label="Object id", max_length=64)
    action = django_filters.CharFilter(label="Action", max_length=100)
    actor_id = django_filters.NumberFilter(label="Actor (user id)", min_value=1, max_value=2**63 - 1)
    actor_label = django_filters.CharFilter(label="Actor", lookup_expr="icontains", max_length=200)
    occurred = django_filters.DateFromToRangeFilter(
        field_name="occurred_at",
        label="Occurred between (dates, inclusive)",
        widget=DateRangeWidget(attrs={"type": "date"}),
    )

    class Meta:
        model = AuditEvent
        fields = ["object_type", "object_id", "action", "actor_id", "actor_label", "occurred"]


class WebhookDeliveryFilterSet(django_filters.FilterSet):
    class Meta:
        model = WebhookDelivery
        fields = ["webhook", "state", "event_type"]
