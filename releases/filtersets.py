"""One FilterSet per release governance record, shared by the API lists and the browser lists."""

import django_filters
from django import forms
from django.db.models import Q
from django.utils import timezone

from rdm_site.filtersets import RdmFilterSet, ValuesFilter
from releases.choices import REVIEW_OPEN_STATES
from releases.models import (
    Approval,
    ChangeRecord,
    ChangeTemplate,
    FreezeOverride,
    FreezePeriod,
    KnowledgeArticle,
    PostImplementationReview,
    Release,
    ReleasePackage,
    ReleasePolicy,
    ReleaseWindow,
    TestRun,
)
from releases.selectors import releases_awaiting_decision_by

DATE_LOOKUPS = ["gte", "lt"]
# A yes/no filter that may be left out: "Any" rather than django-filter's "Unknown".
ANY_YES_NO = forms.Select(choices=[("", "Any"), ("true", "Yes"), ("false", "No")])


class ReleasePolicyFilterSet(RdmFilterSet):
    class Meta:
        model = ReleasePolicy
        fields = ["release_type", "active"]


class ReleaseWindowFilterSet(RdmFilterSet):
    class Meta:
        model = ReleaseWindow
        fields = ["active", "services", "environments", "time_zone"]


class FreezePeriodFilterSet(RdmFilterSet):
    """Freezes by scope, and by when they are in force (``start__lt`` / ``end__gte`` bound a period)."""

    class Meta:
        model = FreezePeriod
        fields = {"services": ["exact"], "environments": ["exact"], "start": DATE_LOOKUPS, "end": DATE_LOOKUPS}


class FreezeOverrideFilterSet(RdmFilterSet):
    class Meta:
        model = FreezeOverride
        fields = ["change", "freeze", "granted_by"]


class ReleaseFilterSet(RdmFilterSet):
    """Releases by state, type, policy, service, manager and planned start; ``awaiting_my_decision``: those
    the caller may approve or reject now and has not decided on yet (``releases_awaiting_decision_by``).
    """

    state = ValuesFilter(choices=Release._meta.get_field("state").choices)
    awaiting_my_decision = django_filters.BooleanFilter(
        label="Awaiting my decision", method="filter_awaiting_my_decision", widget=ANY_YES_NO
    )

    class Meta:
        model = Release
        fields = {
            "state": ["exact"],
            "release_type": ["exact"],
            "policy": ["exact"],
            "services": ["exact"],
            "release_manager": ["exact"],
            "planned_start": DATE_LOOKUPS,
        }

    def filter_awaiting_my_decision(self, queryset, name, value):
        user = getattr(self.request, "user", None)
        if value is None or user is None:
            return queryset
        awaiting = Q(pk__in=releases_awaiting_decision_by(user).order_by().values("pk"))
        return queryset.filter(awaiting) if value else queryset.exclude(awaiting)


class ReleasePackageFilterSet(RdmFilterSet):
    state = ValuesFilter(choices=ReleasePackage._meta.get_field("state").choices)

    class Meta:
        model = ReleasePackage
        fields = {"release": ["exact"], "state": ["exact"], "version": ["exact"], "built_by": ["exact"]}


class TestRunFilterSet(RdmFilterSet):
    __test__ = False  # a FilterSet, not a test, though pytest would collect it by its name

    class Meta:
        model = TestRun
        fields = {"package": ["exact"], "package__release": ["exact"], "suite": ["exact"], "run_at": DATE_LOOKUPS}


class ChangeRecordFilterSet(RdmFilterSet):
    state = ValuesFilter(choices=ChangeRecord._meta.get_field("state").choices)

    class Meta:
        model = ChangeRecord
        fields = {
            "state": ["exact"],
            "change_type": ["exact"],
            "risk": ["exact"],
            "release": ["exact"],
            "template": ["exact"],
            "services": ["exact"],
            "configuration_items": ["exact"],
            "requested_by": ["exact"],
            "planned_start": DATE_LOOKUPS,
            "planned_end": DATE_LOOKUPS,
        }


class ChangeTemplateFilterSet(RdmFilterSet):
    pre_approved = django_filters.BooleanFilter(
        field_name="approved_at", lookup_expr="isnull", exclude=True, label="Pre-approved"
    )

    class Meta:
        model = ChangeTemplate
        fields = ["active", "risk", "services"]


class ApprovalFilterSet(RdmFilterSet):
    withdrawn = django_filters.BooleanFilter(field_name="withdrawn_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Approval
        fields = ["release", "change", "approver", "decision"]


class ReviewFilterSet(RdmFilterSet):
    """Reviews by state, release, service, assignee, and due date; ``mine`` (assigned to the caller) and
    ``overdue`` (still to be written or reworked after the due date).
    """

    state = ValuesFilter(choices=PostImplementationReview._meta.get_field("state").choices)
    mine = django_filters.BooleanFilter(label="Assigned to me", method="filter_mine", widget=ANY_YES_NO)
    overdue = django_filters.BooleanFilter(label="Overdue", method="filter_overdue", widget=ANY_YES_NO)

    class Meta:
        model = PostImplementationReview
        fields = {
            "state": ["exact"],
            "release": ["exact"],
            "service": ["exact"],
            "owner": ["exact"],
            "due_on": DATE_LOOKUPS,
        }

    def filter_mine(self, queryset, name, value):
        user = getattr(self.request, "user", None)
        if value is None or user is None:
            return queryset
        mine = Q(owner_id=user.pk)
        return queryset.filter(mine) if value else queryset.exclude(mine)

    def filter_overdue(self, queryset, name, value):
        if value is None:
            return queryset
        overdue = Q(state__in=REVIEW_OPEN_STATES, due_on__lt=timezone.localdate())
        return queryset.filter(overdue) if value else queryset.exclude(overdue)


class KnowledgeArticleFilterSet(RdmFilterSet):
    class Meta:
        model = KnowledgeArticle
        fields = ["kind", "service", "release", "package", "review", "configuration_items"]
