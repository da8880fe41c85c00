import django_filters
from django_filters.widgets import DateRangeWidget

from rdm_site.models import AuditEvent


class AuditEventFilterSet(django_filters.FilterSet):
    """The audit trail's filters, shared by the list page and the CSV export."""

    object_type = django_filters.CharFilter(label="Object type", max_length=100)
    action = django_filters.CharFilter(label="Action", max_length=100)
    occurred = django_filters.DateFromToRangeFilter(
        field_name="occurred_at",
        label="Occurred between (dates, inclusive)",
        widget=DateRangeWidget(attrs={"type": "date"}),
    )

    class Meta:
        model = AuditEvent
        fields = ["object_type", "action", "occurred"]
