from rdm_site.navigation import menu_for
from rdm_site.roles import roles_of
from rdm_site.selectors import notifications_unread_count


def navigation(request):
    """The top bar of every page: the menu this user may open, their roles and their unread count. Read once per
    request: a page may render more than one template with the request (django-tables2 renders a list's table so),
    and each would run this again."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    if not hasattr(request, "rdm_navigation"):
        request.rdm_navigation = {
            "menu": menu_for(user),
            "user_roles": roles_of(user),
            "unread_notifications": notifications_unread_count(user),
        }
    return request.rdm_navigation
