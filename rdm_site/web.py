"""What every browser page shares: the permission check, lists from the API's FilterSets, detail pages whose
buttons come from the record's action rule table, and transitions that take the API's input and call the
API's service, so the browser, the API and the admin cannot disagree.

Refusals are mapped once: ``NotAllowed`` answers 403 with its reason (a forged POST changes nothing), every
other domain error becomes a message on the record's page that lists each unmet condition.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.generic import DetailView, View
from django_filters.views import FilterView
from django_tables2 import SingleTableMixin

from rdm_site.actions import ActionRule, action_ensure
from rdm_site.api.viewsets import viewset_transition
from rdm_site.exceptions import DomainError, InvalidInput, NotAllowed, UnmetConditions
from rdm_site.pagination import ListPaginator, cursor_arguments
from rdm_site.selectors import audit_events_for

T = TypeVar("T")

# Actions that undo or stop something: drawn as red buttons.
DESTRUCTIVE_ACTIONS = frozenset(
    {
        "reject",
        "cancel",
        "mark_failed",
        "mark_rolled_back",
        "retire",
        "abort",
        "roll_back",
        "revoke",
        "withdraw",
        "return_",
    }
)


class RdmPermissionRequiredMixin(LoginRequiredMixin, PermissionRequiredMixin):
    """Anonymous visitors go to the sign-in page; signed-in users without the permission get 403."""

    def handle_no_permission(self):
        if self.request.user.is_authenticated:
            self.raise_exception = True
        return super().handle_no_permission()


def view_permission(model) -> str:
    return f"{model._meta.app_label}.view_{model._meta.model_name}"


def refusal_message(request, error: DomainError) -> None:
    """A domain refusal as an error message: the reason, then each unmet condition or input problem."""
    if isinstance(error, UnmetConditions):
        summary, details = str(error).split(": ", 1)[0], error.conditions
    elif isinstance(error, InvalidInput) and len(error.errors) > 1:
        summary, details = "The input was refused", error.errors
    else:
        summary, details = str(error), []
    messages.error(request, summary, extra_tags="refusal")
    for detail in details:
        messages.error(request, detail, extra_tags="condition")


def action_refused(request, rules: dict[str, ActionRule], action: str, record):
    """None when the record's rule table lets the user take ``action`` now. A user who may not gets 403
    (``NotAllowed`` propagates); a state that does not allow it sends back to the record's page with the reason.
    """
    try:
        action_ensure(rules, action, record, request.user)
    except NotAllowed:
        raise
    except DomainError as error:
        refusal_message(request, error)
        return redirect(record.get_absolute_url())
    return None


def place_field_errors(form, error: InvalidInput) -> bool:
    """Put a service's "field: problem" complaints next to the form's fields; True when all found a home."""
    placed = True
    for problem in error.errors:
        field, _, text = str(problem).partition(": ")
        if text and field in form.fields:
            form.add_error(field, text)
        else:
            placed = False
    return placed


def service_write(request, form, write: Callable[[], T]) -> T | None:
    """Run a form page's service write: what it returns, or None with the refusal shown — "field: problem"
    complaints next to their fields, the rest as messages. ``NotAllowed`` propagates (403).
    """
    try:
        return write()
    except NotAllowed:
        raise
    except InvalidInput as error:
        if not place_field_errors(form, error):
            refusal_message(request, error)
    except DomainError as error:
        refusal_message(request, error)
    return None


def safe_next(request, fallback: str) -> str:
    """The page to go back to: ``next`` when it is on this site, else ``fallback``."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return fallback


@dataclass(frozen=True)
class OfferedAction:
    """A button: the action, how it reads, where it posts, and whether it asks for a reason."""

    name: str
    label: str
    url: str
    asks_reason: bool
    destructive: bool


@dataclass(frozen=True)
class WithheldAction:
    """An action the state allows but this user may not take, with every reason why."""

    label: str
    reasons: list[str]


def action_label(name: str) -> str:
    """How an action reads on its button: "mark_ready" as "Mark ready", "return_" (a keyword's stand-in) as "Return"."""
    return name.replace("_", " ").strip().capitalize()


def record_actions(rules: dict[str, ActionRule], viewset, record, user, url: str) -> dict:
    """The transitions of ``viewset`` that the record's state allows, split into those ``user`` may take
    (buttons) and those withheld from them (a note with the reasons). ``url`` has ``{action}`` to fill in.
    """
    offered, withheld = [], []
    for name, rule in rules.items():
        transition = viewset_transition(viewset, str(name))
        if transition is None or not rule.legal(record):
            continue
        problems = rule.who_problems(record, user)
        if problems:
            withheld.append(WithheldAction(action_label(name), problems))
        else:
            offered.append(
                OfferedAction(
                    name=str(name),
                    label=action_label(name),
                    url=url.format(action=name),
                    asks_reason=transition.takes("reason"),
                    destructive=name in DESTRUCTIVE_ACTIONS,
                )
            )
    return {"offered": offered, "withheld": withheld}


# A filter drawn as a select of records while they are few; past this many it takes their ids (typed, comma
# separated), so a form never lists every release package or CI.
SELECT_AT_MOST = 500


class IdsInput(forms.TextInput):
    """Record ids typed as "12, 40" for a multiple choice among more records than a select can list."""

    def value_from_datadict(self, data, files, name):
        return [part.strip() for value in data.getlist(name) for part in value.split(",") if part.strip()]

    def format_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(str(item) for item in value)
        return super().format_value(value)


def _more_than(queryset, bound: int) -> bool:
    """Whether ``queryset`` holds more than ``bound`` rows, reading at most one row past the bound."""
    return queryset.order_by()[: bound + 1].count() > bound


def choices_as_ids(form) -> None:
    """Draw the form's choices of records as id inputs where the records are too many for a select."""
    for field in form.fields.values():
        # counted exactly up to the bound (a planner's estimate misjudges a small table never analysed)
        if isinstance(field, forms.ModelChoiceField) and _more_than(field.queryset, SELECT_AT_MOST):
            multiple = isinstance(field, forms.ModelMultipleChoiceField)
            hint = "Ids, comma separated" if multiple else "Id"
            field.widget = (
                IdsInput(attrs={"placeholder": hint})
                if multiple
                else forms.NumberInput({"min": 1, "placeholder": hint})
            )


class ObjectListView(RdmPermissionRequiredMixin, SingleTableMixin, FilterView):
    """A list page: the API's FilterSet, a sortable paginated table; ``queryset`` comes from a selector."""

    template_name = "rdm_site/object_list.html"
    paginate_by = 25
    create_url_name = ""  # shown as a "New" button to those holding ``create_permission``
    create_permission = ""

    def get_permission_required(self):
        return [view_permission(self.get_queryset().model)]

    def get_filterset(self, filterset_class):
        filterset = super().get_filterset(filterset_class)
        choices_as_ids(filterset.form)
        return filterset

    def get_paginate_by(self, queryset):
        return None  # the table paginates (get_table_pagination); the list view would count the rows again

    def get_table_pagination(self, table):
        return {"per_page": self.paginate_by, "paginator_class": ListPaginator, **cursor_arguments(self.request)}

    def get_table_kwargs(self):
        return {"template_name": "rdm_site/inc/table.html"}

    def get_context_data(self, **kwargs):
        meta = self.get_queryset().model._meta
        may_create = bool(self.create_url_name) and self.request.user.has_perm(self.create_permission)
        return super().get_context_data(
            title=str(meta.verbose_name_plural).capitalize(),
            create_url_name=self.create_url_name if may_create else "",
            **kwargs,
        )


class ObjectDetailView(RdmPermissionRequiredMixin, DetailView):
    """A record's page with its action buttons (``action_rules`` through ``viewset``'s transitions, posting
    to ``transition_url_name``) and its timeline from the audit trail.
    """

    action_rules: dict[str, ActionRule] = {}
    viewset = None
    transition_url_name = ""

    def get_permission_required(self):
        return [view_permission(self.get_queryset().model)]

    def get_context_data(self, **kwargs):
        record = self.object
        context = {"timeline": audit_events_for(record).order_by("-id")[:50]}
        if self.viewset is not None:
            url = reverse_transition(self.transition_url_name, record.pk)
            context["actions"] = record_actions(self.action_rules, self.viewset, record, self.request.user, url)
        return super().get_context_data(**context, **kwargs)


def reverse_transition(url_name: str, pk) -> str:
    """The transition URL of a record with ``{action}`` left to fill in."""
    return reverse(url_name, kwargs={"pk": pk, "action": "ACTION"}).replace("ACTION", "{action}")


class TransitionView(RdmPermissionRequiredMixin, View):
    """``POST …/<pk>/do/<action>/``: the API's transition of ``viewset`` for the browser: the same input
    serializer validates the form, the same service decides. Answers by going back to the record's page
    (or a safe ``next``) with the outcome as a message; a user the service refuses gets 403.
    """

    viewset = None
    http_method_names = ["post"]

    def get_permission_required(self):
        return [view_permission(self.viewset.queryset.model)]

    def post(self, request, pk, action):
        transition = viewset_transition(self.viewset, action)
        if transition is None:
            raise Http404(f"No action “{action}”.")
        record = get_object_or_404(self.viewset.queryset.model._default_manager, pk=pk)
        given = transition.input_serializer(data=request.POST)
        if not given.is_valid():
            for field, problems in given.errors.items():
                messages.error(request, f"{field}: {' '.join(str(problem) for problem in problems)}")
            return redirect(safe_next(request, record.get_absolute_url()))
        try:
            transition.service(**{transition.record: record}, actor=request.user, **given.validated_data)
        except NotAllowed:
            raise
        except DomainError as error:
            refusal_message(request, error)
        else:
            messages.success(request, f"{action_label(action)}: done for {record}.")
        return redirect(safe_next(request, record.get_absolute_url()))
