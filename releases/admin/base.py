"""What the release admins share."""

from rdm_site.admin_support import ServiceBackedAdmin


class RecordedElsewhereAdmin(ServiceBackedAdmin):
    """Rows written by the actions of another page (decisions, overrides, baselines): here they are only read."""

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def form_data(form, fields: tuple[str, ...]) -> dict:
    """What the form holds for the service's ``fields`` (a create service takes them all at once)."""
    return {name: form.cleaned_data[name] for name in fields if name in form.cleaned_data}
