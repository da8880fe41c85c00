"""Post-implementation reviews: edited while open, submitted, accepted or returned, each through its service."""

from django.contrib import admin

from rdm_site.admin_support import ReadOnlyInline, ServiceBackedAdmin, service_action
from releases import permissions as perms
from releases import services
from releases.models import PostImplementationReview, ReviewActionItem


class ReviewActionItemInline(ReadOnlyInline):
    """Action items are given with an edit of the review (API or browser), which replaces them all."""

    model = ReviewActionItem
    fields = ["text", "owner", "due_on"]


@admin.register(PostImplementationReview)
class ReviewAdmin(ServiceBackedAdmin):
    list_display = ["__str__", "service", "owner", "state", "due_on", "submitted_by", "decided_by"]
    list_filter = ["state", "service"]
    search_fields = ["release__name", "release__version", "objectives"]
    fields = [
        "release",
        "service",
        "owner",
        "state",
        "due_on",
        "last_reminded_on",
        "timeline",
        "incidents",
        "checklist",
        "objectives",
        "objectives_met",
        "objectives_note",
        "went_well",
        "went_badly",
        "lessons",
        "submitted_by",
        "submitted_at",
        "decided_by",
        "decided_at",
        "decision_reason",
    ]
    readonly_fields = [
        "release",
        "service",
        "owner",
        "state",
        "due_on",
        "last_reminded_on",
        "timeline",
        "incidents",
        "checklist",
        "submitted_by",
        "submitted_at",
        "decided_by",
        "decided_at",
        "decision_reason",
    ]
    inlines = [ReviewActionItemInline]
    change_permission = perms.WRITE_REVIEW
    actions = [
        service_action("Submit", lambda r, u: services.review_submit(review=r, actor=u), permission=perms.WRITE_REVIEW),
        service_action(
            "Accept",
            lambda r, u, reason: services.review_accept(review=r, actor=u, reason=reason),
            reason="Any comment on accepting it?",
            permission=perms.DECIDE_REVIEW,
        ),
        service_action(
            "Return for rework",
            lambda r, u, reason: services.review_return(review=r, actor=u, reason=reason),
            reason="What is to be reworked?",
            permission=perms.DECIDE_REVIEW,
        ),
    ]

    def has_add_permission(self, request, *args):
        return False  # a review falls due when early life support exits

    def update(self, request, obj, data):
        return services.review_update(review=obj, actor=request.user, data=data)
