"""Change records, the approvers' queue and standard change templates, in the browser."""

from django.urls import path

from rdm_site.web import ObjectListView
from releases import selectors
from releases.filtersets import ChangeRecordFilterSet, ChangeTemplateFilterSet
from releases.tables import ChangeTable, ChangeTemplateTable


class ChangeListView(ObjectListView):
    queryset = selectors.changes_list()
    filterset_class = ChangeRecordFilterSet
    table_class = ChangeTable


class ChangeTemplateListView(ObjectListView):
    queryset = selectors.change_templates_list()
    filterset_class = ChangeTemplateFilterSet
    table_class = ChangeTemplateTable


urlpatterns = [
    path("changes/", ChangeListView.as_view(), name="change_list"),
    path("changes/queue/", ChangeListView.as_view(), name="change_queue"),
    path("change-templates/", ChangeTemplateListView.as_view(), name="changetemplate_list"),
]
