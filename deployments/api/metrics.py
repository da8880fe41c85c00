"""``GET /api/v1/metrics/dora/``: DORA's four keys with their levels and trend, the ITIL figures and the series
(``deployments.metrics``), as JSON or, with ``?format=csv``, as CSV. Anyone who may view deployments may read
them; the query is validated (400 with every problem).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date, timedelta

from django.utils import timezone
from django.utils.text import slugify
from drf_spectacular.helpers import forced_singular_serializer
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings

from cmdb.models import Environment, Service
from deployments.metrics import DoraReport, DoraScope, Key, Level, Period, dora_report
from deployments.models import Deployment
from rdm_site.api.viewsets import PROBLEMS

DEFAULT_DAYS = 90
LONGEST_DAYS = 5 * 366
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2999, 12, 31)
TRENDS = ["better", "worse", "same", ""]


class FromFieldMixin:
    """``from`` is a Python keyword: the field is declared as ``from_`` and named ``from`` in the API."""

    def get_fields(self):
        return {("from" if name == "from_" else name): field for name, field in super().get_fields().items()}


class DoraQuery(FromFieldMixin, serializers.Serializer):
    """What the figures are about: a service (or all), an environment (or every production one), whole days in
    UTC (``from`` and ``to`` both included; the last 90 days by default) and the series' buckets."""

    service = serializers.PrimaryKeyRelatedField(
        queryset=Service.objects.all(), required=False, allow_null=True, help_text="Empty: every service."
    )
    environment = serializers.PrimaryKeyRelatedField(
        queryset=Environment.objects.all(),
        required=False,
        allow_null=True,
        help_text="Empty: every production-tier environment.",
    )
    from_ = serializers.DateField(required=False, help_text="The first day (default: 89 days before `to`).")
    to = serializers.DateField(required=False, help_text="The last day, included (default: today).")
    period = serializers.ChoiceField(choices=Period.choices, default=Period.WEEK, help_text="The series' buckets.")
    format = serializers.ChoiceField(
        choices=["json", "csv"], required=False, help_text="`csv`: the figures as a CSV file."
    )

    def validate(self, data):
        last = data.get("to") or timezone.now().date()
        first = data.get("from") or last - timedelta(days=DEFAULT_DAYS - 1)
        problems = {}
        for name, day in (("from", first), ("to", last)):
            if not EARLIEST_DAY <= day <= LATEST_DAY:
                problems[name] = f"Give a day from {EARLIEST_DAY} to {LATEST_DAY}."
        if not problems and first > last:
            problems["from"] = "The first day comes on or before the last (`to`)."
        elif not problems and (last - first).days >= LONGEST_DAYS:
            problems["to"] = f"At most {LONGEST_DAYS} days at once."
        if problems:
            raise serializers.ValidationError(problems)
        service, environment = data.get("service"), data.get("environment")
        return {
            **data,
            "scope": DoraScope.of_days(
                first,
                last,
                service_id=service.pk if service else None,
                environment_id=environment.pk if environment else None,
            ),
        }


class DoraKeysSerializer(serializers.Serializer):
    deployments = serializers.IntegerField()
    failed_deployments = serializers.IntegerField()
    deployments_per_day = serializers.FloatField()
    change_failure_rate = serializers.FloatField(allow_null=True, help_text="From 0 to 1; null: no deployment.")
    changes_measured = serializers.IntegerField(help_text="Production successes whose lead time is measured.")
    lead_time_median_hours = serializers.FloatField(allow_null=True)
    lead_time_p90_hours = serializers.FloatField(allow_null=True)
    restorations = serializers.IntegerField(help_text="Incidents caused by a deployment and resolved.")
    time_to_restore_median_hours = serializers.FloatField(allow_null=True)


class KeyFigureSerializer(serializers.Serializer):
    key = serializers.ChoiceField(choices=Key.choices)
    label = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    level = serializers.ChoiceField(choices=Level.choices, allow_null=True, help_text="DORA's performance level.")
    previous = serializers.FloatField(allow_null=True, help_text="The value in the period of equal length before.")
    trend = serializers.ChoiceField(choices=TRENDS, help_text='Against the previous period; "" when either has none.')


class ItilFiguresSerializer(serializers.Serializer):
    releases_deployed = serializers.IntegerField()
    releases_succeeded = serializers.IntegerField()
    release_success_rate = serializers.FloatField(allow_null=True)
    changes_implemented = serializers.IntegerField()
    emergency_changes = serializers.IntegerField()
    emergency_change_share = serializers.FloatField(allow_null=True)
    incidents_during_els = serializers.IntegerField()
    reviews_overdue = serializers.IntegerField()


class SeriesPointSerializer(serializers.Serializer):
    starts = serializers.DateField()
    ends = serializers.DateField()
    deployments = serializers.IntegerField()
    failed_deployments = serializers.IntegerField()
    change_failure_rate = serializers.FloatField(allow_null=True)
    lead_time_median_hours = serializers.FloatField(allow_null=True)
    lead_time_p90_hours = serializers.FloatField(allow_null=True)
    restorations = serializers.IntegerField()
    time_to_restore_median_hours = serializers.FloatField(allow_null=True)


class DoraReportSerializer(FromFieldMixin, serializers.Serializer):
    """The figures of the scope (``from`` to ``to``) and of the period of equal length before it."""

    service = serializers.IntegerField(source="scope.service_id", allow_null=True)
    environment = serializers.IntegerField(source="scope.environment_id", allow_null=True)
    from_ = serializers.DateField(source="scope.first_day")
    to = serializers.DateField(source="scope.last_day")
    previous_from = serializers.DateField(source="scope.previous.first_day")
    previous_to = serializers.DateField(source="scope.previous.last_day")
    period = serializers.ChoiceField(choices=Period.choices)
    keys = KeyFigureSerializer(many=True)
    current = DoraKeysSerializer()
    previous = DoraKeysSerializer()
    itil = ItilFiguresSerializer()
    series = SeriesPointSerializer(many=True)


# --- CSV ----------------------------------------------------------------------------------------------------

CSV_COLUMNS = ("from", "to", "figure", "value", "unit", "level", "trend")
UNITS = {
    Key.DEPLOYMENT_FREQUENCY: "deployments per day",
    Key.LEAD_TIME: "hours (median)",
    Key.CHANGE_FAILURE_RATE: "ratio",
    Key.TIME_TO_RESTORE: "hours (median)",
}


class _Echo:
    def write(self, line: str) -> str:
        return line


def dora_csv_lines(data: dict) -> Iterator[str]:
    """The API's figures as CSV, one figure a line: the four keys with their level and trend, the previous
    period's, every count behind them, the ITIL figures, then each bucket of the series."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    now, before = (data["from"], data["to"]), (data["previous_from"], data["previous_to"])
    for figure in data["keys"]:
        unit = UNITS[figure["key"]]
        yield writer.writerow([*now, figure["key"], figure["value"], unit, figure["level"], figure["trend"]])
    for figure in data["keys"]:
        yield writer.writerow([*before, figure["key"], figure["previous"], UNITS[figure["key"]], "", ""])
    for days, figures in ((now, data["current"]), (before, data["previous"]), (now, data["itil"])):
        for name, value in figures.items():
            yield writer.writerow([*days, name, value, "", "", ""])
    for point in data["series"]:
        for name, value in point.items():
            if name not in ("starts", "ends"):
                yield writer.writerow([point["starts"], point["ends"], name, value, "", "", ""])


class DoraCsvRenderer(BaseRenderer):
    """``?format=csv``: the figures as CSV; a problem (400, 403…) stays problem details in JSON."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None and response.exception:
            return JSONRenderer().render(data)
        return "".join(dora_csv_lines(data)).encode()


def csv_file_name(query: dict) -> str:
    scope: DoraScope = query["scope"]
    service, environment = query.get("service"), query.get("environment")
    parts = [slugify(service.name) if service else "all-services", environment.slug if environment else "production"]
    return f"rdm-dora-{'-'.join(parts)}-{scope.first_day}-{scope.last_day}.csv"


# --- the endpoint ---------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="DORA's four keys (levels, trend), the ITIL figures and the series; ?format=csv for a CSV file",
        parameters=[DoraQuery],
        responses={
            (200, "application/json"): forced_singular_serializer(DoraReportSerializer),  # one report, not a list
            (200, "text/csv"): OpenApiTypes.STR,
            **{(code, "application/json"): PROBLEMS[code] for code in (400, 401, 403, 429)},
        },
    )
)
class DoraMetricsViewSet(viewsets.GenericViewSet):
    """DORA's four keys and the ITIL figures of release management, per service, environment and period."""

    queryset = Deployment.objects.none()  # reading needs the permission to view deployments
    serializer_class = DoraReportSerializer
    renderer_classes = [*api_settings.DEFAULT_RENDERER_CLASSES, DoraCsvRenderer]
    pagination_class = None
    filter_backends = []

    def list(self, request):
        query = DoraQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        report: DoraReport = dora_report(query.validated_data["scope"], query.validated_data["period"])
        response = Response(DoraReportSerializer(report).data)
        if request.accepted_renderer.format == DoraCsvRenderer.format:
            response["Content-Disposition"] = f'attachment; filename="{csv_file_name(query.validated_data)}"'
        return response
