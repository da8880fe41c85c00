from rest_framework.permissions import DjangoModelPermissions


class RdmModelPermissions(DjangoModelPermissions):
    """Model permissions that also guard reads: GET needs the role's ``view_`` permission."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }
