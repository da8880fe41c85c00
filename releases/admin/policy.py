"""The rules: release policies, windows and freezes, written by Release Managers through their services."""

from django.contrib import admin, messages

from rdm_site.admin_support import ServiceBackedAdmin
from releases import permissions as perms
from releases import services
from releases.admin.base import form_data
from releases.models import FreezePeriod, ReleasePolicy, ReleaseWindow
from releases.services.policy import FREEZE_FIELDS, POLICY_FIELDS, WINDOW_FIELDS


@admin.register(ReleasePolicy)
class ReleasePolicyAdmin(ServiceBackedAdmin):
    list_display = ["name", "release_type", "approvals_required", "lead_time_days", "active"]
    list_filter = ["release_type", "active"]
    search_fields = ["name"]
    fields = POLICY_FIELDS
    add_permission, change_permission = perms.ADD_POLICY, perms.CHANGE_POLICY

    def create(self, request, form):
        return services.policy_create(actor=request.user, data=form_data(form, POLICY_FIELDS))

    def update(self, request, obj, data):
        return services.policy_update(policy=obj, actor=request.user, data=data)


@admin.register(ReleaseWindow)
class ReleaseWindowAdmin(ServiceBackedAdmin):
    list_display = ["name", "rrule", "start_time", "duration", "time_zone", "next_opening", "active"]
    list_filter = ["active", "time_zone", "environments"]
    filter_horizontal = ["services", "environments"]
    fields = [*WINDOW_FIELDS, "rfc5545", "next_opening"]
    readonly_fields = ["rfc5545", "next_opening"]
    add_permission, change_permission = perms.ADD_WINDOW, perms.CHANGE_WINDOW

    @admin.display(description="next opening")
    def next_opening(self, window):
        occurrence = window.next_occurrence() if window.pk else None
        return f"{occurrence.start:%Y-%m-%d %H:%M %Z}" if occurrence else "—"

    def create(self, request, form):
        return self._warned(request, services.window_create(actor=request.user, data=form_data(form, WINDOW_FIELDS)))

    def update(self, request, obj, data):
        return self._warned(request, services.window_update(window=obj, actor=request.user, data=data))

    def _warned(self, request, window: ReleaseWindow) -> ReleaseWindow:
        if not window.environments.exists():
            self.message_user(request, "This window lists no environment, so it opens for none.", messages.WARNING)
        return window


@admin.register(FreezePeriod)
class FreezePeriodAdmin(ServiceBackedAdmin):
    list_display = ["name", "start", "end", "reason", "created_by"]
    list_filter = ["environments", "services"]
    filter_horizontal = ["services", "environments"]
    search_fields = ["name", "reason"]
    fields = [*FREEZE_FIELDS, "created_by"]
    readonly_fields = ["created_by"]
    add_permission, change_permission = perms.ADD_FREEZE, perms.CHANGE_FREEZE

    def create(self, request, form):
        return services.freeze_create(actor=request.user, data=form_data(form, FREEZE_FIELDS))

    def update(self, request, obj, data):
        return services.freeze_update(freeze=obj, actor=request.user, data=data)
