"""The CMDB in the browser: services, configuration items (lifecycle, relationships, impact, import),
environments and baselines (and their diffs). Every write calls the ``cmdb.services`` service the API calls
(``cmdb.api.views``), which decides who may.
"""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect
from django.views.generic import TemplateView
from django_tables2 import RequestConfig

from cmdb import permissions as perms
from cmdb import selectors, services
from cmdb.actions import CI_ACTIONS
from cmdb.api.serializers import ImpactQuerySerializer
from cmdb.api.views import ConfigurationItemViewSet
from cmdb.choices import CiType
from cmdb.exceptions import ImportFailed
from cmdb.filtersets import BaselineFilterSet, ConfigurationItemFilterSet, EnvironmentFilterSet, ServiceFilterSet
from cmdb.forms import BaselineDiffForm, BaselineTakeForm, CiImportForm, ServiceForm
from cmdb.importing import COLUMNS
from cmdb.models import Baseline, ConfigurationItem, Service
from cmdb.tables import BaselineItemTable, BaselineTable, ConfigurationItemTable, EnvironmentTable, ServiceTable
from rdm_site.domain import ensure_allowed
from rdm_site.exceptions import DomainError, NotAllowed
from rdm_site.web import (
    ObjectDetailView,
    ObjectListView,
    RdmPermissionRequiredMixin,
    TransitionView,
    refusal_message,
    view_permission,
)

# How many of a service's releases its page lists, latest first.
SERVICE_RELEASES_SHOWN = 5
BASELINE_ITEMS_PER_PAGE = 50

IMPORT_SAMPLE = """name,environment,type,version,state,service,owner,attributes,depends_on,runs_on
orders-db,production,database,PostgreSQL 17,live,Payments,dan.deploy,"{""engine"": ""postgresql""}",,db-server-1
payments-api,production,application,2.4.0,live,Payments,oscar.owner,,orders-db,app-cluster
"""


# --- services -------------------------------------------------------------------------------


class ServiceListView(ObjectListView):
    queryset = selectors.service_list()
    filterset_class = ServiceFilterSet
    table_class = ServiceTable


class ServiceDetailView(ObjectDetailView):
    """A service: who owns it and who is told, how critical it is, its CIs per environment, its releases."""

    queryset = selectors.service_list()
    template_name = "cmdb/service_detail.html"

    def get_context_data(self, **kwargs):
        service = self.object
        # Releases point at services (``releases`` depends on ``cmdb``): read through the reverse relation.
        releases = service.releases.order_by("-id")[:SERVICE_RELEASES_SHOWN]
        return super().get_context_data(
            cis=selectors.service_cis(service),
            releases=releases,
            may_edit=services.service_update_problem(self.request.user, service) is None,
            **kwargs,
        )


class ServiceUpdateView(RdmPermissionRequiredMixin, TemplateView):
    """Edit a service through ``service_update``; those it would refuse get 403 with its reason."""

    template_name = "cmdb/service_form.html"

    def get_permission_required(self):
        return [view_permission(Service)]

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.service = get_object_or_404(selectors.service_list(), pk=kwargs["pk"])
        ensure_allowed(services.service_update_problem(request.user, self.service))
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, *args, **kwargs):
        return self.render_to_response(self.get_context_data(form=ServiceForm(instance=self.service)))

    def post(self, request, *args, **kwargs):
        form = ServiceForm(request.POST, instance=self.service)
        if form.is_valid():
            try:  # the service re-reads the row under a lock: what the form wrote into its copy does not count
                service = services.service_update(service=self.service, actor=request.user, data=form.update_data())
            except NotAllowed:
                raise
            except DomainError as error:
                refusal_message(request, error)
            else:
                messages.success(request, f"Service {service.name} saved.")
                return redirect(service.get_absolute_url())
        return self.render_to_response(self.get_context_data(form=form), status=422)

    def get_context_data(self, **kwargs):
        return super().get_context_data(service=self.service, **kwargs)


# --- configuration items --------------------------------------------------------------------


class ConfigurationItemListView(ObjectListView):
    queryset = selectors.ci_list()
    filterset_class = ConfigurationItemFilterSet
    table_class = ConfigurationItemTable
    template_name = "cmdb/configurationitem_list.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(may_import=self.request.user.has_perm(perms.IMPORT_CIS), **kwargs)


class ConfigurationItemDetailView(ObjectDetailView):
    """A CI: what it is, its attributes, its relationships both ways, and its lifecycle as buttons."""

    queryset = selectors.ci_list()
    template_name = "cmdb/configurationitem_detail.html"
    action_rules = CI_ACTIONS
    viewset = ConfigurationItemViewSet
    transition_url_name = "cmdb:ci_transition"

    def get_context_data(self, **kwargs):
        ci = self.object
        relationships = list(selectors.ci_relationships(ci))
        return super().get_context_data(
            outgoing=[relationship for relationship in relationships if relationship.source_id == ci.pk],
            incoming=[relationship for relationship in relationships if relationship.target_id == ci.pk],
            **kwargs,
        )


class ConfigurationItemTransitionView(TransitionView):
    viewset = ConfigurationItemViewSet


IMPACT_GRAPH_NODES = 200  # the graph draws the nearest ones; more is a hairball that takes seconds to lay out
IMPACT_TABLE_ROWS = 50


class ConfigurationItemImpactView(RdmPermissionRequiredMixin, TemplateView):
    """What is hurt when a CI breaks, to ``max_depth`` hops: the totals and every service, a graph of the
    nearest CIs (cytoscape.js) and a table of them all, a page at a time, that says the same without
    JavaScript.
    """

    template_name = "cmdb/configurationitem_impact.html"

    def get_permission_required(self):
        return [view_permission(ConfigurationItem)]

    def get_context_data(self, **kwargs):
        ci = get_object_or_404(selectors.ci_list(), pk=kwargs["pk"])
        given = ImpactQuerySerializer(data=self.request.GET)  # the API's ``max_depth``, checked the same way
        if given.is_valid():
            max_depth, depth_problems = given.validated_data["max_depth"], []
        else:
            max_depth, depth_problems = given.fields["max_depth"].default, given.errors["max_depth"]
        number = _page_number(self.request.GET.get("page"))
        # the nearest CIs up to the page's last row: each one's shortest paths run among them
        graph = selectors.ci_impact_graph(
            ci, max_depth=max_depth, nearest=max(IMPACT_GRAPH_NODES, number * IMPACT_TABLE_ROWS)
        )
        page = Paginator(range(graph.impact.ci_count), IMPACT_TABLE_ROWS).get_page(number)
        return super().get_context_data(
            object=ci,
            graph=graph,
            rows=graph.steps[page.start_index() - 1 : page.end_index()],
            page_obj=page,
            graph_nodes=min(IMPACT_GRAPH_NODES, graph.impact.ci_count),
            max_depth=max_depth,
            depth_problems=depth_problems,
            graph_data=impact_graph_data(graph, IMPACT_GRAPH_NODES),
            **kwargs,
        )


def _page_number(given: str | None) -> int:
    """A page number from the query string: 1 when missing or not a positive number."""
    try:
        return max(int(given or 1), 1)
    except ValueError:
        return 1


def impact_graph_data(graph: selectors.ImpactGraph, nodes: int) -> dict:
    """The nearest ``nodes`` CIs of the impact graph as the page's script draws it: nodes (the broken CI
    first) and the edges between them."""

    def node(ci: ConfigurationItem, depth: int) -> dict:
        return {
            "id": str(ci.pk),
            "name": ci.name,
            "type": ci.get_ci_type_display(),
            "service": ci.service.name if ci.service else "",
            "depth": depth,
            "url": ci.get_absolute_url(),
        }

    steps = graph.steps[:nodes]
    drawn = {graph.root.pk, *(step.ci.pk for step in steps)}
    return {
        "nodes": [node(graph.root, 0), *(node(step.ci, step.depth) for step in steps)],
        "edges": [
            {
                "id": str(relationship.pk),
                "source": str(relationship.source_id),
                "target": str(relationship.target_id),
                "kind": relationship.get_kind_display(),
            }
            for relationship in graph.relationships
            if relationship.source_id in drawn and relationship.target_id in drawn
        ],
    }


class ConfigurationItemImportView(RdmPermissionRequiredMixin, TemplateView):
    """``ci_import`` from an uploaded CSV or JSON file: all or nothing, every bad row listed with its place."""

    template_name = "cmdb/configurationitem_import.html"
    permission_required = perms.IMPORT_CIS

    def get(self, request, *args, **kwargs):
        return self.render_to_response(self.get_context_data(form=CiImportForm()))

    def post(self, request, *args, **kwargs):
        form = CiImportForm(request.POST, request.FILES)
        problems = []
        if form.is_valid():
            try:
                result = services.ci_import(source=form.source, file_format=form.file_format, actor=request.user)
            except NotAllowed:
                raise
            except ImportFailed as failed:
                problems = failed.errors
            except DomainError as error:
                refusal_message(request, error)
            else:
                messages.success(
                    request,
                    f"Imported {form.cleaned_data['file'].name}: {len(result.created)} CIs created, "
                    f"{len(result.updated)} updated, {len(result.unchanged)} unchanged; "
                    f"{len(result.relationships_added)} relationships added.",
                )
                return redirect("cmdb:ci_list")
        return self.render_to_response(self.get_context_data(form=form, problems=problems), status=422)

    def get_context_data(self, **kwargs):
        return super().get_context_data(columns=COLUMNS, ci_types=CiType.values, sample=IMPORT_SAMPLE, **kwargs)


# --- environments and baselines --------------------------------------------------------------


class EnvironmentListView(ObjectListView):
    queryset = selectors.environment_list()
    filterset_class = EnvironmentFilterSet
    table_class = EnvironmentTable


class BaselineListView(ObjectListView):
    queryset = selectors.baseline_list()
    filterset_class = BaselineFilterSet
    table_class = BaselineTable
    template_name = "cmdb/baseline_list.html"
    create_url_name = "cmdb:baseline_create"
    create_permission = perms.ADD_BASELINE

    def get_context_data(self, **kwargs):
        return super().get_context_data(diff_form=BaselineDiffForm(), **kwargs)


class BaselineDetailView(ObjectDetailView):
    """A baseline: every CI as it was when it was taken."""

    queryset = selectors.baseline_list()
    template_name = "cmdb/baseline_detail.html"

    def get_context_data(self, **kwargs):
        items = BaselineItemTable(self.object.items.all())
        RequestConfig(self.request, paginate={"per_page": BASELINE_ITEMS_PER_PAGE}).configure(items)
        return super().get_context_data(
            items=items, diff_form=BaselineDiffForm(initial={"before": self.object}), **kwargs
        )


class BaselineDiffView(RdmPermissionRequiredMixin, TemplateView):
    """Two baselines side by side: CIs added, removed, and each changed field from its old to its new value."""

    template_name = "cmdb/baseline_diff.html"

    def get_permission_required(self):
        return [view_permission(Baseline)]

    def get_context_data(self, **kwargs):
        form = BaselineDiffForm(self.request.GET or None)
        diff = None
        if form.is_valid():
            diff = selectors.baseline_diff(form.cleaned_data["before"], form.cleaned_data["after"])
        return super().get_context_data(form=form, diff=diff, **kwargs)


class BaselineCreateView(RdmPermissionRequiredMixin, TemplateView):
    """Take a baseline of a service's or an environment's CIs through ``baseline_take``."""

    template_name = "cmdb/baseline_form.html"
    permission_required = perms.ADD_BASELINE

    def get(self, request, *args, **kwargs):
        return self.render_to_response(self.get_context_data(form=BaselineTakeForm()))

    def post(self, request, *args, **kwargs):
        form = BaselineTakeForm(request.POST)
        if form.is_valid():
            try:
                baseline = services.baseline_take(actor=request.user, **form.take_data())
            except NotAllowed:
                raise
            except DomainError as error:
                refusal_message(request, error)
            else:
                messages.success(request, f"Baseline {baseline.name} taken: {baseline.scope}.")
                return redirect(baseline.get_absolute_url())
        return self.render_to_response(self.get_context_data(form=form), status=422)
