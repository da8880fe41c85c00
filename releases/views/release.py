"""Release plans, their packages and the approvals given, in the browser."""

from django.urls import path

from rdm_site.web import ObjectListView
from releases import selectors
from releases.filtersets import ApprovalFilterSet, ReleaseFilterSet, ReleasePackageFilterSet
from releases.models import Release
from releases.tables import ApprovalTable, PackageTable, ReleaseTable


class ReleaseListView(ObjectListView):
    queryset = Release.objects.select_related("release_manager").prefetch_related("services").order_by("-created")
    filterset_class = ReleaseFilterSet
    table_class = ReleaseTable


class PackageListView(ObjectListView):
    queryset = selectors.packages_list()
    filterset_class = ReleasePackageFilterSet
    table_class = PackageTable


class ApprovalListView(ObjectListView):
    queryset = selectors.approvals_list()
    filterset_class = ApprovalFilterSet
    table_class = ApprovalTable


urlpatterns = [
    path("releases/", ReleaseListView.as_view(), name="release_list"),
    path("packages/", PackageListView.as_view(), name="package_list"),
    path("approvals/", ApprovalListView.as_view(), name="approval_list"),
]
