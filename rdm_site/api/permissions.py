from rest_framework.permissions import DjangoModelPermissions


class RdmModelPermissions(DjangoModelPermissions):
    """Model permissions that also guard reads: GET needs the role's ``view_`` permission."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }


class TransitionPermission(RdmModelPermissions):
    """For transition actions (``POST …/{id}/approve/``): signed in and may read the record; the service
    decides the rest and answers ``NotAllowed`` (403) with its reason. Model permissions cannot judge a
    transition: a Change Approver approves changes without holding ``add_changerecord``.
    """

    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return False
        queryset = self._queryset(view)
        return request.user.has_perms(self.get_required_permissions("GET", queryset.model))
