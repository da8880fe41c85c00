"""Rolling back a release after it succeeded, from its deployment's page or from "what runs where": the form that
chooses the earlier package and says why (``deployments.redeploy`` decides)."""

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import path
from django.utils.functional import cached_property
from django.views import View

from deployments import redeploy, selectors, services
from deployments.forms import RedeployForm
from deployments.models import Deployment
from deployments.views.base import RecordActionFormView
from rdm_site.web import RdmPermissionRequiredMixin


class DeploymentRedeployView(RecordActionFormView):
    """Redeploy an earlier package in place of ``pk``, the deployment that runs there now."""

    queryset = Deployment.objects.select_related("service", "environment", "package__release")
    action_rules = services.DEPLOYMENT_ACTIONS
    action = "roll_back_release"
    form_class = RedeployForm
    title = "Redeploy an earlier version in place of {record}"
    submit_label = "Redeploy"
    done_message = "Started {record}: it rolls back the deployment it replaces."

    def _refused(self):
        refused = super()._refused()
        if refused is None and not self.packages:
            messages.info(
                self.request, f"No earlier package succeeded in {self.object.environment}: nothing to go back to."
            )
            return redirect(self.object.get_absolute_url())
        return refused

    @cached_property
    def packages(self) -> list:
        return selectors.redeployable_packages(self.object)

    def get_form(self, data=None):
        return self.form_class(data, packages=self.packages)

    def write(self, form):
        return redeploy.deployment_roll_back_release(
            deployment=self.object, actor=self.request.user, **form.cleaned_data
        )


class RunningRedeployView(RdmPermissionRequiredMixin, View):
    """From a cell of "what runs where": the redeployment form of the deployment that runs there now."""

    permission_required = "deployments.view_deployment"

    def get(self, request, service: int, environment: int):
        running = selectors.current_deployment(service, environment)
        if running is None:
            messages.info(request, "No package was deployed there by RDM: there is nothing to go back to.")
            return redirect("home")
        return redirect("deployments:deployment_redeploy", running.pk)


urlpatterns = [
    path("deployments/<int:pk>/redeploy/", DeploymentRedeployView.as_view(), name="deployment_redeploy"),
    path(
        "deployments/running/<int:service>/<int:environment>/redeploy/",
        RunningRedeployView.as_view(),
        name="running_redeploy",
    ),
]
