"""The CMDB lists of the browser."""

import json

import django_tables2 as tables

from cmdb.choices import CI_STATE_COLOURS
from cmdb.models import Baseline, BaselineItem, ConfigurationItem, Environment, Service
from rdm_site.badges import badge_html
from rdm_site.tables import BadgeColumn, DateTimeColumn, RdmTable


class ServiceTable(RdmTable):
    name = tables.Column(linkify=True)
    criticality = BadgeColumn()

    class Meta(RdmTable.Meta):
        model = Service
        fields = ("name", "criticality", "owner", "description")


class ConfigurationItemTable(RdmTable):
    name = tables.Column(linkify=True)
    state = BadgeColumn()
    service = tables.Column(linkify=True)
    environment = tables.Column(linkify=True, order_by=("environment__promotion_order",))

    class Meta(RdmTable.Meta):
        model = ConfigurationItem
        fields = ("name", "ci_type", "state", "version", "service", "environment", "owner")


class EnvironmentTable(RdmTable):
    name = tables.Column(linkify=True, attrs={"a": {"title": "The environment's CIs"}})
    tier = BadgeColumn()

    class Meta(RdmTable.Meta):
        model = Environment
        fields = ("name", "tier", "promotion_order", "description")


class BaselineTable(RdmTable):
    name = tables.Column(linkify=True)
    taken_at = DateTimeColumn(verbose_name="Taken (UTC)")
    item_count = tables.Column(verbose_name="CIs")

    class Meta(RdmTable.Meta):
        model = Baseline
        fields = ("name", "scope", "taken_at", "taken_by", "item_count", "reason")


class BaselineItemTable(RdmTable):
    """A baseline's CIs as they were (not links: the CI may have changed or gone since)."""

    attributes = tables.Column(orderable=False)

    class Meta(RdmTable.Meta):
        model = BaselineItem
        fields = ("ci_name", "environment_name", "service_name", "ci_type", "state", "version", "attributes")

    def render_state(self, record):
        return badge_html(record.get_state_display(), CI_STATE_COLOURS.get(record.state, "gray"))

    def render_attributes(self, value):
        return json.dumps(value, sort_keys=True, ensure_ascii=False) if value else "—"
