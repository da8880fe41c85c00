"""The release plan and its units; the release's transitions as actions calling their services."""

from django.contrib import admin

from cmdb.choices import EnvironmentTier
from rdm_site.admin_support import ReadOnlyInline, ServiceBackedAdmin, service_action
from releases import permissions as perms
from releases import services
from releases.checklist import checklist_evaluate
from releases.choices import BaselineKind
from releases.models import Approval, GateEvidence, Release, ReleasePackage, ReleaseUnit


class ReleaseUnitInline(ReadOnlyInline):
    """Units are added on the unit admin (release_unit_add), which withdraws approvals."""

    model = ReleaseUnit
    fields = ["name", "kind", "version", "reversible", "configuration_items"]
    show_change_link = True


class ApprovalInline(ReadOnlyInline):
    model = Approval
    fields = ["approver", "decision", "role", "reason", "decided_at", "withdrawn_at", "withdrawn_reason"]


class PackageInline(ReadOnlyInline):
    model = ReleasePackage
    fk_name = "release"
    fields = ["version", "state", "built_by", "registered_at", "validated_by"]
    show_change_link = True


class GateEvidenceInline(ReadOnlyInline):
    model = GateEvidence
    fields = ["gate", "note", "link", "recorded_by", "recorded_by_tool", "recorded_at", "verified_by", "verified_at"]


def _with_reason(service):
    return lambda release, user, reason: service(release=release, actor=user, reason=reason)


def _baseline(kind: BaselineKind):
    return lambda release, user: services.release_baseline_take(release=release, actor=user, kind=kind)


@admin.register(Release)
class ReleaseAdmin(ServiceBackedAdmin):
    list_display = ["__str__", "release_type", "state", "planned_start", "release_manager"]
    list_filter = ["state", "release_type", "services"]
    search_fields = ["name", "version", "description"]
    filter_horizontal = ["services", "els_staff"]
    readonly_fields = [
        "state",
        "release_notes",
        "requested_by",
        "go_no_go",
        "created",
        "updated",
        "submitted_at",
        "approved_at",
        "ready_at",
        "deployment_started_at",
        "deployed_at",
        "els_started_at",
        "review_started_at",
        "ended_at",
        "end_reason",
    ]
    inlines = [ReleaseUnitInline, PackageInline, ApprovalInline, GateEvidenceInline]
    add_permission, change_permission = perms.ADD_RELEASE, perms.CHANGE_RELEASE
    actions = [
        service_action("Plan", lambda r, u: services.release_plan(release=r, actor=u), permission=perms.CHANGE_RELEASE),
        service_action(
            "Submit for approval",
            lambda r, u: services.release_submit(release=r, actor=u),
            permission=perms.SUBMIT_RELEASE,
        ),
        service_action(
            "Approve the plan",
            lambda r, u: services.release_approve(release=r, actor=u),
            permission=perms.APPROVE_RELEASE,
        ),
        service_action(
            "Reject the plan",
            _with_reason(services.release_reject),
            reason="Why is it rejected?",
            permission=perms.APPROVE_RELEASE,
        ),
        service_action("Mark ready (go)", lambda r, u: services.release_mark_ready(release=r, actor=u)),
        service_action("Re-plan", lambda r, u: services.release_replan(release=r, actor=u)),
        service_action(
            "Cancel",
            _with_reason(services.release_cancel),
            reason="Why is it cancelled?",
            permission=perms.CANCEL_RELEASE,
        ),
        service_action("Notify stakeholders", lambda r, u: services.stakeholders_notify(release=r, actor=u)),
        service_action("Build release notes", lambda r, u: services.release_notes_build(release=r, actor=u)),
        service_action("Take pre-release baseline", _baseline(BaselineKind.PRE_RELEASE)),
        service_action("Take post-release baseline", _baseline(BaselineKind.POST_RELEASE)),
        service_action("Start deploying", lambda r, u: services.release_deploying(release=r, actor=u)),
        service_action("Mark deployed", lambda r, u: services.release_deployed(release=r, actor=u)),
        service_action("Mark failed", _with_reason(services.release_failed), reason="What failed?"),
        service_action("Mark rolled back", _with_reason(services.release_rolled_back), reason="Why?"),
        service_action("Start early life support", lambda r, u: services.release_els_start(release=r, actor=u)),
        service_action("Exit early life support", lambda r, u: services.release_review_start(release=r, actor=u)),
        service_action("Close", lambda r, u: services.release_close(release=r, actor=u)),
    ]

    def get_readonly_fields(self, request, obj=None):
        fixed = ["release_type", "policy"] if obj is not None else []  # chosen once, when the release is created
        return [*self.readonly_fields, *fixed]

    @admin.display(description="go/no-go (production)")
    def go_no_go(self, release):
        if not release.pk:
            return "—"
        checklist = checklist_evaluate(release, EnvironmentTier.PRODUCTION)
        lines = [
            f"{'✔' if gate.satisfied else ('✘' if gate.required else '·')} {gate.title}: {gate.status}"
            for gate in checklist.gates
        ]
        return "\n".join(lines)

    def create(self, request, form):
        data = form.cleaned_data
        return services.release_create(
            actor=request.user,
            name=data["name"],
            version=data["version"],
            release_type=data["release_type"],
            policy=data["policy"],
            services=data.get("services", []),
            planned_start=data.get("planned_start"),
            planned_end=data.get("planned_end"),
            description=data.get("description", ""),
            release_manager=data.get("release_manager"),
            els_exit_criteria=data.get("els_exit_criteria"),
            els_min_duration_days=data.get("els_min_duration_days"),
            els_staff=data.get("els_staff", []),
        )

    def update(self, request, obj, data):
        return services.release_update(release=obj, actor=request.user, data=data)


@admin.register(ReleaseUnit)
class ReleaseUnitAdmin(ServiceBackedAdmin):
    list_display = ["name", "release", "kind", "version", "reversible"]
    list_filter = ["kind", "reversible"]
    search_fields = ["name", "release__name"]
    raw_id_fields = ["configuration_items"]
    add_permission = change_permission = perms.REGISTER_PACKAGE

    def get_readonly_fields(self, request, obj=None):
        return ["release"] if obj is not None else []

    def create(self, request, form):
        data = form.cleaned_data
        return services.release_unit_add(
            release=data["release"],
            actor=request.user,
            name=data["name"],
            kind=data["kind"],
            version=data.get("version", ""),
            reversible=data.get("reversible", True),
            configuration_items=data.get("configuration_items", []),
            notes=data.get("notes", ""),
        )

    def update(self, request, obj, data):
        return services.release_unit_update(unit=obj, actor=request.user, data=data)
