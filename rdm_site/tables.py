"""Columns every list page shares (django-tables2)."""

import django_tables2 as tables

from rdm_site.badges import field_badge


class BadgeColumn(tables.Column):
    """A choice field drawn as its coloured, labelled badge."""

    def render(self, value, record):
        return field_badge(record, self.accessor)


class RdmTable(tables.Table):
    """Tabler's table look; every list sorts by its columns and paginates."""

    class Meta:
        attrs = {"class": "table table-vcenter card-table table-striped"}
        empty_text = "Nothing matches."
