"""Admin for release governance: states are read-only, every transition is an action calling its service
with the signed-in user, and every refusal is shown as a message (never a 500).
"""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.text import slugify

from cmdb.choices import EnvironmentTier
from rdm_site.audit import audit_record
from rdm_site.exceptions import DomainError
from releases import services
from releases.checklist import checklist_evaluate
from releases.choices import BaselineKind, ChangeOutcome
from releases.models import (
    Approval,
    ChangeRecord,
    ChangeTemplate,
    FreezeOverride,
    FreezePeriod,
    GateEvidence,
    KnowledgeArticle,
    PackageArtifact,
    Release,
    ReleaseBaseline,
    ReleasePackage,
    ReleasePolicy,
    ReleaseUnit,
    ReleaseWindow,
    RollbackPlan,
    TestRun,
)
from releases.selectors import change_conflicts


def service_action(description: str, call, *, reason: str | None = None):
    """An admin action applying ``call(obj, user[, reason])`` to each selected row. With ``reason``, it first
    asks for one (an intermediate page) and passes it on.
    """

    def action(modeladmin, request, queryset):
        given = None
        if reason is not None:
            if "apply" not in request.POST:
                context = {
                    **modeladmin.admin_site.each_context(request),
                    "title": description,
                    "label": reason,
                    "queryset": queryset,
                    "action": action.__name__,
                    "opts": modeladmin.model._meta,
                }
                return TemplateResponse(request, "admin/releases/reason_form.html", context)
            given = request.POST.get("reason", "")
        for obj in queryset:
            try:
                call(obj, request.user, given) if reason is not None else call(obj, request.user)
            except DomainError as error:
                modeladmin.message_user(request, f"{obj}: {error}", messages.ERROR)
            else:
                modeladmin.message_user(request, f"{obj}: {description.lower()} done.", messages.SUCCESS)
        return None

    action.__name__ = slugify(description).replace("-", "_")
    return admin.action(description=description)(action)


class DomainErrorsAsMessages:
    """A refused save shows the refusal on the form page instead of an error page (the transaction is undone)."""

    def changeform_view(self, request, *args, **kwargs):
        try:
            return super().changeform_view(request, *args, **kwargs)
        except DomainError as error:
            self.message_user(request, str(error), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


def _adopt(obj, created) -> None:
    """Make the admin's unsaved ``obj`` stand for the row a service created, so inlines attach to it."""
    obj.pk = created.pk
    obj._state.adding = False
    obj._state.db = created._state.db
    obj.refresh_from_db()


def _save_inlines_only(model_admin, request, form, formsets) -> None:
    """The service already saved the form's many-to-many fields; save the inlines (the admin reports on them)."""
    for formset in formsets:
        model_admin.save_formset(request, form, formset, change=True)


class AuditedEditAdmin(DomainErrorsAsMessages, admin.ModelAdmin):
    """Plain edits (policies, windows, freezes, templates) are significant: each is audited with its changes."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        name = obj._meta.model_name
        changes = {field: [None, str(form.cleaned_data.get(field))] for field in form.changed_data}
        audit_record(
            actor=request.user, action=f"{name}.{'update' if change else 'create'}", target=obj, changes=changes
        )


# --- policy, windows, freezes --------------------------------------------------------------------


@admin.register(ReleasePolicy)
class ReleasePolicyAdmin(AuditedEditAdmin):
    list_display = ["name", "release_type", "approvals_required", "lead_time_days", "active"]
    list_filter = ["release_type", "active"]
    search_fields = ["name"]


@admin.register(ReleaseWindow)
class ReleaseWindowAdmin(AuditedEditAdmin):
    list_display = ["name", "rrule", "start_time", "duration", "time_zone", "next_opening", "active"]
    list_filter = ["active", "time_zone", "environments"]
    filter_horizontal = ["services", "environments"]
    readonly_fields = ["rfc5545", "next_opening"]

    @admin.display(description="next opening")
    def next_opening(self, window):
        occurrence = window.next_occurrence() if window.pk else None
        return f"{occurrence.start:%Y-%m-%d %H:%M %Z}" if occurrence else "—"

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if not form.instance.environments.exists():
            self.message_user(request, "This window lists no environment, so it opens for none.", messages.WARNING)


@admin.register(FreezePeriod)
class FreezePeriodAdmin(AuditedEditAdmin):
    list_display = ["name", "start", "end", "reason"]
    list_filter = ["environments", "services"]
    filter_horizontal = ["services", "environments"]
    search_fields = ["name", "reason"]

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


# --- release -------------------------------------------------------------------------------------


class ReleaseUnitInline(admin.TabularInline):
    model = ReleaseUnit
    extra = 0
    fields = ["name", "kind", "version", "reversible", "configuration_items"]
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False  # units are added through the unit admin (release_unit_add), which withdraws approvals

    def has_change_permission(self, request, obj=None):
        return False


class ApprovalInline(admin.TabularInline):
    model = Approval
    extra = 0
    fields = ["approver", "decision", "role", "reason", "decided_at", "withdrawn_at", "withdrawn_reason"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class PackageInline(admin.TabularInline):
    model = ReleasePackage
    fk_name = "release"
    extra = 0
    fields = ["version", "state", "built_by", "registered_at", "validated_by"]
    readonly_fields = fields
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class GateEvidenceInline(admin.TabularInline):
    model = GateEvidence
    extra = 0
    fields = ["gate", "note", "link", "recorded_by", "recorded_by_tool", "recorded_at", "verified_by", "verified_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


def _release_reason(service):
    return lambda release, user, reason: service(release=release, actor=user, reason=reason)


@admin.register(Release)
class ReleaseAdmin(DomainErrorsAsMessages, admin.ModelAdmin):
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
    actions = [
        service_action("Plan", lambda r, u: services.release_plan(release=r, actor=u)),
        service_action("Submit for approval", lambda r, u: services.release_submit(release=r, actor=u)),
        service_action("Approve the plan", lambda r, u: services.release_approve(release=r, actor=u)),
        service_action("Reject the plan", _release_reason(services.release_reject), reason="Why is it rejected?"),
        service_action("Mark ready (go)", lambda r, u: services.release_mark_ready(release=r, actor=u)),
        service_action("Re-plan", lambda r, u: services.release_replan(release=r, actor=u)),
        service_action("Cancel", _release_reason(services.release_cancel), reason="Why is it cancelled?"),
        service_action("Notify stakeholders", lambda r, u: services.stakeholders_notify(release=r, actor=u)),
        service_action("Build release notes", lambda r, u: services.release_notes_build(release=r, actor=u)),
        service_action(
            "Take pre-release baseline",
            lambda r, u: services.release_baseline_take(release=r, actor=u, kind=BaselineKind.PRE_RELEASE),
        ),
        service_action(
            "Take post-release baseline",
            lambda r, u: services.release_baseline_take(release=r, actor=u, kind=BaselineKind.POST_RELEASE),
        ),
        service_action("Start deploying", lambda r, u: services.release_deploying(release=r, actor=u)),
        service_action("Mark deployed", lambda r, u: services.release_deployed(release=r, actor=u)),
        service_action("Mark failed", _release_reason(services.release_failed), reason="What failed?"),
        service_action("Mark rolled back", _release_reason(services.release_rolled_back), reason="Why?"),
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

    def save_model(self, request, obj, form, change):
        if change:
            data = {name: form.cleaned_data[name] for name in form.changed_data if name in form.cleaned_data}
            services.release_update(release=obj, actor=request.user, data=data)
            obj.refresh_from_db()
            return
        created = services.release_create(
            actor=request.user,
            name=obj.name,
            version=obj.version,
            release_type=obj.release_type,
            policy=obj.policy,
            services=form.cleaned_data.get("services", []),
            planned_start=obj.planned_start,
            planned_end=obj.planned_end,
            description=obj.description,
            release_manager=obj.release_manager,
        )
        _adopt(obj, created)

    def save_related(self, request, form, formsets, change):
        # The services saved the sets (release_update withdraws approvals when they change); inlines only.
        _save_inlines_only(self, request, form, formsets)


@admin.register(ReleaseUnit)
class ReleaseUnitAdmin(DomainErrorsAsMessages, admin.ModelAdmin):
    list_display = ["name", "release", "kind", "version", "reversible"]
    list_filter = ["kind", "reversible"]
    search_fields = ["name", "release__name"]
    raw_id_fields = ["configuration_items"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        created = services.release_unit_add(
            release=obj.release,
            actor=request.user,
            name=obj.name,
            kind=obj.kind,
            version=obj.version,
            reversible=obj.reversible,
            configuration_items=form.cleaned_data.get("configuration_items", []),
            notes=obj.notes,
        )
        _adopt(obj, created)

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)
        else:
            _save_inlines_only(self, request, form, formsets)


@admin.register(RollbackPlan)
class RollbackPlanAdmin(DomainErrorsAsMessages, admin.ModelAdmin):
    list_display = ["release", "documented", "tested", "rehearsed_at", "rehearsed_by"]
    fields = ["release", "steps", "written_by", "rehearsal_note", "rehearsal_link", "rehearsed_at", "rehearsed_by"]
    readonly_fields = ["written_by", "rehearsal_note", "rehearsal_link", "rehearsed_at", "rehearsed_by"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "release"] if obj is not None else self.readonly_fields

    actions = [
        service_action(
            "Record rollback rehearsal",
            lambda plan, u, note: services.rollback_rehearsal_record(release=plan.release, actor=u, note=note),
            reason="How was it rehearsed (note or link)?",
        )
    ]

    @admin.display(boolean=True)
    def documented(self, plan):
        return plan.documented

    @admin.display(boolean=True)
    def tested(self, plan):
        return plan.tested

    def save_model(self, request, obj, form, change):
        _adopt(obj, services.rollback_plan_write(release=obj.release, actor=request.user, steps=obj.steps))


@admin.register(GateEvidence)
class GateEvidenceAdmin(DomainErrorsAsMessages, admin.ModelAdmin):
    list_display = ["release", "gate", "recorder_label", "recorded_at", "verified_by", "verified_at"]
    list_filter = ["gate"]
    fields = ["release", "gate", "note", "link", "recorded_by_tool", "recorded_by", "verified_by", "verified_at"]
    readonly_fields = ["recorded_by", "verified_by", "verified_at"]
    actions = [service_action("Verify", lambda e, u: services.gate_evidence_verify(evidence=e, actor=u))]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        created = services.gate_evidence_record(
            release=obj.release,
            actor=request.user,
            gate=obj.gate,
            note=obj.note,
            link=obj.link,
            tool=obj.recorded_by_tool,
        )
        _adopt(obj, created)


@admin.register(ReleaseBaseline)
class ReleaseBaselineAdmin(admin.ModelAdmin):
    list_display = ["release", "kind", "baseline", "linked_at"]
    list_filter = ["kind"]

    def has_add_permission(self, request):
        return False  # taken through the release's actions (release_baseline_take)

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(KnowledgeArticle)
class KnowledgeArticleAdmin(DomainErrorsAsMessages, admin.ModelAdmin):
    list_display = ["title", "kind", "service", "release", "author", "updated"]
    list_filter = ["kind", "service"]
    search_fields = ["title", "body"]
    readonly_fields = ["author", "created", "updated"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            audit_record(actor=request.user, action="knowledge_article.update", target=obj)
            return
        created = services.knowledge_article_create(
            actor=request.user, title=obj.title, body=obj.body, kind=obj.kind, service=obj.service, release=obj.release
        )
        _adopt(obj, created)


# --- package -------------------------------------------------------------------------------------


class ArtifactInline(admin.TabularInline):
    model = PackageArtifact
    extra = 0
    fields = ["name", "uri", "sha256", "size_bytes"]

    def has_change_permission(self, request, obj=None):
        return obj is None or obj.editable

    def has_add_permission(self, request, obj=None):
        return obj is None or obj.editable

    def has_delete_permission(self, request, obj=None):
        return obj is None or obj.editable


class TestRunInline(admin.TabularInline):
    model = TestRun
    extra = 0
    fields = ["suite", "failed_critical", "failed_major", "failed_minor", "passed", "link", "run_at", "recorded_by"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ReleasePackage)
class ReleasePackageAdmin(DomainErrorsAsMessages, admin.ModelAdmin):
    list_display = ["__str__", "state", "built_by", "registered_at", "validated_by"]
    list_filter = ["state"]
    search_fields = ["version", "release__name"]
    inlines = [ArtifactInline, TestRunInline]
    actions = [
        service_action("Mark built", lambda p, u: services.package_mark_built(package=p, actor=u)),
        service_action("Validate", lambda p, u: services.package_validate(package=p, actor=u)),
        service_action(
            "Reject package",
            lambda p, u, reason: services.package_reject(package=p, actor=u, reason=reason),
            reason="Why is the package rejected?",
        ),
    ]
    STATE_FIELDS = [
        "state",
        "built_by",
        "registered_at",
        "built_at",
        "validated_by",
        "validated_at",
        "rejected_by",
        "rejected_at",
        "rejection_reason",
        "superseded_by",
        "superseded_at",
    ]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not obj.editable:  # a validated package is immutable: show, never edit
            return [*self.STATE_FIELDS, "release", "version", "commits", "work_items", "notes"]
        return [*self.STATE_FIELDS, "release"] if obj is not None else self.STATE_FIELDS

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            audit_record(actor=request.user, action="package.update", target=obj, changes={"fields": form.changed_data})
            return
        created = services.package_register(
            release=obj.release,
            actor=request.user,
            version=obj.version,
            commits=obj.commits,
            work_items=obj.work_items,
            notes=obj.notes,
        )
        _adopt(obj, created)


@admin.register(PackageArtifact)
class PackageArtifactAdmin(DomainErrorsAsMessages, admin.ModelAdmin):
    list_display = ["name", "package", "sha256", "uri"]
    search_fields = ["name", "sha256"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        created = services.package_artifact_add(
            package=obj.package,
            actor=request.user,
            name=obj.name,
            uri=obj.uri,
            sha256=obj.sha256,
            size_bytes=obj.size_bytes,
        )
        _adopt(obj, created)


@admin.register(TestRun)
class TestRunAdmin(DomainErrorsAsMessages, admin.ModelAdmin):
    list_display = ["suite", "package", "failed_critical", "failed_major", "failed_minor", "passed", "run_at"]
    list_filter = ["suite"]
    readonly_fields = ["recorded_by", "recorded_at"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        created = services.test_run_record(
            package=obj.package,
            actor=request.user,
            suite=obj.suite,
            passed=obj.passed,
            failed_critical=obj.failed_critical,
            failed_major=obj.failed_major,
            failed_minor=obj.failed_minor,
            link=obj.link,
            run_at=obj.run_at,
        )
        _adopt(obj, created)


# --- change --------------------------------------------------------------------------------------


@admin.register(ChangeTemplate)
class ChangeTemplateAdmin(AuditedEditAdmin):
    list_display = ["name", "risk", "active", "approved_by", "approved_at"]
    list_filter = ["active", "risk"]
    filter_horizontal = ["services"]
    readonly_fields = ["created_by", "approved_by", "approved_at"]
    actions = [service_action("Pre-approve", lambda t, u: services.change_template_approve(template=t, actor=u))]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        elif obj.approved_at is not None and set(form.changed_data) & {"description", "risk", "services"}:
            # What the CAB pre-approved changed: the pre-approval no longer holds.
            obj.approved_by, obj.approved_at = None, None
            self.message_user(request, "The template changed, so it needs pre-approval again.", messages.WARNING)
        super().save_model(request, obj, form, change)


class OverrideInline(admin.TabularInline):
    model = FreezeOverride
    extra = 0
    fields = ["freeze", "reason", "granted_by", "granted_at", "valid_from", "valid_until"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


def _change_reason(service, keyword="reason"):
    return lambda change, user, text: service(change=change, actor=user, **{keyword: text})


@admin.register(ChangeRecord)
class ChangeRecordAdmin(DomainErrorsAsMessages, admin.ModelAdmin):
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
            "Assess", _change_reason(services.change_assess, "assessment"), reason="Assessment of risk and impact"
        ),
        service_action("Approve change", lambda c, u: services.change_approve(change=c, actor=u)),
        service_action("Reject change", _change_reason(services.change_reject), reason="Why is it rejected?"),
        service_action("Schedule", lambda c, u: services.change_schedule(change=c, actor=u)),
        service_action("Start implementing", lambda c, u: services.change_start(change=c, actor=u)),
        service_action(
            "Mark implemented",
            lambda c, u: services.change_complete(change=c, actor=u, outcome=ChangeOutcome.IMPLEMENTED),
        ),
        service_action(
            "Mark failed",
            _change_reason(lambda **kw: services.change_complete(outcome=ChangeOutcome.FAILED, **kw)),
            reason="What failed?",
        ),
        service_action(
            "Mark backed out",
            _change_reason(lambda **kw: services.change_complete(outcome=ChangeOutcome.BACKED_OUT, **kw)),
            reason="Why was it backed out?",
        ),
        service_action("Review", _change_reason(services.change_review, "notes"), reason="Review notes"),
        service_action("Close change", lambda c, u: services.change_close(change=c, actor=u)),
        service_action(
            "Override freezes", _change_reason(services.freeze_override), reason="Why must it deploy during the freeze?"
        ),
    ]

    @admin.display(description="conflicting changes")
    def conflicts(self, change):
        if not change.pk:
            return "—"
        return ", ".join(str(other) for other in change_conflicts(change)) or "none"

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            audit_record(actor=request.user, action="change.update", target=obj, changes={"fields": form.changed_data})
            return
        created = services.change_create(
            actor=request.user,
            change_type=obj.change_type,
            template=obj.template,
            title=obj.title,
            description=obj.description,
            risk=obj.risk,
            impact=obj.impact,
            services=form.cleaned_data.get("services", []),
            configuration_items=form.cleaned_data.get("configuration_items", []),
            planned_start=obj.planned_start,
            planned_end=obj.planned_end,
            release=obj.release,
        )
        _adopt(obj, created)

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)
        else:
            _save_inlines_only(self, request, form, formsets)


@admin.register(FreezeOverride)
class FreezeOverrideAdmin(admin.ModelAdmin):
    """Overrides are granted through the change's "Override freezes" action (freeze_override), never typed in."""

    list_display = ["change", "freeze", "granted_by", "granted_at", "valid_from", "valid_until", "reason"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Approval)
class ApprovalAdmin(admin.ModelAdmin):
    """Decisions are made through the release's and change's actions; here they are only read."""

    list_display = ["approver", "subject", "decision", "role", "decided_at", "withdrawn_at"]
    list_filter = ["decision", "withdrawn_at"]
    search_fields = ["approver__username", "reason", "withdrawn_reason"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
