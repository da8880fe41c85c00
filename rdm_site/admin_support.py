"""The admin as an interface to the services, for every app: saves, deletes and transitions call a service
with the signed-in user, the admin asks the service's own permission questions, and a refusal is shown on
the form that was typed (nothing lost) or as a message for an action (never an error page).
"""

from collections.abc import Callable

from django.contrib import admin, messages
from django.db import models
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.text import slugify

from rdm_site.domain import REASON_MAX_LENGTH
from rdm_site.exceptions import DomainError, InvalidInput, UnmetConditions

_REFUSAL = "_rdm_service_refusal"


def refusal_messages(error: DomainError) -> list[str]:
    """What to show for a refusal: each unmet condition or bad field on its own line, else the message."""
    if isinstance(error, UnmetConditions):
        return [str(error).split(": ", 1)[0] + ":", *error.conditions]
    if isinstance(error, InvalidInput) and len(error.errors) > 1:
        return error.errors
    return [str(error)]


def service_action(description: str, call: Callable, *, reason: str | None = None, permission: str | None = None):
    """An admin action applying ``call(obj, actor)`` (or ``call(obj, actor, reason)``) to each selected row.

    With ``reason`` (the question to ask), an intermediate page asks for it first. Each row's outcome is a
    message: done, or the service's refusal. ``permission`` hides the action from users who lack it (the
    service still decides).
    """

    def action(modeladmin, request, queryset):
        given = None
        if reason is not None:
            if "apply" not in request.POST:
                context = {
                    **modeladmin.admin_site.each_context(request),
                    "title": description,
                    "label": reason,
                    "queryset": queryset,
                    "action": action.__name__,
                    "opts": modeladmin.model._meta,
                    "max_length": REASON_MAX_LENGTH,
                }
                return TemplateResponse(request, "admin/rdm_site/reason_form.html", context)
            given = request.POST.get("reason", "")
        for obj in queryset:
            try:
                call(obj, request.user, given) if reason is not None else call(obj, request.user)
            except DomainError as error:
                modeladmin.message_user(request, f"{obj}: {' '.join(refusal_messages(error))}", messages.ERROR)
            else:
                modeladmin.message_user(request, f"{obj}: {description[0].lower()}{description[1:]} done.")
        return None

    action.__name__ = slugify(description).replace("-", "_")
    action.service_permission = permission
    return admin.action(description=description)(action)


class ServiceBackedAdmin(admin.ModelAdmin):
    """Saves and deletes call services instead of ``Model.save`` and ``Model.delete``.

    Subclasses implement ``create`` and ``update`` (and ``delete`` where removing is allowed) and name the
    permissions their services check in ``add_permission``, ``change_permission`` and ``delete_permission``
    (by default Django's own). Without ``delete``, nothing is deleted here.
    """

    add_permission: str | None = None
    change_permission: str | None = None
    delete_permission: str | None = None

    def create(self, request: HttpRequest, form) -> models.Model:
        raise NotImplementedError

    def update(self, request: HttpRequest, obj: models.Model, data: dict) -> models.Model:
        raise NotImplementedError

    delete = None  # def delete(self, request, obj) -> None, where the service allows removing

    # --- the services' own permission questions ---

    def has_add_permission(self, request, *args):
        if self.add_permission is None:
            return super().has_add_permission(request, *args)
        return request.user.has_perm(self.add_permission)

    def has_change_permission(self, request, obj=None):
        if self.change_permission is None:
            return super().has_change_permission(request, obj)
        return request.user.has_perm(self.change_permission)

    def has_delete_permission(self, request, obj=None):
        if self.delete is None:
            return False
        if self.delete_permission is None:
            return super().has_delete_permission(request, obj)
        return request.user.has_perm(self.delete_permission)

    def get_actions(self, request):
        """Actions built by ``service_action(..., permission=...)`` are offered to those who hold it. Django's
        bulk delete is not: it would report success for rows a service refused; delete from each row's page.
        """
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return {
            name: entry
            for name, entry in actions.items()
            if getattr(entry[0], "service_permission", None) is None
            or request.user.has_perm(entry[0].service_permission)
        }

    # --- saving and deleting through the services ---

    def save_model(self, request, obj, form, change):
        if change:
            data = {name: form.cleaned_data[name] for name in form.changed_data if name in form.cleaned_data}
            saved = self.update(request, obj, data)
        else:
            saved = self.create(request, form)
        _adopt(obj, saved)

    def save_related(self, request, form, formsets, change):
        # The services saved the many-to-many fields (and withdrew what an edit invalidates); inlines only.
        for formset in formsets:
            self.save_formset(request, form, formset, change=True)

    def delete_model(self, request, obj):
        self.delete(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete(request, obj)

    # --- a refusal keeps what was typed ---

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as error:
            if request.method != "POST":
                raise
            # The refused save was rolled back; show the same form again, bound to what was typed.
            setattr(request, _REFUSAL, error)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as error:
            self.message_user(request, " ".join(refusal_messages(error)), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        refusal = getattr(request, _REFUSAL, None)
        if refusal is None:
            return form

        class RefusedForm(form):
            def clean(self):
                cleaned = super().clean()
                for message in refusal_messages(refusal):
                    self.add_error(None, message)
                return cleaned

        return RefusedForm


class ReadOnlyInline(admin.TabularInline):
    """Rows shown on their parent's page and written elsewhere (by their own services or by RDM itself)."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def _adopt(obj: models.Model, saved: models.Model) -> None:
    """Make the admin's ``obj`` stand for the row a service saved, so inlines and the redirect use it."""
    obj.pk = saved.pk
    obj._state.adding = False
    obj._state.db = saved._state.db
    obj.refresh_from_db()
