"""Deployments in the browser: the list and each service's history, starting a deployment from a release (the
plan and the guards shown before it runs), and the live rollout page with its controls.

Every write calls the service the API calls; the live page follows the deployment's event stream
(``deployments.streaming``) and re-reads its server-rendered parts (``DeploymentLiveView``) when events arrive.
"""

from dataclasses import replace

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.views.generic import DetailView, FormView, View

from cmdb.models import Service
from deployments import selectors, services
from deployments.api.views import DeploymentViewSet, StepViewSet
from deployments.choices import STEP_OPEN_STATES, DeploymentState
from deployments.filtersets import DeploymentFilterSet
from deployments.forms import DATETIME_WIDGET, DeploymentStartForm
from deployments.models import Deployment, Step
from deployments.planning import phase_plan_text
from deployments.tables import DeploymentTable, progress_context
from rdm_site.exceptions import DomainError, InvalidInput, NotAllowed
from rdm_site.web import (
    ObjectDetailView,
    ObjectListView,
    RdmPermissionRequiredMixin,
    TransitionView,
    action_label,
    refusal_message,
    safe_next,
)
from releases.models import Release
from releases.selectors import release_current_package

# Before a rollout starts its page offers these from the start panel (with the guards), not as buttons.
STARTING_ACTIONS = ("schedule", "start")


class DeploymentListView(ObjectListView):
    queryset = selectors.deployment_browser_rows()
    filterset_class = DeploymentFilterSet
    table_class = DeploymentTable
    template_name = "deployments/deployment_list.html"
    create_url_name = "deployments:deployment_create"
    create_permission = services.RUN
    model_label = "deployment"


class ServiceDeploymentListView(DeploymentListView):
    """One service's deployment history, newest first."""

    def get_queryset(self):
        self.service = get_object_or_404(Service, pk=self.kwargs["pk"])
        return selectors.deployments_of_service(self.service)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["title"] = f"Deployments of {self.service}"
        return context


class DeploymentProgressView(RdmPermissionRequiredMixin, DetailView):
    """A deployment's state badge and progress bar, for the lists that follow it live."""

    permission_required = "deployments.view_deployment"
    queryset = selectors.with_progress(Deployment.objects.all())
    template_name = "deployments/inc/progress_parts.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(**progress_context(self.object), **kwargs)


class DeploymentCreateView(RdmPermissionRequiredMixin, FormView):
    """Step 1 of a start: choose; the plan is computed and stored, then shown on the deployment's page."""

    form_class = DeploymentStartForm
    template_name = "deployments/deployment_form.html"

    def has_permission(self):
        return services.may_plan_deployments(self.request.user)

    def dispatch(self, request, *args, **kwargs):
        release_id = request.POST.get("release") or request.GET.get("release")
        self.release = None
        if release_id:
            if not str(release_id).isdigit():
                raise Http404("No such release.")
            self.release = get_object_or_404(Release, pk=int(release_id))
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "release": self.release}

    def get_context_data(self, **kwargs):
        package = release_current_package(self.release) if self.release else None
        return super().get_context_data(release=self.release, package=package, title="Start a deployment", **kwargs)

    def form_valid(self, form):
        data = form.cleaned_data
        package = release_current_package(self.release) if self.release else None
        try:
            deployment = services.deployment_create(
                actor=self.request.user,
                process=data["process"],
                environment=data["environment"],
                model=data["model"],
                phase_plan=form.phase_plan(),
                package=package,
                change=data["change"],
                scheduled_for=data["scheduled_for"],
            )
        except NotAllowed:
            raise
        except InvalidInput as error:
            form.add_plan_problems(error.errors)
            return self.render_to_response(self.get_context_data(form=form), status=422)
        except DomainError as error:
            refusal_message(self.request, error)
            return self.render_to_response(self.get_context_data(form=form), status=422)
        messages.success(self.request, f"Planned {deployment}: check the plan and the guards, then start it.")
        return redirect(deployment.get_absolute_url())


class DeploymentDetailView(ObjectDetailView):
    """The rollout page: before the start, the plan and the guards; then the same page, live; at the end, its
    record."""

    queryset = selectors.with_progress(selectors.deployment_list())
    template_name = "deployments/deployment_detail.html"
    action_rules = services.DEPLOYMENT_ACTIONS
    viewset = DeploymentViewSet
    transition_url_name = "deployments:deployment_transition"
    with_events = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        deployment, user = self.object, self.request.user
        offered = context["actions"]["offered"]
        starting = [action for action in offered if action.name in STARTING_ACTIONS]
        going_back = selectors.last_good_package(deployment) if deployment.state == DeploymentState.SUCCEEDED else None
        shown = [_shown(action, going_back) for action in offered if action.name not in STARTING_ACTIONS]
        context["actions"]["offered"] = [action for action in shown if action is not None]
        if going_back is None:  # nothing ran before: there is no rollback to offer or to withhold
            withheld = context["actions"]["withheld"]
            context["actions"]["withheld"] = [action for action in withheld if action.label != ROLL_BACK_RELEASE]
        now = timezone.now()
        context.update(
            grid=selectors.rollout_grid(deployment),
            interventions=[
                (step, "answer" in services.step_available_actions(step, user))
                for step in selectors.waiting_interventions(deployment).select_related("target__ci", "deployment")
            ],
            starting={action.name: action for action in starting},
            may_discard="delete" in services.deployment_available_actions(deployment, user),
            started=next((event for event in context["timeline"] if event.action == "deployment.start"), None),
            elapsed=_elapsed(deployment, now),
            plan_text=phase_plan_text(deployment.phase_plan),
            now=now,
        )
        if starting:
            context["guard_rows"] = _guard_rows(deployment, now)
            context["schedule_widget"] = DATETIME_WIDGET.format_value(deployment.scheduled_for)
        if self.with_events:
            context["events"] = self._events(deployment, context["grid"])
        return context

    def _events(self, deployment: Deployment, grid) -> list:
        """The events list, newest first, each named as the grid names its wave or step."""
        events = selectors.deployment_events_newest(deployment)
        labels = _subjects(grid)
        for event in events:
            subject = labels.get(("step", event.step_id_ref)) or labels.get(("wave", event.wave_id_ref))
            event.subject = subject or "deployment"
            event.state_label = event.state.replace("_", " ")
        return events


def _guard_rows(deployment: Deployment, now) -> list[tuple]:
    """(guard, its answer for a start now, its answer at the scheduled time or None), row by row."""
    later = {}
    if deployment.scheduled_for:
        answers = selectors.deployment_guard_answers(deployment, deployment.scheduled_for, starting=False)
        later = {answer.name: answer for answer in answers}
    answers = selectors.deployment_guard_answers(deployment, now, starting=True)
    return [(answer.name, answer, later.get(answer.name)) for answer in answers]


def _subjects(grid) -> dict[tuple[str, int], str]:
    """What each wave and step of the grid is called in the events list."""
    labels = {}
    for row in grid:
        labels[("wave", row.wave.pk)] = f"Wave {row.wave.index + 1}: {row.wave.name}"
        for step in row.wave_steps:
            labels[("step", step.pk)] = step.name
        for cell in row.cells:
            for step in cell.steps:
                labels[("step", step.pk)] = f"{step.name} on {cell.name}"
    return labels


def _elapsed(deployment: Deployment, now) -> str:
    """Time since the start (until the end), as the page's clock shows it: "1 h 5 min", "3 min 20 s", "42 s"."""
    if deployment.started_at is None:
        return "—"
    seconds = max(0, round(((deployment.finished_at or now) - deployment.started_at).total_seconds()))
    hours, minutes = divmod(seconds // 60, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds % 60} s" if minutes else f"{seconds} s"


ROLL_BACK_RELEASE = action_label("roll_back_release")


def _shown(action, going_back):
    """Marking a rollout failed reads as such, and is drawn as the destructive action it is; rolling a release
    back names the version it goes back to (``going_back``, the last good package), and is not offered without
    one."""
    if action.name == "fail":
        return replace(action, label="Mark failed", destructive=True)
    if action.name == "roll_back_release":
        return replace(action, label=f"Roll back to {going_back.version}", destructive=True) if going_back else None
    return action


class DeploymentLiveView(DeploymentDetailView):
    """The live parts of the rollout page (header, controls, grid, interventions), re-read when events arrive."""

    template_name = "deployments/inc/live.html"
    with_events = False  # the page adds the events it receives itself


class DeploymentTransitionView(TransitionView):
    viewset = DeploymentViewSet


class StepTransitionView(TransitionView):
    """Answering a manual intervention."""

    viewset = StepViewSet


class DeploymentDiscardView(RdmPermissionRequiredMixin, View):
    """Discard a deployment that was planned and never started (its plan goes with it; the audit trail stays)."""

    permission_required = "deployments.view_deployment"
    http_method_names = ["post"]

    def post(self, request, pk):
        deployment = get_object_or_404(Deployment, pk=pk)
        label = str(deployment)
        try:
            services.deployment_delete(deployment=deployment, actor=request.user, reason=request.POST.get("reason", ""))
        except NotAllowed:
            raise
        except DomainError as error:
            refusal_message(request, error)
            return redirect(safe_next(request, deployment.get_absolute_url()))
        messages.success(request, f"Discarded {label}.")
        return redirect("deployments:deployment_list")


class StepLogsView(RdmPermissionRequiredMixin, DetailView):
    """A step's log lines after ``?after=<line id>``, and the poller that asks for the next ones while the step
    may still write (follow mode)."""

    permission_required = "deployments.view_steplog"
    template_name = "deployments/inc/step_logs.html"
    context_object_name = "step"

    def get_object(self, queryset=None):
        return get_object_or_404(
            Step.objects.select_related("target__ci"), pk=self.kwargs["step_pk"], deployment_id=self.kwargs["pk"]
        )

    def get_context_data(self, **kwargs):
        raw = self.request.GET.get("after", "0")
        after = int(raw) if raw.isdigit() and len(raw) < 19 else 0
        lines = selectors.step_logs_after(self.object, after)
        return super().get_context_data(
            lines=lines,
            after=lines[-1].pk if lines else after,
            first=after == 0,
            following=self.object.state in STEP_OPEN_STATES or bool(lines),
            url=reverse("deployments:step_logs", args=[self.object.deployment_id, self.object.pk]),
            **kwargs,
        )


urlpatterns = [
    path("deployments/", DeploymentListView.as_view(), name="deployment_list"),
    path("deployments/new/", DeploymentCreateView.as_view(), name="deployment_create"),
    path("deployments/<int:pk>/", DeploymentDetailView.as_view(), name="deployment_detail"),
    path("deployments/<int:pk>/live/", DeploymentLiveView.as_view(), name="deployment_live"),
    path("deployments/<int:pk>/progress/", DeploymentProgressView.as_view(), name="deployment_progress"),
    path("deployments/<int:pk>/do/<str:action>/", DeploymentTransitionView.as_view(), name="deployment_transition"),
    path("deployments/<int:pk>/discard/", DeploymentDiscardView.as_view(), name="deployment_discard"),
    path("deployments/<int:pk>/steps/<int:step_pk>/logs/", StepLogsView.as_view(), name="step_logs"),
    path("deployments/steps/<int:pk>/do/<str:action>/", StepTransitionView.as_view(), name="step_transition"),
    path("services/<int:pk>/deployments/", ServiceDeploymentListView.as_view(), name="service_deployments"),
]
