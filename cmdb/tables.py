"""The CMDB lists of the browser."""

from cmdb.models import Baseline, ConfigurationItem, Environment, Service
from rdm_site.tables import BadgeColumn, RdmTable


class ServiceTable(RdmTable):
    criticality = BadgeColumn()

    class Meta(RdmTable.Meta):
        model = Service
        fields = ("name", "criticality", "owner", "description")


class ConfigurationItemTable(RdmTable):
    state = BadgeColumn()

    class Meta(RdmTable.Meta):
        model = ConfigurationItem
        fields = ("name", "ci_type", "state", "version", "service", "environment", "owner")


class EnvironmentTable(RdmTable):
    tier = BadgeColumn()

    class Meta(RdmTable.Meta):
        model = Environment
        fields = ("name", "tier", "promotion_order", "description")


class BaselineTable(RdmTable):
    class Meta(RdmTable.Meta):
        model = Baseline
        fields = ("name", "taken_at", "taken_by", "reason")
