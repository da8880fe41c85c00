"""Admin pages of the rollout engine. Every write goes through a service (and is audited); secrets are never
shown."""

from datetime import UTC

from django import forms
from django.contrib import admin
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join

from deployments import els, incidents, services
from deployments.choices import (
    DEPLOYMENT_STATE_COLOURS,
    ELS_STATE_COLOURS,
    INCIDENT_STATE_COLOURS,
    STEP_STATE_COLOURS,
    WAVE_STATE_COLOURS,
    InterventionAnswer,
)
from deployments.models import (
    Deployment,
    DeploymentEvent,
    DeploymentLock,
    DeploymentProcess,
    EarlyLifeSupport,
    Incident,
    Step,
    StepLog,
    StepTemplate,
    Target,
    Variable,
    Wave,
)
from deployments.selectors import variable_display
from rdm_site.admin_support import ReadOnlyInline, ServiceBackedAdmin, service_action
from rdm_site.exceptions import InvalidInput


def badge(state: str, label: str, colours: dict) -> str:
    return format_html(
        '<span style="color: white; background: {}; padding: 1px 6px; border-radius: 3px">{}</span>',
        colours.get(state, "gray"),
        label,
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the engine writes: shown, never edited by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _given(form, fields) -> dict:
    return {name: form.cleaned_data[name] for name in fields if name in form.cleaned_data}


# --- configuration ------------------------------------------------------------------------------------


class StepTemplateInline(ReadOnlyInline):
    """The process's steps at a glance; each is edited on its own page, through the step template services."""

    model = StepTemplate
    fields = ["position", "name", "executor", "parameters", "target_filter", "run_once", "retries", "timeout_seconds"]
    readonly_fields = fields
    show_change_link = True


@admin.register(DeploymentProcess)
class DeploymentProcessAdmin(ServiceBackedAdmin):
    list_display = ["name", "service", "bake_seconds", "rollback_threshold", "updated"]
    list_select_related = ["service"]
    list_filter = ["service"]
    search_fields = ["name", "service__name"]
    inlines = [StepTemplateInline]
    add_permission = "deployments.add_deploymentprocess"
    change_permission = "deployments.change_deploymentprocess"

    def get_readonly_fields(self, request, obj=None):
        return ["service"] if obj is not None else []

    def create(self, request, form):
        return services.process_create(
            actor=request.user, service=form.cleaned_data["service"], **_given(form, services.PROCESS_FIELDS)
        )

    def update(self, request, obj, data):
        return services.process_update(process=obj, actor=request.user, data=data)


@admin.register(StepTemplate)
class StepTemplateAdmin(ServiceBackedAdmin):
    """The URLs and commands that run in production: every edit is audited with the old and new values."""

    list_display = ["name", "process", "position", "executor", "target_filter", "run_once"]
    list_select_related = ["process__service"]
    list_filter = ["executor", "process__service"]
    search_fields = ["name", "process__name"]
    add_permission = "deployments.add_steptemplate"
    change_permission = "deployments.change_steptemplate"
    delete_permission = "deployments.delete_steptemplate"

    def get_readonly_fields(self, request, obj=None):
        return ["process"] if obj is not None else []

    def create(self, request, form):
        return services.step_template_create(
            actor=request.user, process=form.cleaned_data["process"], **_given(form, services.STEP_TEMPLATE_FIELDS)
        )

    def update(self, request, obj, data):
        return services.step_template_update(template=obj, actor=request.user, data=data)

    def delete(self, request, obj):
        services.step_template_delete(template=obj, actor=request.user)


class VariableForm(forms.ModelForm):
    """A secret's value is write-only: the form never shows it, and leaving it empty keeps the stored one."""

    value = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    class Meta:
        model = Variable
        fields = ["service", "environment", "name", "is_secret", "value"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.is_secret:
            self.initial["value"] = ""
            self.fields["value"].help_text = "Secret: not shown. Leave empty to keep the stored value."


@admin.register(Variable)
class VariableAdmin(ServiceBackedAdmin):
    form = VariableForm
    list_display = ["name", "service", "environment", "is_secret", "shown_value", "updated"]
    list_select_related = ["service", "environment"]
    list_filter = ["service", "environment", "is_secret"]
    search_fields = ["name"]
    add_permission = "deployments.add_variable"
    change_permission = "deployments.change_variable"

    @admin.display(description="value")
    def shown_value(self, obj):
        return variable_display(obj)

    def get_readonly_fields(self, request, obj=None):
        return ["service", "environment", "name"] if obj is not None else []

    def create(self, request, form):
        return services.variable_set(actor=request.user, **_given(form, VariableForm.Meta.fields))

    def update(self, request, obj, data):
        stored = Variable.objects.get(pk=obj.pk)
        return services.variable_set(
            actor=request.user,
            service=stored.service,
            environment=stored.environment,
            name=stored.name,
            # an empty secret field is not a change: the stored value stays
            value=data["value"] if "value" in data else stored.plain_value(),
            is_secret=data.get("is_secret", stored.is_secret),
        )


@admin.register(Target)
class TargetAdmin(ServiceBackedAdmin):
    list_display = ["ci", "environment", "service", "ring", "group", "enabled"]
    list_select_related = ["ci__environment", "ci__service"]
    list_filter = ["enabled", "ring", "group", "ci__environment"]
    search_fields = ["ci__name"]
    add_permission = "deployments.add_target"
    change_permission = "deployments.change_target"

    @admin.display(description="environment")
    def environment(self, obj):
        return obj.ci.environment

    @admin.display(description="service")
    def service(self, obj):
        return obj.ci.service

    def get_readonly_fields(self, request, obj=None):
        return ["ci"] if obj is not None else []

    def create(self, request, form):
        return services.target_create(
            actor=request.user, ci=form.cleaned_data["ci"], **_given(form, services.TARGET_FIELDS)
        )

    def update(self, request, obj, data):
        return services.target_update(target=obj, actor=request.user, data=data)


# --- deployments --------------------------------------------------------------------------------------

PLANNED_FIELDS = [
    "process",
    "environment",
    "package",
    "change",
    "version",
    "model",
    "phase_plan",
    "rollback_threshold",
    "continuous",
    "scheduled_for",
]


def _typed_time(when: str):
    """A time typed in an action's question: ISO 8601, UTC unless it says otherwise."""
    at = parse_datetime(when.strip())
    if at is None:
        raise InvalidInput(f"{when!r} is not a time: write it as 2030-01-31 22:00 (UTC) or with an offset")
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _schedule_at(deployment: Deployment, actor, when: str | None = None) -> None:
    """Schedule for ``when`` (typed), else the time it was planned for."""
    if when is None:
        at = deployment.scheduled_for
        if at is None:
            raise InvalidInput(f"{deployment} was planned without a time: use 'Schedule at a time'")
    else:
        at = _typed_time(when)
    services.deployment_schedule(deployment=deployment, actor=actor, scheduled_for=at)


class WaveInline(ReadOnlyInline):
    model = Wave
    fields = ["index", "name", "state", "target_count", "bake_seconds", "started_at", "finished_at", "outcome"]
    readonly_fields = fields


def _reasoned(service):
    return lambda deployment, actor, reason="": service(deployment=deployment, actor=actor, reason=reason)


@admin.register(Deployment)
class DeploymentAdmin(ServiceBackedAdmin):
    """Planned here (``deployment_create``), then moved only by the actions; a planned one may be deleted."""

    list_display = ["id", "service", "environment", "version", "model", "state_badge", "created", "finished_at"]
    list_select_related = ["service", "environment"]
    list_filter = ["state", "model", "environment", "service"]
    search_fields = ["service__name", "version"]
    inlines = [WaveInline]
    add_permission = "deployments.add_deployment"
    delete_permission = services.RUN
    readonly_fields = [
        *PLANNED_FIELDS,
        "service",
        "state",
        "requested_by",
        "started_at",
        "finished_at",
        "pause_kind",
        "pause_reason",
        "outcome",
        "follow_up_problem",
        "replaces",
        "due_at",
        "last_event_seq",
    ]
    actions = [
        service_action("Schedule at the planned time", _schedule_at),
        service_action("Schedule at a time", _schedule_at, reason="When (UTC, for example 2030-01-31 22:00)?"),
        service_action("Start", _reasoned(services.deployment_start)),
        service_action("Pause", _reasoned(services.deployment_pause), reason="Why pause?"),
        service_action("Resume", _reasoned(services.deployment_resume)),
        service_action("Abort", _reasoned(services.deployment_abort), reason="Why abort?"),
        service_action("Roll back", _reasoned(services.deployment_rollback), reason="Why roll back?"),
        service_action("Mark failed", _reasoned(services.deployment_fail), reason="Why not roll back?"),
    ]

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj):
        return badge(obj.state, obj.get_state_display(), DEPLOYMENT_STATE_COLOURS)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def get_fields(self, request, obj=None):
        return PLANNED_FIELDS if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def has_change_permission(self, request, obj=None):
        return False  # nothing is edited once planned: the actions move it

    def create(self, request, form):
        return services.deployment_create(actor=request.user, **_given(form, PLANNED_FIELDS))

    def delete(self, request, obj):
        services.deployment_delete(deployment=obj, actor=request.user, reason="deleted in the admin")

    def get_actions(self, request):
        """Deleting is one deployment at a time (the delete page), where a refusal is shown for what it is."""
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_deleted_objects(self, objs, request):
        """The plan (waves, steps, events) goes with its deployment under the service's own permission."""
        deleted, counts, _, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected


@admin.register(Wave)
class WaveAdmin(ReadOnlyAdmin):
    list_display = ["deployment", "index", "name", "state_badge", "target_count", "started_at", "finished_at"]
    list_select_related = ["deployment__service", "deployment__environment"]
    list_filter = ["state"]

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj):
        return badge(obj.state, obj.get_state_display(), WAVE_STATE_COLOURS)


class StepLogInline(ReadOnlyInline):
    model = StepLog
    fields = ["at", "level", "message"]
    readonly_fields = fields


def _answer(answer: str):
    return lambda step, actor: services.step_answer(step=step, actor=actor, answer=answer)


@admin.register(Step)
class StepAdmin(ReadOnlyAdmin):
    """Parameters are stored without secrets; outputs and messages are masked before they are written."""

    list_display = ["id", "deployment", "wave", "kind", "name", "target", "state_badge", "attempt", "finished_at"]
    list_select_related = ["deployment__service", "deployment__environment", "wave", "target__ci"]
    list_filter = ["state", "kind", "executor"]
    search_fields = ["name", "target__ci__name", "idempotency_key"]
    inlines = [StepLogInline]
    actions = [
        service_action(f"Answer {answer}", _answer(answer))
        for answer in (InterventionAnswer.PROCEED, InterventionAnswer.ABORT)
    ]

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj):
        return badge(obj.state, obj.get_state_display(), STEP_STATE_COLOURS)


@admin.register(StepLog)
class StepLogAdmin(ReadOnlyAdmin):
    list_display = ["at", "step", "level", "message"]
    list_select_related = ["step__target__ci"]
    list_filter = ["level"]


@admin.register(DeploymentEvent)
class DeploymentEventAdmin(ReadOnlyAdmin):
    list_display = ["deployment", "seq", "type", "state", "wave_id_ref", "step_id_ref", "at", "message"]
    list_select_related = ["deployment__service", "deployment__environment"]
    list_filter = ["type"]


@admin.register(DeploymentLock)
class DeploymentLockAdmin(ReadOnlyAdmin):
    list_display = ["service", "environment", "deployment", "taken_at"]
    list_select_related = ["service", "environment", "deployment__service", "deployment__environment"]


def _incident_move(service):
    return lambda incident, actor, reason="": service(incident=incident, actor=actor, reason=reason)


def _reason_after(given: str, question: str) -> tuple[str, str]:
    """``"<value>; <reason>"`` typed in an action's question, split."""
    value, separator, reason = (given or "").partition(";")
    if not separator:
        raise InvalidInput(f"Write {question}, a semicolon, then the reason.")
    return value.strip(), reason.strip()


def _correlation_correct(incident: Incident, actor, given: str) -> None:
    value, reason = _reason_after(given, "the deployment's id (or 'none')")
    deployment = None
    if value.lower() != "none":
        deployment = Deployment.objects.filter(pk=int(value)).first() if value.isdigit() and len(value) < 19 else None
        if deployment is None:
            raise InvalidInput(f"No deployment #{value}.")
    incidents.incident_correlation_correct(incident=incident, actor=actor, deployment=deployment, reason=reason)


@admin.register(Incident)
class IncidentAdmin(ServiceBackedAdmin):
    """Opened and edited through the incident services (an alert's id makes a repeat update the same one)."""

    list_display = [
        "id",
        "title",
        "severity",
        "state_badge",
        "deployment",
        "correlation",
        "release",
        "ci",
        "source",
        "opened_at",
    ]
    list_select_related = ["deployment__service", "deployment__environment", "release", "ci"]
    list_filter = ["state", "severity", "source", "correlation"]
    search_fields = ["title", "external_id"]
    raw_id_fields = ["deployment", "release", "ci"]
    add_permission = incidents.OPEN
    change_permission = incidents.CHANGE
    fields = [*incidents.INCIDENT_FIELDS, "correlation", "source", "external_id"]
    actions = [
        service_action("Acknowledge", _incident_move(incidents.incident_acknowledge), permission=incidents.CHANGE),
        service_action(
            "Resolve",
            _incident_move(incidents.incident_resolve),
            reason="How was it resolved?",
            permission=incidents.CHANGE,
        ),
        service_action(
            "Reopen", _incident_move(incidents.incident_reopen), reason="Why reopen?", permission=incidents.CHANGE
        ),
        service_action("Close", _incident_move(incidents.incident_close), permission=incidents.CHANGE),
        service_action(
            "Correct the deployment that caused it",
            _correlation_correct,
            reason="The deployment's id (or 'none'), a semicolon, then why: '42; the alert named the wrong host'",
            permission=incidents.CHANGE,
        ),
    ]

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj):
        return badge(obj.state, obj.get_state_display(), INCIDENT_STATE_COLOURS)

    def get_readonly_fields(self, request, obj=None):
        return ["correlation", "source", "external_id"] if obj is not None else ["correlation"]

    def create(self, request, form):
        incident, _ = incidents.incident_open(
            actor=request.user,
            source=form.cleaned_data["source"],
            external_id=form.cleaned_data["external_id"],
            **_given(form, incidents.INCIDENT_FIELDS),
        )
        return incident

    def update(self, request, obj, data):
        return incidents.incident_update(incident=obj, actor=request.user, data=data)


def _els_extend(period: EarlyLifeSupport, actor, given: str) -> None:
    when, reason = _reason_after(given, "the new end")
    els.els_extend(els=period, actor=actor, reason=reason, new_end=_typed_time(when))


def _els_move(service):
    return lambda period, actor, reason="": service(els=period, actor=actor, reason=reason)


@admin.register(EarlyLifeSupport)
class EarlyLifeSupportAdmin(ServiceBackedAdmin):
    """Opened and started by RDM when a production deployment of a release succeeds; moved only by the actions
    (the services decide who may: ELS managers, Service Owners for their own services)."""

    list_display = ["id", "release", "deployment", "state_badge", "started_at", "planned_end", "exit_offered_at"]
    list_select_related = ["release", "deployment__service", "deployment__environment"]
    list_filter = ["state"]
    search_fields = ["release__name", "deployment__service__name"]
    readonly_fields = [
        "deployment",
        "release",
        "state",
        "staff",
        "exit_criteria",
        "min_duration_days",
        "planned_end",
        "original_end",
        "started_at",
        "exited_at",
        "exit_offered_at",
        "criteria",
    ]
    fields = readonly_fields
    actions = [
        service_action("Start", _els_move(els.els_start)),
        service_action(
            "Extend",
            _els_extend,
            reason="The new end (UTC, for example 2030-01-31 22:00), a semicolon, then why: '2030-02-03 09:00; a P2'",
        ),
        service_action("Withdraw the extension", _els_move(els.els_extension_withdraw), reason="Why?"),
        service_action("Exit", _els_move(els.els_exit), reason="Why exit now (optional)?"),
    ]

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj):
        return badge(obj.state, obj.get_state_display(), ELS_STATE_COLOURS)

    @admin.display(description="exit criteria now")
    def criteria(self, obj):
        return format_html_join(
            "", "<div>{} {}</div>", (("✓" if r.met else "✗", str(r)) for r in els.els_criteria_evaluate(obj))
        )

    def has_add_permission(self, request, obj=None):
        return False  # RDM opens them when a production deployment succeeds

    def has_change_permission(self, request, obj=None):
        return False  # the actions move them
