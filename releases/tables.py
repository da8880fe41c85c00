"""The release governance lists of the browser."""

import django_tables2 as tables

from rdm_site.tables import BadgeColumn, RdmTable
from releases.models import (
    Approval,
    ChangeRecord,
    ChangeTemplate,
    FreezeOverride,
    FreezePeriod,
    Release,
    ReleasePackage,
    ReleasePolicy,
    ReleaseWindow,
)


class ReleaseTable(RdmTable):
    name = tables.Column(linkify=True)
    state = BadgeColumn()
    release_type = BadgeColumn(verbose_name="Type")
    services = tables.ManyToManyColumn(orderable=False)
    release_manager = tables.Column(verbose_name="Release manager")
    planned_start = tables.DateTimeColumn(format="Y-m-d H:i")

    class Meta(RdmTable.Meta):
        model = Release
        fields = ("name", "version", "state", "release_type", "services", "release_manager", "planned_start")


class PackageTable(RdmTable):
    release = tables.Column(linkify=True)
    version = tables.Column(linkify=True)
    state = BadgeColumn()

    class Meta(RdmTable.Meta):
        model = ReleasePackage
        fields = ("release", "version", "state", "built_by", "validated_by", "registered_at")


class ApprovalTable(RdmTable):
    decision = BadgeColumn()
    release = tables.Column(linkify=True)
    change = tables.Column(linkify=True)

    class Meta(RdmTable.Meta):
        model = Approval
        fields = ("decided_at", "approver", "role", "decision", "release", "change", "reason", "withdrawn_at")


class ChangeTable(RdmTable):
    number = tables.Column(linkify=True)
    change_type = BadgeColumn(verbose_name="Type")
    state = BadgeColumn()
    risk = BadgeColumn()
    release = tables.Column(linkify=True)

    class Meta(RdmTable.Meta):
        model = ChangeRecord
        fields = ("number", "title", "change_type", "state", "risk", "planned_start", "planned_end", "release")


class ChangeTemplateTable(RdmTable):
    risk = tables.Column()
    services = tables.ManyToManyColumn(orderable=False)

    class Meta(RdmTable.Meta):
        model = ChangeTemplate
        fields = ("name", "risk", "services", "active", "approved_by", "approved_at")


class PolicyTable(RdmTable):
    class Meta(RdmTable.Meta):
        model = ReleasePolicy
        fields = ("name", "release_type", "approvals_required", "lead_time_days", "els_duration_days", "active")


class WindowTable(RdmTable):
    class Meta(RdmTable.Meta):
        model = ReleaseWindow
        fields = ("name", "first_date", "start_time", "duration", "time_zone", "rrule", "active")


class FreezeTable(RdmTable):
    class Meta(RdmTable.Meta):
        model = FreezePeriod
        fields = ("name", "start", "end", "reason")


class FreezeOverrideTable(RdmTable):
    change = tables.Column(linkify=True)

    class Meta(RdmTable.Meta):
        model = FreezeOverride
        fields = ("change", "freeze", "reason", "granted_by", "granted_at", "valid_from", "valid_until")
