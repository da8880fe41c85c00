"""What satisfies the checklist and what a release leaves behind: rollback plans, gate evidence, baselines,
knowledge articles.
"""

from django.contrib import admin

from rdm_site.admin_support import ServiceBackedAdmin, service_action
from releases import permissions as perms
from releases import services
from releases.admin.base import RecordedElsewhereAdmin
from releases.models import GateEvidence, KnowledgeArticle, ReleaseBaseline, RollbackPlan


@admin.register(RollbackPlan)
class RollbackPlanAdmin(ServiceBackedAdmin):
    list_display = ["release", "documented", "tested", "rehearsed_at", "rehearsed_by"]
    fields = ["release", "steps", "written_by", "rehearsal_note", "rehearsal_link", "rehearsed_at", "rehearsed_by"]
    readonly_fields = ["written_by", "rehearsal_note", "rehearsal_link", "rehearsed_at", "rehearsed_by"]
    add_permission = change_permission = perms.CHANGE_ROLLBACK_PLAN
    actions = [
        service_action(
            "Record rollback rehearsal",
            lambda plan, u, note: services.rollback_rehearsal_record(release=plan.release, actor=u, note=note),
            reason="How was it rehearsed (note or link)?",
        )
    ]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "release"] if obj is not None else self.readonly_fields

    @admin.display(boolean=True)
    def documented(self, plan):
        return plan.documented

    @admin.display(boolean=True)
    def tested(self, plan):
        return plan.tested

    def create(self, request, form):
        data = form.cleaned_data
        return services.rollback_plan_write(release=data["release"], actor=request.user, steps=data["steps"])

    def update(self, request, obj, data):
        steps = data.get("steps", obj.steps)
        return services.rollback_plan_write(release=obj.release, actor=request.user, steps=steps)


@admin.register(GateEvidence)
class GateEvidenceAdmin(ServiceBackedAdmin):
    list_display = ["release", "gate", "recorder_label", "recorded_at", "verified_by", "verified_at"]
    list_filter = ["gate"]
    fields = ["release", "gate", "note", "link", "recorded_by_tool", "recorded_by", "verified_by", "verified_at"]
    readonly_fields = ["recorded_by", "verified_by", "verified_at"]
    add_permission = perms.ADD_GATE_EVIDENCE
    actions = [service_action("Verify", lambda e, u: services.gate_evidence_verify(evidence=e, actor=u))]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)  # posted once, then only verified

    def create(self, request, form):
        data = form.cleaned_data
        return services.gate_evidence_record(
            release=data["release"],
            actor=request.user,
            gate=data["gate"],
            note=data.get("note", ""),
            link=data.get("link", ""),
            tool=data.get("recorded_by_tool", ""),
        )


@admin.register(ReleaseBaseline)
class ReleaseBaselineAdmin(RecordedElsewhereAdmin):
    """Taken through the release's actions (release_baseline_take)."""

    list_display = ["release", "kind", "baseline", "linked_at"]
    list_filter = ["kind"]


@admin.register(KnowledgeArticle)
class KnowledgeArticleAdmin(ServiceBackedAdmin):
    list_display = ["title", "kind", "service", "package", "release", "author", "updated"]
    list_filter = ["kind", "service"]
    search_fields = ["title", "body"]
    filter_horizontal = ["configuration_items"]
    readonly_fields = ["review", "author", "created", "updated"]
    add_permission, change_permission = perms.ADD_KNOWLEDGE_ARTICLE, perms.CHANGE_KNOWLEDGE_ARTICLE

    def create(self, request, form):
        data = form.cleaned_data
        return services.knowledge_article_create(
            actor=request.user,
            title=data["title"],
            body=data["body"],
            kind=data["kind"],
            service=data["service"],
            release=data.get("release"),
            package=data.get("package"),
            configuration_items=data.get("configuration_items", ()),
        )

    def update(self, request, obj, data):
        return services.knowledge_article_update(article=obj, actor=request.user, data=data)
