"""Incidents in the browser: the list with its filters, opening one, its page (transitions with reasons, the
periods of Early Life Support it counts against, how it is linked to its deployment and the form that corrects
that link) and its edit form, all through ``deployments.incidents``.
"""

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import path
from django.views.generic import TemplateView

from deployments import incidents, selectors
from deployments.api.views import IncidentViewSet
from deployments.correlation import correlation_via
from deployments.els import els_running_for
from deployments.filtersets import IncidentPageFilterSet
from deployments.forms import IncidentCorrelationForm, IncidentForm, IncidentOpenForm
from deployments.tables import IncidentTable, incident_service
from deployments.views.base import RecordActionFormView
from rdm_site.web import ObjectDetailView, ObjectListView, RdmPermissionRequiredMixin, TransitionView, service_write

CORRECT = "correct_correlation"
EDITABLE = ("title", "description", "severity", "ci")


class IncidentListView(ObjectListView):
    queryset = selectors.incident_browser_rows()
    filterset_class = IncidentPageFilterSet
    table_class = IncidentTable
    create_url_name = "deployments:incident_create"
    create_permission = incidents.OPEN
    model_label = "incident"


class IncidentCreateView(RdmPermissionRequiredMixin, TemplateView):
    """Open an incident (those holding ``deployments.add_incident``); the page it lands on shows how it was
    linked to a deployment."""

    permission_required = incidents.OPEN
    template_name = "deployments/incident_form.html"

    def get(self, request, *args, **kwargs):
        return self.render_to_response(self.get_context_data(form=IncidentOpenForm()))

    def post(self, request, *args, **kwargs):
        form = IncidentOpenForm(request.POST)
        if form.is_valid():
            opened = service_write(
                request, form, lambda: incidents.incident_open(actor=request.user, **form.cleaned_data)
            )
            if opened is not None:
                incident, _new = opened
                messages.success(request, f"Opened {incident}.")
                return redirect(incident.get_absolute_url())
        return self.render_to_response(self.get_context_data(form=form), status=422)

    def get_context_data(self, **kwargs):
        return super().get_context_data(title="Open an incident", submit_label="Open the incident", **kwargs)


class IncidentDetailView(ObjectDetailView):
    """An incident: what and how bad, its timeline, the transitions its state and the user allow, the Early
    Life Support periods it counts against, and its link to a deployment: how it was made and, for those who
    may, the form that corrects it."""

    queryset = selectors.incident_browser_rows()
    template_name = "deployments/incident_detail.html"
    action_rules = incidents.INCIDENT_ACTIONS
    viewset = IncidentViewSet
    transition_url_name = "deployments:incident_transition"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        incident, user = self.object, self.request.user
        offered = context["actions"]["offered"]
        context["actions"]["offered"] = [action for action in offered if action.name != CORRECT]
        may = incidents.incident_available_actions(incident, user)
        context.update(
            service=incident_service(incident),
            via=correlation_via(incident),
            correction=next((event for event in context["timeline"] if event.action == f"incident.{CORRECT}"), None),
            els_periods=els_running_for(incident),
            may_edit="update" in may,
            correction_form=IncidentCorrelationForm(incident=incident) if CORRECT in may else None,
        )
        return context


class IncidentUpdateView(RecordActionFormView):
    """Correct what is known of an incident (until it is closed); its deployment is corrected with a reason on
    its own form."""

    template_name = "deployments/incident_form.html"
    queryset = selectors.incident_browser_rows()
    action_rules = incidents.INCIDENT_ACTIONS
    action = "update"
    title = "Edit {record}"
    submit_label = "Save"
    done_message = "Updated {record}."

    def get_form(self, data=None):
        return IncidentForm(data, initial={name: getattr(self.object, name) for name in EDITABLE})

    def write(self, form):
        changed = {name: form.cleaned_data[name] for name in form.changed_data}
        return incidents.incident_update(incident=self.object, actor=self.request.user, data=changed)


class IncidentCorrelationView(RecordActionFormView):
    """Correct which deployment caused an incident (or none did), with a reason; the change is audited."""

    queryset = selectors.incident_browser_rows()
    action_rules = incidents.INCIDENT_ACTIONS
    action = CORRECT
    title = "Correct the deployment of {record}"
    submit_label = "Correct the link"
    done_message = "Corrected the deployment of {record}."

    def get_form(self, data=None):
        return IncidentCorrelationForm(data, incident=self.object)

    def write(self, form):
        return incidents.incident_correlation_correct(
            incident=self.object, actor=self.request.user, **form.cleaned_data
        )


class IncidentTransitionView(TransitionView):
    viewset = IncidentViewSet


urlpatterns = [
    path("incidents/", IncidentListView.as_view(), name="incident_list"),
    path("incidents/new/", IncidentCreateView.as_view(), name="incident_create"),
    path("incidents/<int:pk>/", IncidentDetailView.as_view(), name="incident_detail"),
    path("incidents/<int:pk>/edit/", IncidentUpdateView.as_view(), name="incident_update"),
    path("incidents/<int:pk>/correct-link/", IncidentCorrelationView.as_view(), name="incident_correlation"),
    path("incidents/<int:pk>/do/<str:action>/", IncidentTransitionView.as_view(), name="incident_transition"),
]
