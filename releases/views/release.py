"""Release plans, their packages and the approvals given, in the browser: lists, the release page with its
go/no-go checklist, the plan's form, the package page, and the transitions of both (the API's services).
"""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.views.generic import TemplateView

from cmdb.choices import EnvironmentTier
from rdm_site.web import (
    ObjectDetailView,
    ObjectListView,
    RdmPermissionRequiredMixin,
    TransitionView,
    action_refused,
    service_write,
)
from releases import selectors, services
from releases.actions import PACKAGE_ACTIONS, RELEASE_ACTIONS
from releases.api.views import ReleasePackageViewSet, ReleaseViewSet
from releases.checklist import checklist_evaluate
from releases.choices import BaselineKind, ReleaseState
from releases.filtersets import ApprovalFilterSet, ReleaseFilterSet, ReleasePackageFilterSet
from releases.forms.release import ReleaseForm, release_unit_formset
from releases.models import PostImplementationReview
from releases.permissions import CHANGE_RELEASE
from releases.tables import ApprovalTable, PackageTable, ReleaseTable


class ReleaseListView(ObjectListView):
    queryset = selectors.releases_table()
    filterset_class = ReleaseFilterSet
    table_class = ReleaseTable
    create_url_name = "releases:release_create"
    create_permission = "releases.add_release"


def _latest_runs(package) -> list:
    """The latest run of each suite on the package, by suite name."""
    return sorted(selectors.latest_test_runs(package).values(), key=lambda run: run.suite)


# After the production deployment: the post-release baseline may be taken (the release closes with it).
BASELINE_AFTER_STATES = (ReleaseState.DEPLOYED, ReleaseState.EARLY_LIFE_SUPPORT, ReleaseState.IN_REVIEW)


def _closing(release, user) -> dict:
    """The review of the release and what closing it still needs: the page's "Review and closing" card."""
    post_release = release.baselines.filter(kind=BaselineKind.POST_RELEASE).select_related("baseline").first()
    review = PostImplementationReview.objects.filter(release=release).select_related("owner").first()
    return {
        "show_closing": review is not None or release.state in (*BASELINE_AFTER_STATES, ReleaseState.CLOSED),
        "review": review,
        "post_release_baseline": post_release,
        "may_take_baseline": post_release is None
        and release.state in BASELINE_AFTER_STATES
        and user.has_perm(CHANGE_RELEASE),
        "close_problems": services.release_close_problems(release) if release.state == ReleaseState.IN_REVIEW else [],
    }


class ReleaseDetailView(ObjectDetailView):
    """The release page: the plan, units, package, tests, rollback, the go/no-go checklist of a tier (production
    unless ``?tier=`` says otherwise), the decisions, and the buttons of the release's rule table.
    """

    queryset = selectors.release_details()
    template_name = "releases/release_detail.html"
    action_rules = RELEASE_ACTIONS
    viewset = ReleaseViewSet
    transition_url_name = "releases:release_transition"

    def get_context_data(self, **kwargs):
        release = self.object
        tier = self.request.GET.get("tier", EnvironmentTier.PRODUCTION)
        if tier not in EnvironmentTier.values:
            tier = EnvironmentTier.PRODUCTION
        current = selectors.release_current_package(release)
        package = selectors.package_details().get(pk=current.pk) if current else None
        update_rule = RELEASE_ACTIONS["update"]
        return super().get_context_data(
            **_closing(release, self.request.user),
            package=package,
            latest_runs=_latest_runs(package) if package else [],
            checklist=checklist_evaluate(release, tier),
            tiers=EnvironmentTier.choices,
            decisions=selectors.release_decisions(release),
            changes=release.changes.order_by("planned_start", "id"),
            may_edit=update_rule.legal(release) and not update_rule.who_problems(release, self.request.user),
            **kwargs,
        )


class ReleaseCreateView(RdmPermissionRequiredMixin, TemplateView):
    """A new release plan with its units, created in one call to ``release_create``."""

    permission_required = "releases.add_release"
    template_name = "releases/release_form.html"

    def get(self, request, *args, **kwargs):
        form = ReleaseForm(initial={"release_manager": request.user})
        return self.render_to_response(self.get_context_data(form=form, units=release_unit_formset()))

    def post(self, request, *args, **kwargs):
        form, units = ReleaseForm(request.POST), release_unit_formset(request.POST)
        if form.is_valid() and units.is_valid():
            release = service_write(
                request,
                form,
                lambda: services.release_create(actor=request.user, **form.plan_data(), units=units.units()),
            )
            if release is not None:
                messages.success(request, f"Release {release} created.")
                return redirect(release.get_absolute_url())
        return self.render_to_response(self.get_context_data(form=form, units=units), status=422)


class ReleaseUpdateView(RdmPermissionRequiredMixin, TemplateView):
    """Edit the plan and its units (change, add, remove) through ``release_update_with_units``, all saved or
    none; only those the rule table's ``update`` admits, and only before the deployment. The build pipeline
    may change the units too (``POST /api/v1/releases/{id}/units/``).
    """

    permission_required = "releases.view_release"
    template_name = "releases/release_form.html"

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.release = get_object_or_404(selectors.release_details(), pk=kwargs["pk"])
        refused = action_refused(request, RELEASE_ACTIONS, "update", self.release)
        return refused or super().dispatch(request, *args, **kwargs)

    def get(self, request, *args, **kwargs):
        form, units = ReleaseForm(instance=self.release), release_unit_formset(release=self.release)
        return self.render_to_response(self.get_context_data(form=form, units=units))

    def post(self, request, *args, **kwargs):
        form = ReleaseForm(request.POST, instance=self.release)
        units = release_unit_formset(request.POST, release=self.release)
        if form.is_valid() and units.is_valid():
            # the service re-reads the release under a lock: the values the form wrote into it do not count
            release = service_write(
                request,
                form,
                lambda: services.release_update_with_units(
                    release=self.release, actor=request.user, data=form.changed_plan(), **units.unit_edits()
                ),
            )
            if release is not None:
                messages.success(request, f"Release {release} updated.")
                return redirect(release.get_absolute_url())
        return self.render_to_response(self.get_context_data(form=form, units=units), status=422)

    def get_context_data(self, **kwargs):
        return super().get_context_data(release=self.release, **kwargs)


class ReleaseTransitionView(TransitionView):
    viewset = ReleaseViewSet


class PackageListView(ObjectListView):
    queryset = selectors.packages_list()
    filterset_class = ReleasePackageFilterSet
    table_class = PackageTable


class PackageDetailView(ObjectDetailView):
    """A package: its artifacts with digests, test runs, commits and work items, and who validated or rejected
    it; validate and reject come from the package rule table (never its builder).
    """

    queryset = selectors.package_details()
    template_name = "releases/package_detail.html"
    action_rules = PACKAGE_ACTIONS
    viewset = ReleasePackageViewSet
    transition_url_name = "releases:package_transition"

    def get_context_data(self, **kwargs):
        return super().get_context_data(latest_runs=_latest_runs(self.object), **kwargs)


class PackageTransitionView(TransitionView):
    viewset = ReleasePackageViewSet


class ApprovalListView(ObjectListView):
    queryset = selectors.approvals_list()
    filterset_class = ApprovalFilterSet
    table_class = ApprovalTable


urlpatterns = [
    path("releases/", ReleaseListView.as_view(), name="release_list"),
    path("releases/new/", ReleaseCreateView.as_view(), name="release_create"),
    path("releases/<int:pk>/", ReleaseDetailView.as_view(), name="release_detail"),
    path("releases/<int:pk>/edit/", ReleaseUpdateView.as_view(), name="release_update"),
    path("releases/<int:pk>/do/<str:action>/", ReleaseTransitionView.as_view(), name="release_transition"),
    path("packages/", PackageListView.as_view(), name="package_list"),
    path("packages/<int:pk>/", PackageDetailView.as_view(), name="package_detail"),
    path("packages/<int:pk>/do/<str:action>/", PackageTransitionView.as_view(), name="package_transition"),
    path("approvals/", ApprovalListView.as_view(), name="approval_list"),
]
