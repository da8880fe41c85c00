from rdm_site.selectors import notifications_unread_count


def unread_notifications(request):
    """The unread count shown in the top bar of every page."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {"unread_notifications": notifications_unread_count(request.user)}
