"""The CMDB in the Django admin. Every write goes through ``cmdb.services``, so the admin obeys the same
rules (roles, service ownership, the lifecycle) and leaves the same audit trail as the rest of RDM.
"""

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html

from cmdb import permissions as perms
from cmdb import services
from cmdb.actions import UPDATE, ci_available_actions
from cmdb.choices import CI_STATE_COLOURS, CRITICALITY_COLOURS, ENVIRONMENT_TIER_COLOURS, CiTransition
from cmdb.models import Baseline, BaselineItem, ConfigurationItem, Environment, Relationship, Service
from rdm_site.admin_support import ServiceBackedAdmin, refusal_messages, service_action
from rdm_site.exceptions import DomainError


def _badge(label: str, colour: str):
    return format_html(
        '<span style="background:{};color:#fff;padding:1px 8px;border-radius:8px">{}</span>', colour, label
    )


@admin.register(Environment)
class EnvironmentAdmin(ServiceBackedAdmin):
    list_display = ["name", "tier_badge", "promotion_order"]
    list_filter = ["tier"]
    search_fields = ["name", "description"]
    prepopulated_fields = {"slug": ["name"]}
    add_permission = perms.ADD_ENVIRONMENT
    change_permission = perms.CHANGE_ENVIRONMENT

    @admin.display(description="tier", ordering="tier")
    def tier_badge(self, environment):
        return _badge(environment.get_tier_display(), ENVIRONMENT_TIER_COLOURS[environment.tier])

    def create(self, request, form):
        return services.environment_create(actor=request.user, **form.cleaned_data)

    def update(self, request, obj, data):
        return services.environment_update(environment=obj, actor=request.user, data=data)


@admin.register(Service)
class ServiceAdmin(ServiceBackedAdmin):
    list_display = ["name", "owner", "criticality_badge"]
    list_filter = ["criticality", "owner"]
    search_fields = ["name", "description"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["stakeholders"]
    autocomplete_fields = ["owner"]
    add_permission = perms.ADD_SERVICE
    change_permission = perms.CHANGE_SERVICE

    @admin.display(description="criticality", ordering="criticality")
    def criticality_badge(self, service):
        return _badge(service.get_criticality_display(), CRITICALITY_COLOURS[service.criticality])

    def create(self, request, form):
        return services.service_create(actor=request.user, **form.cleaned_data)

    def update(self, request, obj, data):
        return services.service_update(service=obj, actor=request.user, data=data)


class OutgoingRelationshipInline(admin.TabularInline):
    """Read-only: relationships are added and removed on their own admin page, through the services."""

    model = Relationship
    fk_name = "source"
    verbose_name = "relationship from this CI"
    verbose_name_plural = "relationships from this CI"
    fields = readonly_fields = ["kind", "target"]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj):
        return False


class IncomingRelationshipInline(OutgoingRelationshipInline):
    fk_name = "target"
    verbose_name = "relationship to this CI"
    verbose_name_plural = "relationships to this CI"
    fields = readonly_fields = ["source", "kind"]


def _transition_action(transition: CiTransition):
    """The admin action for one lifecycle transition; retiring asks why (the trail keeps the answer)."""
    if transition == CiTransition.RETIRE:
        return service_action(
            transition.label,
            lambda ci, actor, reason: services.ci_transition(ci=ci, transition=transition, actor=actor, reason=reason),
            reason="Why are these CIs retired?",
            permission=perms.CHANGE_CI,
        )
    return service_action(
        transition.label,
        lambda ci, actor: services.ci_transition(ci=ci, transition=transition, actor=actor),
        permission=perms.CHANGE_CI,
    )


@admin.register(ConfigurationItem)
class ConfigurationItemAdmin(ServiceBackedAdmin):
    list_display = ["name", "environment", "ci_type", "state_badge", "version", "service", "owner"]
    list_filter = ["environment", "state", "ci_type", "service"]
    search_fields = ["name", "version"]
    list_select_related = ["environment", "service", "owner"]
    readonly_fields = ["state", "created", "updated"]
    fields = ["name", "environment", "ci_type", "state", "version", "service", "owner", "attributes"]
    inlines = [OutgoingRelationshipInline, IncomingRelationshipInline]
    actions = [*(_transition_action(transition) for transition in CiTransition), "take_baseline"]
    add_permission = perms.ADD_CI
    change_permission = perms.CHANGE_CI

    @admin.display(description="state", ordering="state")
    def state_badge(self, ci):
        return _badge(ci.get_state_display(), CI_STATE_COLOURS[ci.state])

    def has_change_permission(self, request, obj=None):
        """Service Owners may change the CIs of their own services only: the CI's rule table decides."""
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or UPDATE in ci_available_actions(obj, request.user))

    @admin.action(description="Take a baseline of the selected CIs", permissions=["add_baseline"])
    def take_baseline(self, request, queryset):
        name = f"admin selection {timezone.now():%Y-%m-%d %H:%M}"
        try:
            baseline = services.baseline_take(name=name, cis=queryset, actor=request.user)
        except DomainError as error:
            self.message_user(request, " ".join(refusal_messages(error)), messages.ERROR)
        else:
            self.message_user(request, f"Baseline {baseline.name!r} taken of {baseline.items.count()} CI(s).")

    def has_add_baseline_permission(self, request):
        return request.user.has_perm(perms.ADD_BASELINE)

    def create(self, request, form):
        return services.ci_create(actor=request.user, **form.cleaned_data)

    def update(self, request, obj, data):
        return services.ci_update(ci=obj, actor=request.user, data=data)


@admin.register(Relationship)
class RelationshipAdmin(ServiceBackedAdmin):
    """Relationships are facts: added or removed, never edited."""

    list_display = ["source", "kind", "target"]
    list_filter = ["kind", "source__environment"]
    search_fields = ["source__name", "target__name"]
    autocomplete_fields = ["source", "target"]
    list_select_related = ["source__environment", "target__environment"]

    add_permission = perms.ADD_RELATIONSHIP
    delete_permission = perms.DELETE_RELATIONSHIP

    def has_change_permission(self, request, obj=None):
        return False

    def create(self, request, form):
        return services.relationship_add(actor=request.user, **form.cleaned_data)

    def delete(self, request, obj):
        services.relationship_remove(relationship=obj, actor=request.user)


class BaselineItemInline(admin.TabularInline):
    model = BaselineItem
    fields = readonly_fields = [
        "ci_name",
        "environment_name",
        "service_name",
        "ci_type",
        "state",
        "version",
        "attributes",
    ]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj):
        return False


@admin.register(Baseline)
class BaselineAdmin(admin.ModelAdmin):
    """Baselines are evidence: taken by the services, never edited or deleted here."""

    list_display = ["name", "scope", "taken_at", "taken_by"]
    list_filter = ["taken_by"]
    search_fields = ["name", "reason"]
    readonly_fields = ["name", "scope", "taken_at", "taken_by", "reason"]
    inlines = [BaselineItemInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
