"""Change records, the templates that pre-approve standard changes, freeze overrides and the decisions."""

from django.contrib import admin, messages

from rdm_site.admin_support import ReadOnlyInline, ServiceBackedAdmin, service_action
from releases import permissions as perms
from releases import services
from releases.admin.base import RecordedElsewhereAdmin
from releases.admin.release import ApprovalInline
from releases.choices import ChangeOutcome
from releases.models import Approval, ChangeRecord, ChangeTemplate, FreezeOverride
from releases.selectors import change_conflicts


@admin.register(ChangeTemplate)
class ChangeTemplateAdmin(ServiceBackedAdmin):
    list_display = ["name", "risk", "active", "approved_by", "approved_at"]
    list_filter = ["active", "risk"]
    filter_horizontal = ["services"]
    readonly_fields = ["created_by", "approved_by", "approved_at"]
    add_permission, change_permission = perms.ADD_CHANGE_TEMPLATE, perms.CHANGE_CHANGE_TEMPLATE
    actions = [
        service_action(
            "Pre-approve",
            lambda t, u: services.change_template_approve(template=t, actor=u),
            permission=perms.APPROVE_CHANGE,
        )
    ]

    def create(self, request, form):
        data = form.cleaned_data
        return services.change_template_create(
            actor=request.user,
            name=data["name"],
            description=data["description"],
            services=data.get("services", []),
            risk=data.get("risk"),
            active=data.get("active", True),
        )

    def update(self, request, obj, data):
        was_approved = ChangeTemplate.objects.get(pk=obj.pk).approved_at is not None
        template = services.change_template_update(template=obj, actor=request.user, data=data)
        if was_approved and template.approved_at is None:
            self.message_user(request, "The template changed, so it needs pre-approval again.", messages.WARNING)
        return template


class OverrideInline(ReadOnlyInline):
    model = FreezeOverride
    fields = ["freeze", "reason", "granted_by", "granted_at", "valid_from", "valid_until"]


def _with_text(service, keyword="reason"):
    return lambda change, user, text: service(change=change, actor=user, **{keyword: text})


def _complete(outcome: ChangeOutcome):
    return lambda change, user, reason: services.change_complete(
        change=change, actor=user, outcome=outcome, reason=reason
    )


def _raises_changes(user) -> bool:
    """Build/CI Engineers raise standard changes from a template; the service tells them when not."""
    return any(user.has_perm(name) for name in (perms.ADD_CHANGE, perms.CREATE_STANDARD_CHANGE))


@admin.register(ChangeRecord)
class ChangeRecordAdmin(ServiceBackedAdmin):
    list_display = ["number", "title", "change_type", "risk", "state", "planned_start", "planned_end", "requested_by"]
    list_filter = ["state", "change_type", "risk", "services"]
    search_fields = ["number", "title", "description"]
    filter_horizontal = ["services"]
    raw_id_fields = ["configuration_items"]
    readonly_fields = [
        "number",
        "state",
        "requested_by",
        "requires_review",
        "assessment",
        "review_notes",
        "conflicts",
        "created",
        "submitted_at",
        "assessed_at",
        "decided_at",
        "started_at",
        "ended_at",
        "reviewed_at",
        "closed_at",
    ]
    inlines = [ApprovalInline, OverrideInline]
    actions = [
        service_action("Submit change", lambda c, u: services.change_submit(change=c, actor=u)),
        service_action(
            "Assess",
            _with_text(services.change_assess, "assessment"),
            reason="Assessment of risk and impact",
            permission=perms.ASSESS_CHANGE,
        ),
        service_action("Approve change", lambda c, u: services.change_approve(change=c, actor=u)),
        service_action("Reject change", _with_text(services.change_reject), reason="Why is it rejected?"),
        service_action("Schedule", lambda c, u: services.change_schedule(change=c, actor=u)),
        service_action("Start implementing", lambda c, u: services.change_start(change=c, actor=u)),
        service_action(
            "Mark implemented",
            lambda c, u: services.change_complete(change=c, actor=u, outcome=ChangeOutcome.IMPLEMENTED),
        ),
        service_action("Mark failed", _complete(ChangeOutcome.FAILED), reason="What failed?"),
        service_action("Mark backed out", _complete(ChangeOutcome.BACKED_OUT), reason="Why was it backed out?"),
        service_action(
            "Review", _with_text(services.change_review, "notes"), reason="Review notes", permission=perms.REVIEW_CHANGE
        ),
        service_action(
            "Close change", lambda c, u: services.change_close(change=c, actor=u), permission=perms.REVIEW_CHANGE
        ),
        service_action(
            "Override freezes",
            _with_text(services.freeze_override),
            reason="Why must it deploy during the freeze?",
            permission=perms.OVERRIDE_FREEZE,
        ),
    ]

    def has_add_permission(self, request, *args):
        return _raises_changes(request.user)

    def has_change_permission(self, request, obj=None):
        return _raises_changes(request.user)

    def get_readonly_fields(self, request, obj=None):
        fixed = ["template", "release"] if obj is not None else []  # chosen once, when the change is raised
        return [*self.readonly_fields, *fixed]

    @admin.display(description="conflicting changes")
    def conflicts(self, change):
        if not change.pk:
            return "—"
        return ", ".join(str(other) for other in change_conflicts(change)) or "none"

    def create(self, request, form):
        data = form.cleaned_data
        return self._warned(
            request,
            services.change_create(
                actor=request.user,
                change_type=data["change_type"],
                template=data.get("template"),
                title=data.get("title", ""),
                description=data.get("description", ""),
                risk=data.get("risk"),
                impact=data.get("impact", ""),
                services=data.get("services", []),
                configuration_items=data.get("configuration_items", []),
                planned_start=data["planned_start"],
                planned_end=data["planned_end"],
                release=data.get("release"),
            ),
        )

    def update(self, request, obj, data):
        return self._warned(request, services.change_update(change=obj, actor=request.user, data=data))

    def _warned(self, request, change: ChangeRecord) -> ChangeRecord:
        """Overlapping changes are flagged, not refused: say so where the schedule was set."""
        others = [other.number for other in change_conflicts(change)]
        if others:
            self.message_user(request, f"{change.number} overlaps {', '.join(others)}.", messages.WARNING)
        return change


@admin.register(FreezeOverride)
class FreezeOverrideAdmin(RecordedElsewhereAdmin):
    """Overrides are granted through the change's "Override freezes" action (freeze_override), never typed in."""

    list_display = ["change", "freeze", "granted_by", "granted_at", "valid_from", "valid_until", "reason"]


@admin.register(Approval)
class ApprovalAdmin(RecordedElsewhereAdmin):
    """Decisions are made through the release's and change's actions; here they are only read."""

    list_display = ["approver", "subject", "decision", "role", "decided_at", "withdrawn_at"]
    list_filter = ["decision", "withdrawn_at"]
    search_fields = ["approver__username", "reason", "withdrawn_reason"]
