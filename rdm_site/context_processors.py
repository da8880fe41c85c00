from rdm_site.navigation import menu_for
from rdm_site.roles import roles_of
from rdm_site.selectors import notifications_unread_count


def navigation(request):
    """The top bar of every page: the menu this user may open, their roles and their unread count."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "menu": menu_for(user),
        "user_roles": roles_of(user),
        "unread_notifications": notifications_unread_count(user),
    }
