"""The CMDB in the browser: services, configuration items, environments and baselines."""

from cmdb import selectors
from cmdb.filtersets import BaselineFilterSet, ConfigurationItemFilterSet, EnvironmentFilterSet, ServiceFilterSet
from cmdb.tables import BaselineTable, ConfigurationItemTable, EnvironmentTable, ServiceTable
from rdm_site.web import ObjectListView


class ServiceListView(ObjectListView):
    queryset = selectors.service_list()
    filterset_class = ServiceFilterSet
    table_class = ServiceTable


class ConfigurationItemListView(ObjectListView):
    queryset = selectors.ci_list()
    filterset_class = ConfigurationItemFilterSet
    table_class = ConfigurationItemTable


class EnvironmentListView(ObjectListView):
    queryset = selectors.environment_list()
    filterset_class = EnvironmentFilterSet
    table_class = EnvironmentTable


class BaselineListView(ObjectListView):
    queryset = selectors.baseline_list()
    filterset_class = BaselineFilterSet
    table_class = BaselineTable
