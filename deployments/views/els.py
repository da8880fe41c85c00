"""Early Life Support in the browser: the board of periods (running first, each with its criteria, time left,
open incidents and actions), each period's page (criteria, incidents, staff, history, and the rollback offer
while a P1 is open), its extension form and its transitions, all through ``deployments.els``.
"""

from dataclasses import dataclass

from django.urls import path
from django.utils import timezone
from django_filters.views import FilterView

from deployments import els, services
from deployments.api.views import ElsViewSet
from deployments.choices import (
    ELS_TERMINAL_STATES,
    INCIDENT_OPEN_STATES,
    INCIDENT_SEVERITY_COLOURS,
    ElsState,
    ElsTransition,
    IncidentSeverity,
)
from deployments.filtersets import ElsFilterSet
from deployments.forms import ElsExtendForm
from deployments.models import EarlyLifeSupport
from deployments.views.base import RecordActionFormView
from rdm_site.web import (
    ObjectDetailView,
    OfferedAction,
    RdmPermissionRequiredMixin,
    TransitionView,
    record_actions,
    reverse_transition,
)

TRANSITION_URL = "deployments:els_transition"
# The board's tabs: (label, the ``state`` filter it sets; empty: every period not exited).
BOARD_TABS = (("Under way and scheduled", ""), ("Exited", ElsState.EXITED))


@dataclass(frozen=True)
class OpenIncidents:
    """How many open incidents of one severity count against a period."""

    severity: str
    label: str
    colour: str
    count: int

    @property
    def text(self) -> str:
        return f"{self.label} · {self.count}"

    @property
    def badge_colour(self) -> str:
        return self.colour if self.count else "gray"


def open_incidents(period: EarlyLifeSupport) -> list[OpenIncidents]:
    """The open incidents of a period read by ``els.els_board``, by severity, P1 first."""
    return [
        OpenIncidents(
            severity, label.split(" ")[0], INCIDENT_SEVERITY_COLOURS[severity], getattr(period, f"open_{severity}")
        )
        for severity, label in IncidentSeverity.choices
    ]


def _extend_offered(actions: dict) -> bool:
    """Take "extend" out of the buttons (it has a form of its own); whether it was offered."""
    offered = actions["offered"]
    actions["offered"] = [action for action in offered if action.name != ElsTransition.EXTEND]
    return len(actions["offered"]) < len(offered)


@dataclass(frozen=True)
class BoardCard:
    period: EarlyLifeSupport
    criteria: list[els.CriterionResult]
    open_incidents: list[OpenIncidents]
    actions: list[OfferedAction]
    may_extend: bool

    @property
    def exit_blocked(self) -> bool:
        return any(not result.met for result in self.criteria)


class ElsBoardView(RdmPermissionRequiredMixin, FilterView):
    """The periods under way first, then those scheduled, soonest end first; exited ones behind their tab.
    Its cost in queries does not grow with the number of periods (``els.els_board``)."""

    permission_required = "deployments.view_earlylifesupport"
    filterset_class = ElsFilterSet
    template_name = "deployments/els_board.html"
    paginate_by = 24

    def get_queryset(self):
        board = els.els_board()
        return board if self.request.GET.get("state") else board.exclude(state__in=ELS_TERMINAL_STATES)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user, url_of = self.request.user, lambda period: reverse_transition(TRANSITION_URL, period.pk)
        cards = []
        for period in context["object_list"]:
            actions = record_actions(els.ELS_ACTIONS, ElsViewSet, period, user, url_of(period))
            may_extend = _extend_offered(actions)
            cards.append(
                BoardCard(
                    period, els.els_criteria_evaluate(period), open_incidents(period), actions["offered"], may_extend
                )
            )
        state = self.request.GET.get("state", "")
        context.update(
            title="Early Life Support",
            cards=cards,
            tabs=[(label, value, value == state) for label, value in BOARD_TABS],
            now=timezone.now(),
        )
        return context


class ElsDetailView(ObjectDetailView):
    """A period: its exit criteria now, the incidents that count against it with their time to restore, the
    staff, its history, and its actions; while a P1 is open, the offer to redeploy the previous package."""

    queryset = els.els_board()
    template_name = "deployments/els_detail.html"
    action_rules = els.ELS_ACTIONS
    viewset = ElsViewSet
    transition_url_name = TRANSITION_URL

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        period, user = self.object, self.request.user
        incidents = list(
            els.els_incidents(period)
            .select_related("ci__service", "deployment__service", "deployment__environment")
            .order_by("-opened_at", "-id")
        )
        p1_open = any(
            incident.severity == IncidentSeverity.P1 and incident.state in INCIDENT_OPEN_STATES
            for incident in incidents
        )
        may_extend = _extend_offered(context["actions"])
        context.update(
            criteria=els.els_criteria_evaluate(period),
            incidents=incidents,
            open_incidents=open_incidents(period),
            extend_form=ElsExtendForm(initial={"new_end": period.planned_end}) if may_extend else None,
            rollback_offered=period.is_running and p1_open,
            now=timezone.now(),
        )
        if context["rollback_offered"]:
            context["rollback_link"] = els.previous_package_redeploy_link(period.deployment)
            context["may_redeploy"] = services.may_plan_deployments(user)
        return context


class ElsExtendView(RecordActionFormView):
    """Extend a running period: a later planned end and a reason; a refusal is shown next to its field."""

    queryset = els.els_list()
    action_rules = els.ELS_ACTIONS
    action = ElsTransition.EXTEND
    form_class = ElsExtendForm
    title = "Extend {record}"
    submit_label = "Extend"
    done_message = "Extended {record}."

    def get_form(self, data=None):
        return ElsExtendForm(data, initial={"new_end": self.object.planned_end})

    def write(self, form):
        return els.els_extend(els=self.object, actor=self.request.user, **form.cleaned_data)


class ElsTransitionView(TransitionView):
    viewset = ElsViewSet


urlpatterns = [
    path("els/", ElsBoardView.as_view(), name="els_board"),
    path("els/<int:pk>/", ElsDetailView.as_view(), name="els_detail"),
    path("els/<int:pk>/extend/", ElsExtendView.as_view(), name="els_extend"),
    path("els/<int:pk>/do/<str:action>/", ElsTransitionView.as_view(), name="els_transition"),
]
