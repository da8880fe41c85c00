"""The release governance lists of the browser."""

import django_tables2 as tables
from django.utils.html import format_html

from rdm_site.badges import badge_html
from rdm_site.tables import BadgeColumn, DateTimeColumn, RdmTable
from releases.choices import PACKAGE_STATE_COLOURS, PackageState
from releases.models import (
    Approval,
    ChangeRecord,
    ChangeTemplate,
    FreezeOverride,
    FreezePeriod,
    PostImplementationReview,
    Release,
    ReleasePackage,
    ReleasePolicy,
    ReleaseWindow,
)


class ReleaseTable(RdmTable):
    name = tables.Column(verbose_name="Release", linkify=True, order_by=("name", "version"))
    state = BadgeColumn()
    release_type = BadgeColumn(verbose_name="Type")
    services = tables.ManyToManyColumn(orderable=False)
    release_manager = tables.Column(verbose_name="Release manager")
    planned_start = DateTimeColumn(verbose_name="Planned start (UTC)")
    current_package_state = tables.Column(verbose_name="Package", default="none")
    approvals_count = tables.Column(verbose_name="Approvals")

    class Meta(RdmTable.Meta):
        model = Release
        fields = (
            "name",
            "state",
            "release_type",
            "services",
            "release_manager",
            "planned_start",
            "current_package_state",
            "approvals_count",
        )

    def render_name(self, record):
        return str(record)

    def render_current_package_state(self, value):
        return badge_html(PackageState(value).label, PACKAGE_STATE_COLOURS.get(value, "gray"))

    def render_approvals_count(self, value, record):
        return f"{value} of {record.policy.approvals_required}"


class PackageTable(RdmTable):
    version = tables.Column(verbose_name="Package", linkify=True)
    release = tables.Column(linkify=True)
    state = BadgeColumn()
    artifacts = tables.Column(verbose_name="Artifacts", empty_values=(), orderable=False)
    registered_at = DateTimeColumn(verbose_name="Registered (UTC)")

    class Meta(RdmTable.Meta):
        model = ReleasePackage
        fields = ("version", "release", "state", "built_by", "validated_by", "artifacts", "registered_at")

    def render_artifacts(self, record):
        return len(record.artifacts.all())


class ApprovalTable(RdmTable):
    decided_at = DateTimeColumn(verbose_name="Decided (UTC)")
    decision = BadgeColumn()
    subject = tables.Column(verbose_name="On", empty_values=(), orderable=False)
    role = tables.Column(verbose_name="Decided as")
    reason = tables.Column(verbose_name="Comment")
    withdrawn_at = tables.Column(verbose_name="Withdrawn (UTC)")

    class Meta(RdmTable.Meta):
        model = Approval
        fields = ("decided_at", "approver", "role", "decision", "subject", "reason", "withdrawn_at")
        row_attrs = {"class": lambda record: "" if record.active else "rdm-withdrawn"}

    def render_withdrawn_at(self, value, record):
        return format_html("{}: {}", f"{value:%Y-%m-%d %H:%M}", record.withdrawn_reason or "withdrawn")

    def render_subject(self, record):
        subject = record.subject
        label = f"Change {subject.number}: {subject.title}" if record.change_id else f"Release {subject}"
        return format_html('<a href="{}">{}</a>', subject.get_absolute_url(), label)


class ChangeTable(RdmTable):
    number = tables.Column(linkify=True, attrs={"td": {"class": "text-nowrap"}})
    change_type = BadgeColumn(verbose_name="Type")
    state = BadgeColumn()
    risk = BadgeColumn()
    planned_start = tables.Column(verbose_name="Planned (UTC)", attrs={"td": {"class": "text-nowrap"}})
    services = tables.ManyToManyColumn(orderable=False)
    conflict_numbers = tables.Column(verbose_name="Conflicts", orderable=False, default="")
    release = tables.Column(linkify=True)

    class Meta(RdmTable.Meta):
        model = ChangeRecord
        fields = (
            "number",
            "title",
            "change_type",
            "state",
            "risk",
            "planned_start",
            "services",
            "conflict_numbers",
            "release",
        )

    def render_planned_start(self, record):
        start, end = record.planned_start, record.planned_end
        return format_html("{}<br>→ {}", f"{start:%Y-%m-%d %H:%M}", f"{end:%Y-%m-%d %H:%M}")

    def render_conflict_numbers(self, value):
        return conflict_badge(value)


def conflict_badge(numbers) -> str:
    """A "Conflict" badge naming the overlapping changes (text, not only colour); empty without conflicts."""
    if not numbers:
        return ""
    return format_html("{} {}", badge_html("Conflict", "darkorange"), ", ".join(numbers))


class ChangeTemplateTable(RdmTable):
    name = tables.Column(linkify=True)
    risk = tables.Column()
    services = tables.ManyToManyColumn(orderable=False)
    approved_at = DateTimeColumn(verbose_name="Pre-approved (UTC)")

    class Meta(RdmTable.Meta):
        model = ChangeTemplate
        fields = ("name", "risk", "services", "active", "approved_by", "approved_at")


class PolicyTable(RdmTable):
    name = tables.Column(linkify=True)
    release_type = tables.Column(verbose_name="Release type")

    class Meta(RdmTable.Meta):
        model = ReleasePolicy
        fields = ("name", "release_type", "approvals_required", "lead_time_days", "els_duration_days", "active")


class WindowTable(RdmTable):
    name = tables.Column(linkify=True)
    rrule = tables.Column(verbose_name="Recurrence (RFC 5545)")
    services = tables.ManyToManyColumn(orderable=False, verbose_name="Services (empty: all)")
    environments = tables.ManyToManyColumn(orderable=False)

    class Meta(RdmTable.Meta):
        model = ReleaseWindow
        fields = (
            "name",
            "first_date",
            "start_time",
            "duration",
            "time_zone",
            "rrule",
            "services",
            "environments",
            "active",
        )


class FreezeTable(RdmTable):
    name = tables.Column(linkify=True)
    start = DateTimeColumn(verbose_name="Start (UTC)")
    end = DateTimeColumn(verbose_name="End (UTC)")
    services = tables.ManyToManyColumn(orderable=False, verbose_name="Services (empty: all)")
    environments = tables.ManyToManyColumn(orderable=False, verbose_name="Environments (empty: all)")

    class Meta(RdmTable.Meta):
        model = FreezePeriod
        fields = ("name", "start", "end", "services", "environments", "reason")


class FreezeOverrideTable(RdmTable):
    change = tables.Column(linkify=True)
    freeze = tables.Column(linkify=True, default="every freeze over its schedule")
    granted_at = DateTimeColumn(verbose_name="Granted (UTC)")
    valid_from = DateTimeColumn(verbose_name="Valid from (UTC)")
    valid_until = DateTimeColumn(verbose_name="Valid until (UTC)")

    class Meta(RdmTable.Meta):
        model = FreezeOverride
        fields = ("change", "freeze", "reason", "granted_by", "granted_at", "valid_from", "valid_until")


class ReviewTable(RdmTable):
    release = tables.Column(verbose_name="Review of release", linkify=lambda record: record.get_absolute_url())
    service = tables.Column(linkify=True)
    owner = tables.Column(verbose_name="Assigned to")
    state = BadgeColumn()
    due_on = tables.Column(verbose_name="Due on", attrs={"td": {"class": "text-nowrap"}})
    submitted_at = DateTimeColumn(verbose_name="Submitted (UTC)")

    class Meta(RdmTable.Meta):
        model = PostImplementationReview
        fields = ("release", "service", "owner", "state", "due_on", "submitted_at")
        order_by = ("due_on",)

    def render_owner(self, value):
        return value.get_full_name() or value.get_username()

    def render_due_on(self, value, record):
        return format_html("{} {}", f"{value:%Y-%m-%d}", overdue_badge(record))


def overdue_badge(review: PostImplementationReview) -> str:
    """An "Overdue" badge (text, not only colour) for a review still open after its due date; else empty."""
    return badge_html("Overdue", "firebrick") if review.overdue else ""
