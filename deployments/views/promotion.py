"""Continuous promotions in the browser: the list, and each promotion's stages as a row of steps (an environment
each, with its state, its deployment and, where it stopped, why). Pipelines request them through the API
(``/api/v1/promotions/``); nothing here writes."""

import django_tables2 as tables
from django.template.loader import render_to_string
from django.urls import path

from deployments.api.promotions import PromotionFilterSet
from deployments.models import Promotion
from deployments.promotions import promotion_list
from rdm_site.tables import BadgeColumn, RdmTable
from rdm_site.web import ObjectDetailView, ObjectListView


class StagesColumn(tables.Column):
    """Each stage's environment and state, in order (rendered without the request: no per-row queries)."""

    def __init__(self, **kwargs):
        super().__init__(accessor="pk", orderable=False, verbose_name="Stages", **kwargs)

    def render(self, value, record):
        return render_to_string("deployments/inc/promotion_stages_inline.html", {"record": record})


class PromotionTable(RdmTable):
    id = tables.Column(linkify=True, verbose_name="#")
    service = tables.Column()
    version = tables.Column(
        accessor="package__version", verbose_name="Version", linkify=lambda record: record.get_absolute_url()
    )
    stages = StagesColumn()
    state = BadgeColumn()
    requested_by = tables.Column(verbose_name="Requested by")
    created = tables.DateTimeColumn(format="Y-m-d H:i", verbose_name="Requested (UTC)")

    class Meta(RdmTable.Meta):
        model = Promotion
        fields = ("id", "service", "version", "stages", "state", "requested_by", "created")
        empty_text = "No promotion matches."


class PromotionListView(ObjectListView):
    queryset = promotion_list()
    filterset_class = PromotionFilterSet
    table_class = PromotionTable
    template_name = "deployments/promotion_list.html"
    model_label = "promotion"


class PromotionDetailView(ObjectDetailView):
    """A pipeline run: the package, its standard change, and the stages in promotion order."""

    queryset = promotion_list()
    template_name = "deployments/promotion_detail.html"


urlpatterns = [
    path("promotions/", PromotionListView.as_view(), name="promotion_list"),
    path("promotions/<int:pk>/", PromotionDetailView.as_view(), name="promotion_detail"),
]
