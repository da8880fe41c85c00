from django.contrib import admin

from rdm_site.models import AuditAnchor, AuditEvent, Notification


class EvidenceAdmin(admin.ModelAdmin):
    """Evidence is read, never edited: nobody, superusers included, may add, change or delete."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(EvidenceAdmin):
    list_display = ["id", "occurred_at", "actor_label", "action", "object_type", "object_id", "object_repr"]
    list_filter = ["action", "object_type", "actor_kind", "occurred_at"]
    search_fields = ["object_repr", "actor_label", "reason", "request_id"]


@admin.register(AuditAnchor)
class AuditAnchorAdmin(EvidenceAdmin):
    list_display = ["id", "recorded_at", "event_id", "event_count", "head_hash"]
    list_filter = ["recorded_at"]
    search_fields = ["head_hash"]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "recipient", "kind", "subject", "object_type", "object_id", "read_at", "emailed_at"]
    list_filter = ["kind", "created_at", "read_at"]
    search_fields = ["subject", "recipient__username"]
    readonly_fields = ["created_at", "emailed_at", "read_at"]
