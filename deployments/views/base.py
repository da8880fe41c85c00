"""A form page for one action on one record (extend a period, edit an incident, correct its link), shared by the
deployments app's pages."""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.views.generic import TemplateView

from rdm_site.actions import ActionRule
from rdm_site.web import (
    RdmPermissionRequiredMixin,
    action_refused,
    safe_next,
    service_write,
    view_permission,
)


class RecordActionFormView(RdmPermissionRequiredMixin, TemplateView):
    """``GET`` shows the form, ``POST`` calls the service through ``write``: only for those the record's rule
    table lets take ``action`` (403 for the others); a record whose state refuses it sends back to its page
    with the reason. The service's refusals are shown on the form (next to their fields when they name one).
    """

    template_name = "deployments/record_form.html"
    queryset = None
    action_rules: dict[str, ActionRule] = {}
    action = ""
    form_class: type[forms.Form] = forms.Form
    title = ""  # "Extend {record}"
    submit_label = ""
    done_message = ""  # "Extended {record}."

    def get_permission_required(self):
        return [view_permission(self.queryset.model)]

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self.object = None

    def get(self, request, *args, **kwargs):
        refused = self._refused()
        return refused or self.render_to_response(self.get_context_data(form=self.get_form()))

    def post(self, request, *args, **kwargs):
        refused = self._refused()
        if refused:
            return refused
        form = self.get_form(request.POST)
        if form.is_valid():
            record = service_write(request, form, lambda: self.write(form))
            if record is not None:
                messages.success(request, self.done_message.format(record=record))
                return redirect(safe_next(request, record.get_absolute_url()))
        return self.render_to_response(self.get_context_data(form=form), status=422)

    def _refused(self):
        self.object = get_object_or_404(self.queryset, pk=self.kwargs["pk"])
        return action_refused(self.request, self.action_rules, self.action, self.object)

    def get_form(self, data=None) -> forms.Form:
        return self.form_class(data)

    def write(self, form):
        """Call the service with the form's data; return the record it wrote."""
        raise NotImplementedError

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            object=self.object,
            title=self.title.format(record=self.object),
            submit_label=self.submit_label,
            **kwargs,
        )
