"""The DORA metrics page (``/reports/dora/``): the four keys as cards with their DORA level and trend, the ITIL
figures, charts of the series (chart.js, ``static/rdm/metrics.js``) and the CSV download.

The filters are the API's query (``DoraQuery``), so the page and ``/api/v1/metrics/dora/`` read and refuse
them alike; the CSV link is the API's CSV of the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.urls import path, reverse
from django.views.generic import TemplateView

from cmdb.models import Environment, Service
from deployments.api.metrics import DoraQuery
from deployments.metrics import LEVEL_COLOURS, DoraKeys, DoraReport, ItilFigures, Key, KeyFigure, Period, dora_report
from rdm_site.web import RdmPermissionRequiredMixin

TREND_WORDS = {"better": "better", "worse": "worse", "same": "unchanged"}


def hours_text(hours: float | None) -> str:
    """A duration as people read it: "45 min", "6.5 h", "27 h", "3.2 days"."""
    if hours is None:
        return "—"
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 10:
        return f"{hours:.1f} h"
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.1f} days"


def share_text(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.0f} %"


def frequency_text(per_day: float) -> str:
    return f"{per_day:.2f} a day" if per_day >= 1 / 7 else f"{per_day * 7:.2f} a week"


KEY_TEXT = {
    Key.DEPLOYMENT_FREQUENCY: frequency_text,
    Key.LEAD_TIME: hours_text,
    Key.CHANGE_FAILURE_RATE: share_text,
    Key.TIME_TO_RESTORE: hours_text,
}


@dataclass(frozen=True)
class Card:
    """One key as the page shows it."""

    figure: KeyFigure
    value: str
    previous: str
    detail: str
    level_colour: str

    @property
    def arrow(self) -> str:
        """Which way the value moved since the previous period (its ``trend`` says whether that is good)."""
        value, before = self.figure.value, self.figure.previous
        if not self.figure.trend:
            return ""
        return "↑" if value > before else "↓" if value < before else "→"

    @property
    def trend_word(self) -> str:
        return TREND_WORDS.get(self.figure.trend, "")


def _detail(key: Key, keys: DoraKeys) -> str:
    if key == Key.DEPLOYMENT_FREQUENCY:
        return f"{keys.deployments} production deployment(s)"
    if key == Key.LEAD_TIME:
        if keys.lead_time_median_hours is None:
            return "no production success of a package"
        return f"median of {keys.changes_measured}; 90 % within {hours_text(keys.lead_time_p90_hours)}"
    if key == Key.CHANGE_FAILURE_RATE:
        return f"{keys.failed_deployments} of {keys.deployments} deployment(s) failed or caused a failure"
    if keys.restorations == 0:
        return "no incident caused by a deployment was resolved"
    return f"median of {keys.restorations} incident(s) caused by a deployment"


def key_cards(report: DoraReport) -> list[Card]:
    return [
        Card(
            figure=figure,
            value=KEY_TEXT[figure.key](figure.value),
            previous="—" if figure.previous is None else KEY_TEXT[figure.key](figure.previous),
            detail=_detail(figure.key, report.current),
            level_colour=LEVEL_COLOURS.get(figure.level, "gray"),
        )
        for figure in report.keys
    ]


def itil_cards(itil: ItilFigures) -> list[tuple[str, str, str]]:
    """(label, value, detail) of each ITIL figure."""
    return [
        (
            "Release success rate",
            share_text(itil.release_success_rate),
            f"{itil.releases_succeeded} of {itil.releases_deployed} release(s) deployed without failing",
        ),
        (
            "Emergency-change share",
            share_text(itil.emergency_change_share),
            f"{itil.emergency_changes} of {itil.changes_implemented} change(s) implemented",
        ),
        ("Incidents during ELS", str(itil.incidents_during_els), "opened while early life support ran"),
        ("PIRs overdue", str(itil.reviews_overdue), "fell due in the period, not yet submitted"),
    ]


def series_data(report: DoraReport) -> dict:
    """What the charts draw (``metrics.js``), one list per line, a value per bucket."""
    points = report.series
    return {
        "labels": [str(point.starts) for point in points],
        "succeeded": [point.deployments - point.failed_deployments for point in points],
        "failed": [point.failed_deployments for point in points],
        "change_failure_rate": [
            None if point.change_failure_rate is None else round(point.change_failure_rate * 100, 1) for point in points
        ],
        "lead_time_median": [_rounded(point.lead_time_median_hours) for point in points],
        "lead_time_p90": [_rounded(point.lead_time_p90_hours) for point in points],
        "time_to_restore_median": [_rounded(point.time_to_restore_median_hours) for point in points],
    }


def _rounded(hours: float | None) -> float | None:
    return None if hours is None else round(hours, 1)


class DoraReportView(RdmPermissionRequiredMixin, TemplateView):
    """The metrics page: anyone who may view deployments. Bad filters are shown next to their fields, as given."""

    permission_required = "deployments.view_deployment"
    template_name = "deployments/dora_report.html"

    def get_context_data(self, **kwargs):
        query = DoraQuery(data=self.request.GET)
        context = {
            "title": "DORA metrics",
            "services": Service.objects.order_by("name"),
            "environments": Environment.objects.order_by("promotion_order"),
            "periods": Period.choices,
        }
        if not query.is_valid():
            return super().get_context_data(**context, given=self.request.GET, errors=query.errors, **kwargs)
        chosen = query.validated_data
        scope = chosen["scope"]
        report = dora_report(scope, chosen["period"])
        shown = {
            "service": scope.service_id or "",
            "environment": scope.environment_id or "",
            "from": scope.first_day,
            "to": scope.last_day,
            "period": report.period.value,
        }
        csv_query = urlencode({**shown, "format": "csv"})
        return super().get_context_data(
            **context,
            given=shown,
            report=report,
            period_label=report.period.label.lower(),
            cards=key_cards(report),
            itil=itil_cards(report.itil),
            series=series_data(report),
            csv_url=f"{reverse('dora-metrics-list')}?{csv_query}",
            **kwargs,
        )


urlpatterns = [path("reports/dora/", DoraReportView.as_view(), name="dora")]
