"""Change records, the approvers' queue and standard change templates, in the browser: every write goes
through the services the API calls (``releases.api.views.ChangeRecordViewSet``).
"""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.views.generic import DetailView, TemplateView

from rdm_site.web import (
    ObjectDetailView,
    ObjectListView,
    RdmPermissionRequiredMixin,
    TransitionView,
    action_label,
    action_refused,
    service_write,
    view_permission,
)
from releases import selectors, services
from releases.actions import CHANGE_ACTIONS
from releases.api.views import ChangeRecordViewSet
from releases.choices import ChangeType, Risk
from releases.filtersets import ChangeRecordFilterSet, ChangeTemplateFilterSet
from releases.forms.change import ChangeForm, pre_approved_templates
from releases.models import ChangeRecord, ChangeTemplate
from releases.permissions import (
    ADD_CHANGE,
    APPROVE_CHANGE,
    APPROVE_EMERGENCY_CHANGE,
    ASSESS_CHANGE,
    CREATE_STANDARD_CHANGE,
)
from releases.tables import ChangeTable, ChangeTemplateTable

# Actions whose input is more than a comment: the change page draws a form of their own for each.
FORM_ACTIONS = ("assess", "review", "override_freeze")
# Who works the approvers' queue; everyone else reads it.
DECIDING_PERMISSIONS = (ASSESS_CHANGE, APPROVE_CHANGE, APPROVE_EMERGENCY_CHANGE)


def may_raise_changes(user) -> bool:
    return user.has_perm(ADD_CHANGE) or user.has_perm(CREATE_STANDARD_CHANGE)


class ChangeListView(ObjectListView):
    queryset = selectors.changes_table()
    filterset_class = ChangeRecordFilterSet
    table_class = ChangeTable
    create_url_name = "releases:change_create"
    create_permission = ADD_CHANGE


class ChangeDetailView(ObjectDetailView):
    """The change page: what, when, where and how risky; the release and deployments it covers; conflicts
    with other changes; freezes it falls in and overrides granted; decisions; the change rule table's buttons.
    """

    queryset = selectors.change_details()
    template_name = "releases/change_detail.html"
    action_rules = CHANGE_ACTIONS
    viewset = ChangeRecordViewSet
    transition_url_name = "releases:change_transition"

    def get_context_data(self, **kwargs):
        change = self.object
        context = super().get_context_data(**kwargs)
        freezes = list(selectors.change_freezes(change))
        overridable = bool(freezes) or change.may_deploy_outside_windows
        actions = context["actions"]
        if not overridable:  # nothing to override: no button, and nothing to explain
            actions["withheld"] = [
                item for item in actions["withheld"] if item.label != action_label("override_freeze")
            ]
        form_actions = {
            action.name: action
            for action in actions["offered"]
            if action.name in FORM_ACTIONS and (action.name != "override_freeze" or overridable)
        }
        actions["offered"] = [action for action in actions["offered"] if action.name not in FORM_ACTIONS]
        update_rule = CHANGE_ACTIONS["update"]
        context.update(
            form_actions=form_actions,
            risks=Risk.choices,
            freezes=freezes,
            overrides=selectors.freeze_overrides_for(change).order_by("-granted_at"),
            conflicts=selectors.change_conflict_details(change),
            decisions=selectors.change_decisions(change),
            deployments=change.deployments.select_related("service", "environment").order_by("-id"),
            may_edit=update_rule.legal(change) and not update_rule.who_problems(change, self.request.user),
        )
        return context


class ChangeTransitionView(TransitionView):
    viewset = ChangeRecordViewSet


class ChangeQueueView(RdmPermissionRequiredMixin, TemplateView):
    """The approvers' queue: assessed changes awaiting this user's decision (and submitted ones to assess),
    emergency ones first; those who do not decide read every change awaiting a decision.
    """

    template_name = "releases/change_queue.html"

    def get_permission_required(self):
        return [view_permission(ChangeRecord)]

    def get_context_data(self, **kwargs):
        user = self.request.user
        deciding = selectors.changes_queued(selectors.changes_awaiting_decision_by(user))
        assessing = selectors.changes_queued(selectors.changes_awaiting_assessment_by(user))
        read_only = not any(user.has_perm(permission) for permission in DECIDING_PERMISSIONS)
        if read_only:
            deciding = selectors.changes_queued(selectors.changes_awaiting_decision())
        queued = deciding + assessing
        sections = [
            {
                "key": kind,
                "title": title,
                "changes": [change for change in queued if change.change_type == kind],
            }
            for kind, title in ((ChangeType.EMERGENCY, "Emergency changes"), (ChangeType.NORMAL, "Normal changes"))
        ]
        return super().get_context_data(sections=sections, read_only=read_only, **kwargs)


class ChangeCreateView(RdmPermissionRequiredMixin, TemplateView):
    """Raise a change (normal, emergency, or standard from a template: ``?template=`` prefills it) through
    ``change_create``; it starts as a draft, submitted from its page.
    """

    template_name = "releases/change_form.html"

    def has_permission(self):
        return may_raise_changes(self.request.user)

    def get(self, request, *args, **kwargs):
        return self.render_to_response(
            self.get_context_data(form=ChangeForm(initial=self._initial(), user=request.user))
        )

    def _initial(self) -> dict:
        initial = {"change_type": ChangeType.NORMAL if self.request.user.has_perm(ADD_CHANGE) else ChangeType.STANDARD}
        template = pre_approved_templates().filter(pk=self.request.GET.get("template") or None).first()
        if template is not None:
            initial.update(
                change_type=ChangeType.STANDARD,
                template=template,
                title=template.name,
                description=template.description,
                risk=template.risk,
                services=list(template.services.all()),
            )
        return initial

    def post(self, request, *args, **kwargs):
        form = ChangeForm(request.POST, user=request.user)
        if form.is_valid():
            change = service_write(
                request, form, lambda: services.change_create(actor=request.user, **form.create_data())
            )
            if change is not None:
                messages.success(request, f"Change {change.number} raised as a draft: submit it when it is ready.")
                return redirect(change.get_absolute_url())
        return self.render_to_response(self.get_context_data(form=form), status=422)

    def get_context_data(self, **kwargs):
        templates = {
            template.pk: {"risk": template.risk, "services": [service.pk for service in template.services.all()]}
            for template in pre_approved_templates()
        }
        return super().get_context_data(templates=templates, **kwargs)


class ChangeUpdateView(RdmPermissionRequiredMixin, TemplateView):
    """Edit a change through ``change_update`` (the rule table's ``update``): editing what the approvers
    approved withdraws their approval, as the service explains.
    """

    template_name = "releases/change_form.html"

    def get_permission_required(self):
        return [view_permission(ChangeRecord)]

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.change = get_object_or_404(selectors.change_details(), pk=kwargs["pk"])
        refused = action_refused(request, CHANGE_ACTIONS, "update", self.change)
        return refused or super().dispatch(request, *args, **kwargs)

    def get(self, request, *args, **kwargs):
        return self.render_to_response(self.get_context_data(form=ChangeForm(instance=self.change, user=request.user)))

    def post(self, request, *args, **kwargs):
        form = ChangeForm(request.POST, instance=self.change, user=request.user)
        if form.is_valid():
            # the service re-reads the change under a lock: the values the form wrote into it do not count
            change = service_write(
                request,
                form,
                lambda: services.change_update(
                    change=self.change, actor=request.user, data=form.changed_data_for_update()
                ),
            )
            if change is not None:
                messages.success(request, f"Change {change.number} saved.")
                return redirect(change.get_absolute_url())
        return self.render_to_response(self.get_context_data(form=form), status=422)

    def get_context_data(self, **kwargs):
        return super().get_context_data(change=self.change, **kwargs)


class ChangeTemplateListView(ObjectListView):
    queryset = selectors.change_templates_list()
    filterset_class = ChangeTemplateFilterSet
    table_class = ChangeTemplateTable


class ChangeTemplateDetailView(RdmPermissionRequiredMixin, DetailView):
    """A standard change template: what the CAB pre-approved, and a way to raise a change from it."""

    queryset = selectors.change_templates_list()
    template_name = "releases/changetemplate_detail.html"

    def get_permission_required(self):
        return [view_permission(ChangeTemplate)]

    def get_context_data(self, **kwargs):
        template = self.object
        return super().get_context_data(
            may_raise=template.pre_approved and may_raise_changes(self.request.user),
            changes=template.changes.order_by("-planned_start")[:20],
            **kwargs,
        )


urlpatterns = [
    path("changes/", ChangeListView.as_view(), name="change_list"),
    path("changes/queue/", ChangeQueueView.as_view(), name="change_queue"),
    path("changes/new/", ChangeCreateView.as_view(), name="change_create"),
    path("changes/<int:pk>/", ChangeDetailView.as_view(), name="change_detail"),
    path("changes/<int:pk>/edit/", ChangeUpdateView.as_view(), name="change_update"),
    path("changes/<int:pk>/do/<str:action>/", ChangeTransitionView.as_view(), name="change_transition"),
    path("change-templates/", ChangeTemplateListView.as_view(), name="changetemplate_list"),
    path("change-templates/<int:pk>/", ChangeTemplateDetailView.as_view(), name="changetemplate_detail"),
]
