"""Release policies, windows, freezes and freeze overrides, in the browser."""

from django.urls import path

from rdm_site.web import ObjectListView
from releases import selectors
from releases.filtersets import (
    FreezeOverrideFilterSet,
    FreezePeriodFilterSet,
    ReleasePolicyFilterSet,
    ReleaseWindowFilterSet,
)
from releases.tables import FreezeOverrideTable, FreezeTable, PolicyTable, WindowTable


class PolicyListView(ObjectListView):
    queryset = selectors.policies_list()
    filterset_class = ReleasePolicyFilterSet
    table_class = PolicyTable


class WindowListView(ObjectListView):
    queryset = selectors.windows_list()
    filterset_class = ReleaseWindowFilterSet
    table_class = WindowTable


class FreezeListView(ObjectListView):
    queryset = selectors.freezes_list()
    filterset_class = FreezePeriodFilterSet
    table_class = FreezeTable


class FreezeOverrideListView(ObjectListView):
    queryset = selectors.freeze_overrides_list()
    filterset_class = FreezeOverrideFilterSet
    table_class = FreezeOverrideTable


urlpatterns = [
    path("policies/", PolicyListView.as_view(), name="policy_list"),
    path("windows/", WindowListView.as_view(), name="window_list"),
    path("freezes/", FreezeListView.as_view(), name="freeze_list"),
    path("freeze-overrides/", FreezeOverrideListView.as_view(), name="freezeoverride_list"),
]
