"""Release policies, windows, freezes and freeze overrides, in the browser: lists, detail pages (a window's
rule in words and its next openings in its own zone and in UTC), and the forms of those who write the rules
(the API's services ``policy_*``, ``window_*``, ``freeze_*``).
"""

from datetime import datetime

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils import timezone
from django.views.generic import TemplateView

from rdm_site.web import (
    ObjectDetailView,
    ObjectListView,
    RdmPermissionRequiredMixin,
    service_write,
)
from releases import permissions as perms
from releases import recurrence, selectors, services
from releases.choices import GateCode
from releases.filtersets import (
    FreezeOverrideFilterSet,
    FreezePeriodFilterSet,
    ReleasePolicyFilterSet,
    ReleaseWindowFilterSet,
)
from releases.forms.policy import FreezeForm, PolicyForm, WindowForm
from releases.models import FreezePeriod, ReleasePolicy, ReleaseWindow
from releases.tables import FreezeOverrideTable, FreezeTable, PolicyTable, WindowTable

NEXT_OCCURRENCES = 5

_DAYS = {
    "MO": "Monday", "TU": "Tuesday", "WE": "Wednesday", "TH": "Thursday", "FR": "Friday", "SA": "Saturday",
    "SU": "Sunday",
}  # fmt: skip
_ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last", -2: "second-to-last"}
_UNITS = {"DAILY": "day", "WEEKLY": "week", "MONTHLY": "month", "YEARLY": "year"}
_MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _day(code: str) -> str:
    """``TU`` → Tuesday, ``-1FR`` → the last Friday, ``2MO`` → the second Monday."""
    ordinal, name = code[:-2], _DAYS.get(code[-2:], code)
    if not ordinal:
        return name
    number = int(ordinal)
    return f"the {_ORDINALS.get(number, f'{number}th')} {name}"


def rrule_in_words(rule: str) -> str:
    """An RFC 5545 RRULE as a sentence ("every week on Tuesday and Thursday"); parts it does not know are
    shown as written, so nothing is hidden.
    """
    parts = dict(part.split("=", 1) for part in recurrence.normalise_rrule(rule).split(";") if "=" in part)
    interval = int(parts.pop("INTERVAL", "1"))
    unit = _UNITS.get(parts.pop("FREQ", ""), "period")
    words = [f"every {unit}" if interval == 1 else f"every {interval} {unit}s"]
    if "BYDAY" in parts:
        words.append("on " + _and([_day(code) for code in parts.pop("BYDAY").split(",")]))
    if "BYMONTHDAY" in parts:
        words.append("on day " + _and(parts.pop("BYMONTHDAY").split(",")) + " of the month")
    if "BYMONTH" in parts:
        words.append("in " + _and([_MONTHS[int(month) - 1] for month in parts.pop("BYMONTH").split(",")]))
    if "BYSETPOS" in parts:
        words.append(f"(occurrence {parts.pop('BYSETPOS')} of each period)")
    if "COUNT" in parts:
        words.append(f"{parts.pop('COUNT')} times")
    if "UNTIL" in parts:
        words.append(f"until {parts.pop('UNTIL')}")
    words += [f"{key}={value}" for key, value in parts.items()]
    return " ".join(words)


def next_occurrences(window: ReleaseWindow, after: datetime, count: int = NEXT_OCCURRENCES) -> list[dict]:
    """The window's next openings, each in the window's own zone and in UTC."""
    tz = recurrence.zone(window.time_zone)
    found = []
    while len(found) < count and (occurrence := window.next_occurrence(after)) is not None:
        found.append(
            {
                "local_start": occurrence.start.astimezone(tz),
                "local_end": occurrence.end.astimezone(tz),
                "start": occurrence.start,
                "end": occurrence.end,
            }
        )
        after = occurrence.start + (occurrence.end - occurrence.start) / 2  # past this one's start
    return found


class PolicyListView(ObjectListView):
    queryset = selectors.policies_list()
    filterset_class = ReleasePolicyFilterSet
    table_class = PolicyTable
    create_url_name = "releases:policy_create"
    create_permission = perms.ADD_POLICY


class PolicyDetailView(ObjectDetailView):
    """A policy: approvals and who gives them, the gates each tier requires, lead time, tests, ELS defaults."""

    queryset = selectors.policies_list()
    template_name = "releases/policy_detail.html"

    def get_context_data(self, **kwargs):
        policy = self.object
        gates = [
            (tier, [GateCode(code).label if code in GateCode.values else code for code in codes])
            for tier, codes in sorted(policy.gates_required.items())
        ]
        return super().get_context_data(
            gates=gates,
            may_edit=self.request.user.has_perm(perms.CHANGE_POLICY),
            releases=policy.releases.order_by("-created")[:10],
            **kwargs,
        )


class WindowListView(ObjectListView):
    queryset = selectors.windows_list()
    filterset_class = ReleaseWindowFilterSet
    table_class = WindowTable
    create_url_name = "releases:window_create"
    create_permission = perms.ADD_WINDOW


class WindowDetailView(ObjectDetailView):
    """A window: its rule in words and as RFC 5545, and its next openings in its own zone and in UTC."""

    queryset = selectors.windows_list()
    template_name = "releases/window_detail.html"

    def get_context_data(self, **kwargs):
        window = self.object
        return super().get_context_data(
            rule_in_words=rrule_in_words(window.rrule),
            occurrences=next_occurrences(window, timezone.now()) if window.active else [],
            may_edit=self.request.user.has_perm(perms.CHANGE_WINDOW),
            **kwargs,
        )


class FreezeListView(ObjectListView):
    queryset = selectors.freezes_list()
    filterset_class = FreezePeriodFilterSet
    table_class = FreezeTable
    create_url_name = "releases:freeze_create"
    create_permission = perms.ADD_FREEZE


class FreezeDetailView(ObjectDetailView):
    """A freeze: when, why, the services and environments it covers, and the overrides granted through it."""

    queryset = selectors.freezes_list()
    template_name = "releases/freeze_detail.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            overrides=self.object.overrides.select_related("change", "granted_by").order_by("-granted_at"),
            may_edit=self.request.user.has_perm(perms.CHANGE_FREEZE),
            **kwargs,
        )


class FreezeOverrideListView(ObjectListView):
    queryset = selectors.freeze_overrides_list()
    filterset_class = FreezeOverrideFilterSet
    table_class = FreezeOverrideTable


class RuleFormView(RdmPermissionRequiredMixin, TemplateView):
    """Create (no ``pk``) or edit a policy, window or freeze through its service; the service's refusals are
    placed next to the fields they name.
    """

    template_name = "releases/policy_form.html"
    model = None
    form_class = None
    create_service = None
    update_service = None
    record_argument = ""
    create_permission = ""
    change_permission = ""
    list_url_name = ""

    def get_permission_required(self):
        return [self.change_permission if "pk" in self.kwargs else self.create_permission]

    def record(self):
        if "pk" not in self.kwargs:
            return None
        return get_object_or_404(self.model._default_manager, pk=self.kwargs["pk"])

    def get(self, request, *args, **kwargs):
        return self.render_form(self.form_class(instance=self.record()), status=200)

    def post(self, request, *args, **kwargs):
        record = self.record()
        form = self.form_class(request.POST, instance=record)
        if form.is_valid():
            saved = service_write(request, form, lambda: self.save(record, form))
            if saved is not None:
                messages.success(request, f"{saved} saved.")
                return redirect(saved.get_absolute_url())
        return self.render_form(form, status=422)

    def save(self, record, form):
        if record is None:
            return self.create_service(actor=self.request.user, data=form.service_data())
        return self.update_service(
            **{self.record_argument: record}, actor=self.request.user, data=form.service_data(changed_only=True)
        )

    def render_form(self, form, status: int):
        meta = self.model._meta
        record = form.instance if form.instance.pk else None
        context = self.get_context_data(form=form, record=record, kind=meta.verbose_name, list_url=self.list_url_name)
        return self.render_to_response(context, status=status)


class PolicyFormView(RuleFormView):
    model, form_class, record_argument = ReleasePolicy, PolicyForm, "policy"
    create_service, update_service = staticmethod(services.policy_create), staticmethod(services.policy_update)
    create_permission, change_permission = perms.ADD_POLICY, perms.CHANGE_POLICY
    list_url_name = "releases:policy_list"


class WindowFormView(RuleFormView):
    model, form_class, record_argument = ReleaseWindow, WindowForm, "window"
    create_service, update_service = staticmethod(services.window_create), staticmethod(services.window_update)
    create_permission, change_permission = perms.ADD_WINDOW, perms.CHANGE_WINDOW
    list_url_name = "releases:window_list"


class FreezeFormView(RuleFormView):
    model, form_class, record_argument = FreezePeriod, FreezeForm, "freeze"
    create_service, update_service = staticmethod(services.freeze_create), staticmethod(services.freeze_update)
    create_permission, change_permission = perms.ADD_FREEZE, perms.CHANGE_FREEZE
    list_url_name = "releases:freeze_list"


urlpatterns = [
    path("policies/", PolicyListView.as_view(), name="policy_list"),
    path("policies/new/", PolicyFormView.as_view(), name="policy_create"),
    path("policies/<int:pk>/", PolicyDetailView.as_view(), name="policy_detail"),
    path("policies/<int:pk>/edit/", PolicyFormView.as_view(), name="policy_update"),
    path("windows/", WindowListView.as_view(), name="window_list"),
    path("windows/new/", WindowFormView.as_view(), name="window_create"),
    path("windows/<int:pk>/", WindowDetailView.as_view(), name="window_detail"),
    path("windows/<int:pk>/edit/", WindowFormView.as_view(), name="window_update"),
    path("freezes/", FreezeListView.as_view(), name="freeze_list"),
    path("freezes/new/", FreezeFormView.as_view(), name="freeze_create"),
    path("freezes/<int:pk>/", FreezeDetailView.as_view(), name="freeze_detail"),
    path("freezes/<int:pk>/edit/", FreezeFormView.as_view(), name="freeze_update"),
    path("freeze-overrides/", FreezeOverrideListView.as_view(), name="freezeoverride_list"),
]
