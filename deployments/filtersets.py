"""One FilterSet per model of the rollout engine, shared by the API lists and the browser lists."""

from datetime import UTC

import django_filters
from django import forms
from django.db.models import Q
from django_filters.fields import IsoDateTimeRangeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from cmdb.models import Service
from deployments.choices import (
    CORRELATION_SHORT_LABELS,
    INCIDENT_OPEN_STATES,
    DeploymentModel,
    DeploymentState,
    ElsState,
    IncidentSeverity,
    IncidentState,
    LogLevel,
    StepKind,
    StepState,
)
from deployments.models import (
    Deployment,
    DeploymentProcess,
    EarlyLifeSupport,
    Incident,
    Step,
    StepLog,
    StepTemplate,
    Target,
    Variable,
)
from rdm_site.domain import BIGINT_MAX
from rdm_site.filtersets import RdmFilterSet, ValuesFilter

# Ids in filters: out-of-range numbers are bad input, not a database error.
_ID = {"min_value": 1, "max_value": BIGINT_MAX}


class UtcIsoDateTimeRangeField(IsoDateTimeRangeField):
    """ISO 8601 times compared in UTC: ISO 8601 allows offsets the database refuses (beyond ±15:59)."""

    def compress(self, data_list):
        value = super().compress(data_list)
        if value is None:
            return None
        try:
            return slice(*(moment and moment.astimezone(UTC) for moment in (value.start, value.stop)))
        except OverflowError:
            raise forms.ValidationError("Give times between the years 1 and 9999 in UTC.") from None


class TimeRangeFilter(django_filters.IsoDateTimeFromToRangeFilter):
    """``<name>_after`` and ``<name>_before``, ISO 8601 times with any offset."""

    field_class = UtcIsoDateTimeRangeField


class DeploymentProcessFilterSet(RdmFilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", max_length=100)

    class Meta:
        model = DeploymentProcess
        fields = ["service", "name"]


class StepTemplateFilterSet(RdmFilterSet):
    class Meta:
        model = StepTemplate
        fields = ["process", "executor", "run_once"]


class VariableFilterSet(RdmFilterSet):
    name = django_filters.CharFilter(max_length=100)

    class Meta:
        model = Variable
        fields = ["service", "environment", "name", "is_secret"]


class TargetFilterSet(RdmFilterSet):
    environment = django_filters.NumberFilter(field_name="ci__environment", **_ID)
    service = django_filters.NumberFilter(field_name="ci__service", **_ID)
    ring = django_filters.CharFilter(max_length=50)
    group = django_filters.CharFilter(max_length=50)

    class Meta:
        model = Target
        fields = ["ci", "environment", "service", "ring", "group", "enabled"]


class DeploymentFilterSet(RdmFilterSet):
    state = ValuesFilter(choices=DeploymentState.choices)
    model = django_filters.ChoiceFilter(choices=DeploymentModel.choices)
    created = TimeRangeFilter()
    finished = TimeRangeFilter(field_name="finished_at")
    # a process is named after its service: read together, not one query per choice
    process = django_filters.ModelChoiceFilter(queryset=DeploymentProcess.objects.select_related("service"))

    class Meta:
        model = Deployment
        fields = ["service", "environment", "process", "package", "change", "state", "model", "continuous"]


class StepFilterSet(RdmFilterSet):
    state = ValuesFilter(choices=StepState.choices)
    kind = django_filters.ChoiceFilter(choices=StepKind.choices)
    executor = django_filters.CharFilter(max_length=100)
    waiting = django_filters.BooleanFilter(
        method="_waiting", label="Manual interventions waiting for an answer (true) or not (false)"
    )

    class Meta:
        model = Step
        fields = ["deployment", "wave", "target", "state", "kind", "executor"]

    def _waiting(self, queryset, name, value):
        waiting = {"executor": "manual_intervention", "state": StepState.RUNNING, "manual_answer": ""}
        return queryset.filter(**waiting) if value else queryset.exclude(**waiting)


class StepLogFilterSet(RdmFilterSet):
    deployment = django_filters.NumberFilter(field_name="step__deployment", **_ID)
    level = django_filters.ChoiceFilter(choices=LogLevel.choices)

    class Meta:
        model = StepLog
        fields = ["step", "deployment", "level"]


class OpenWidget(forms.NullBooleanSelect):
    """Whether an incident is still open, in the incident list's words."""

    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.choices = [("unknown", "Any"), ("true", "Open or acknowledged"), ("false", "Resolved or closed")]


class IncidentFilterSet(RdmFilterSet):
    state = ValuesFilter(choices=IncidentState.choices)
    severity = ValuesFilter(choices=IncidentSeverity.choices)
    source = django_filters.CharFilter(max_length=50)
    external_id = django_filters.CharFilter(max_length=200)
    opened = TimeRangeFilter(field_name="opened_at")
    correlation = ValuesFilter(choices=list(CORRELATION_SHORT_LABELS.items()))
    service = extend_schema_field(OpenApiTypes.INT)(  # a service's id
        django_filters.ModelChoiceFilter(
            queryset=Service.objects.order_by("name"),
            method="_of_service",
            label="Service",
            help_text="Incidents of the service's deployments, CIs or releases.",
        )
    )
    open = django_filters.BooleanFilter(
        method="_open",
        label="Open",
        help_text="Open or acknowledged (true), resolved or closed (false).",
        widget=OpenWidget,
    )

    class Meta:
        model = Incident
        fields = [
            "state",
            "severity",
            "service",
            "correlation",
            "open",
            "deployment",
            "release",
            "ci",
            "source",
            "external_id",
            "opened",
        ]

    def _of_service(self, queryset, name, value):
        of_service = Q(deployment__service=value) | Q(ci__service=value) | Q(release__services=value)
        return queryset.filter(pk__in=Incident.objects.filter(of_service).values("pk"))

    def _open(self, queryset, name, value):
        return (
            queryset.filter(state__in=INCIDENT_OPEN_STATES)
            if value
            else queryset.exclude(state__in=INCIDENT_OPEN_STATES)
        )


class IncidentPageFilterSet(IncidentFilterSet):
    """The incident list page's form: the filters people pick from (the API takes every other one)."""

    SHOWN = ("state", "severity", "service", "correlation", "open")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters = {name: self.filters[name] for name in self.SHOWN}


class ElsFilterSet(RdmFilterSet):
    state = ValuesFilter(choices=ElsState.choices)
    service = django_filters.NumberFilter(field_name="deployment__service", **_ID)
    environment = django_filters.NumberFilter(field_name="deployment__environment", **_ID)
    staff = django_filters.NumberFilter(field_name="staff", **_ID)
    planned_end = TimeRangeFilter()
    exit_offered = django_filters.BooleanFilter(field_name="exit_offered_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = EarlyLifeSupport
        fields = ["state", "release", "deployment", "service", "environment", "staff", "planned_end", "exit_offered"]
