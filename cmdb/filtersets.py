"""The CMDB's list filters, shared by the API and the browser lists."""

import django_filters
from django.db.models import Q
from django_filters.widgets import DateRangeWidget

from cmdb.choices import CiState, CiType, Criticality, EnvironmentTier, RelationshipKind
from cmdb.models import Baseline, ConfigurationItem, Environment, Relationship, Service
from rdm_site.domain import BIGINT_MAX
from rdm_site.filtersets import RdmFilterSet, ValuesFilter


class EnvironmentFilterSet(RdmFilterSet):
    tier = ValuesFilter(choices=EnvironmentTier.choices)

    class Meta:
        model = Environment
        fields = {"name": ["exact", "icontains"], "slug": ["exact"]}


class ServiceFilterSet(RdmFilterSet):
    criticality = ValuesFilter(choices=Criticality.choices)
    owner = django_filters.CharFilter(field_name="owner__username", label="Owner (username)", max_length=150)
    stakeholder = django_filters.CharFilter(
        field_name="stakeholders__username", label="Stakeholder (username)", max_length=150, distinct=True
    )

    class Meta:
        model = Service
        fields = {"name": ["exact", "icontains"], "slug": ["exact"]}


class ConfigurationItemFilterSet(RdmFilterSet):
    state = ValuesFilter(choices=CiState.choices)
    ci_type = ValuesFilter(choices=CiType.choices)
    environment_slug = django_filters.CharFilter(field_name="environment__slug", label="Environment (slug)")
    service_slug = django_filters.CharFilter(field_name="service__slug", label="Service (slug)")
    owner = django_filters.CharFilter(field_name="owner__username", label="Technical owner (username)", max_length=150)

    class Meta:
        model = ConfigurationItem
        fields = {
            "name": ["exact", "icontains"],
            "version": ["exact"],
            "environment": ["exact"],
            "service": ["exact", "isnull"],
        }


class RelationshipFilterSet(RdmFilterSet):
    kind = ValuesFilter(choices=RelationshipKind.choices)
    ci = django_filters.NumberFilter(method="filter_ci", label="Either end (CI id)", min_value=1, max_value=BIGINT_MAX)

    class Meta:
        model = Relationship
        fields = ["source", "target", "kind", "ci"]

    def filter_ci(self, queryset, name, value):
        return queryset.filter(Q(source_id=value) | Q(target_id=value))


class BaselineFilterSet(RdmFilterSet):
    taken = django_filters.DateFromToRangeFilter(
        field_name="taken_at", label="Taken between (dates, inclusive)", widget=DateRangeWidget(attrs={"type": "date"})
    )
    taken_by = django_filters.CharFilter(field_name="taken_by__username", label="Taken by (username)", max_length=150)

    class Meta:
        model = Baseline
        fields = {"name": ["exact", "icontains"]}
