"""Admin pages of the rollout engine. Writes go through the services; secrets are never shown."""

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from deployments import services
from deployments.choices import (
    DEPLOYMENT_STATE_COLOURS,
    STEP_STATE_COLOURS,
    WAVE_STATE_COLOURS,
    InterventionAnswer,
)
from deployments.models import (
    Deployment,
    DeploymentEvent,
    DeploymentLock,
    DeploymentProcess,
    Step,
    StepLog,
    StepTemplate,
    Target,
    Variable,
    Wave,
)
from deployments.selectors import variable_display
from rdm_site.audit import audit_record
from rdm_site.exceptions import DomainError


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


# --- configuration ------------------------------------------------------------------------------------


class StepTemplateInline(admin.TabularInline):
    model = StepTemplate
    extra = 0
    fields = ["position", "name", "executor", "parameters", "target_filter", "run_once", "retries", "timeout_seconds"]


@admin.register(DeploymentProcess)
class DeploymentProcessAdmin(admin.ModelAdmin):
    list_display = ["name", "service", "bake_seconds", "rollback_threshold", "updated"]
    list_filter = ["service"]
    search_fields = ["name", "service__name"]
    inlines = [StepTemplateInline]


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
class VariableAdmin(admin.ModelAdmin):
    form = VariableForm
    list_display = ["name", "service", "environment", "is_secret", "shown_value", "updated"]
    list_filter = ["service", "environment", "is_secret"]
    search_fields = ["name"]

    @admin.display(description="value")
    def shown_value(self, obj):
        return variable_display(obj)

    def save_model(self, request, obj, form, change):
        value = form.cleaned_data["value"]
        if change and obj.is_secret and not value and form.initial.get("is_secret"):
            value = Variable.objects.get(pk=obj.pk).plain_value()
        saved = services.variable_set(
            actor=request.user,
            service=obj.service,
            environment=obj.environment,
            name=obj.name,
            value=value,
            is_secret=obj.is_secret,
        )
        obj.pk = saved.pk
        obj.value = saved.value


@admin.register(Target)
class TargetAdmin(admin.ModelAdmin):
    list_display = ["ci", "environment", "service", "ring", "group", "enabled"]
    list_filter = ["enabled", "ring", "group", "ci__environment"]
    search_fields = ["ci__name"]
    autocomplete_fields = []

    @admin.display(description="environment")
    def environment(self, obj):
        return obj.ci.environment

    @admin.display(description="service")
    def service(self, obj):
        return obj.ci.service

    def save_model(self, request, obj, form, change):
        if not change:
            try:
                saved = services.target_create(
                    actor=request.user, ci=obj.ci, ring=obj.ring, group=obj.group, enabled=obj.enabled
                )
            except DomainError as error:
                self.message_user(request, str(error), messages.ERROR)
                return
            obj.pk = saved.pk
            return
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,
            action="target.edit",
            target=obj,
            changes=form.cleaned_data and {name: str(form.cleaned_data[name]) for name in form.changed_data},
        )


# --- deployments --------------------------------------------------------------------------------------


class DeploymentForm(forms.ModelForm):
    """Plans the deployment through ``deployment_create`` while validating, so that every problem with the plan
    shows on the form (the admin's add view runs in one transaction: nothing stays if a later step fails)."""

    actor = None

    class Meta:
        model = Deployment
        fields = ["process", "environment", "version", "model", "phase_plan", "rollback_threshold", "continuous"]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            self.instance = services.deployment_create(
                actor=self.actor,
                process=data["process"],
                environment=data["environment"],
                model=data["model"],
                version=data["version"],
                phase_plan=data["phase_plan"],
                rollback_threshold=data["rollback_threshold"],
                continuous=data["continuous"],
            )
        except DomainError as error:
            raise forms.ValidationError(getattr(error, "errors", None) or [str(error)]) from None
        return data

    def _post_clean(self):
        pass  # the service validated and saved the row


def _control(verb: str, service, **kwargs):
    def action(modeladmin, request, queryset):
        for deployment in queryset:
            try:
                service(deployment=deployment, actor=request.user, **kwargs)
                modeladmin.message_user(request, f"{deployment}: {verb} done.", messages.SUCCESS)
            except DomainError as error:
                modeladmin.message_user(request, f"{deployment}: {error}", messages.ERROR)

    action.__name__ = f"deployment_{verb.replace(' ', '_')}"
    action.short_description = f"{verb.capitalize()} the selected deployments"
    return action


class WaveInline(admin.TabularInline):
    model = Wave
    extra = 0
    can_delete = False
    fields = ["index", "name", "state", "target_count", "bake_seconds", "started_at", "finished_at", "outcome"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ["id", "service", "environment", "version", "model", "state_badge", "created", "finished_at"]
    list_filter = ["state", "model", "environment", "service"]
    search_fields = ["service__name", "version"]
    inlines = [WaveInline]
    readonly_fields = [
        "service",
        "state",
        "requested_by",
        "scheduled_for",
        "started_at",
        "finished_at",
        "pause_kind",
        "pause_reason",
        "outcome",
        "replaces",
        "due_at",
        "last_event_seq",
    ]
    actions = [
        _control("start", services.deployment_start),
        _control("pause", services.deployment_pause, reason="paused in the admin"),
        _control("resume", services.deployment_resume),
        _control("abort", services.deployment_abort, reason="aborted in the admin"),
        _control("roll back", services.deployment_rollback, reason="rolled back in the admin"),
        _control("mark failed", services.deployment_fail, reason="marked failed in the admin"),
    ]

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj):
        return badge(obj.state, obj.get_state_display(), DEPLOYMENT_STATE_COLOURS)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = type("DeploymentAddForm", (DeploymentForm,), {"actor": request.user})
        return super().get_form(request, obj, **kwargs)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def get_fields(self, request, obj=None):
        if obj is None:
            return DeploymentForm.Meta.fields
        return ["process", "environment", "version", "model", "phase_plan", "rollback_threshold", *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["process", "environment", "version", "model", "phase_plan", "rollback_threshold", *self.readonly_fields]

    def save_model(self, request, obj, form, change):
        """Nothing to save: the add form planned it (``deployment_create``), and only controls change it later."""

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Wave)
class WaveAdmin(ReadOnlyAdmin):
    list_display = ["deployment", "index", "name", "state_badge", "target_count", "started_at", "finished_at"]
    list_filter = ["state"]

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj):
        return badge(obj.state, obj.get_state_display(), WAVE_STATE_COLOURS)


def _answer(answer: str):
    def action(modeladmin, request, queryset):
        for step in queryset:
            try:
                services.step_answer(step=step, actor=request.user, answer=answer)
                modeladmin.message_user(request, f"{step}: answered {answer}.", messages.SUCCESS)
            except DomainError as error:
                modeladmin.message_user(request, f"{step}: {error}", messages.ERROR)

    action.__name__ = f"answer_{answer}"
    action.short_description = f"Answer the selected manual interventions: {answer}"
    return action


class StepLogInline(admin.TabularInline):
    model = StepLog
    extra = 0
    can_delete = False
    fields = ["at", "level", "message"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Step)
class StepAdmin(ReadOnlyAdmin):
    """Parameters are stored without secrets; outputs and messages are masked before they are written."""

    list_display = ["id", "deployment", "wave", "kind", "name", "target", "state_badge", "attempt", "finished_at"]
    list_filter = ["state", "kind", "executor"]
    search_fields = ["name", "target__ci__name", "idempotency_key"]
    inlines = [StepLogInline]
    actions = [_answer(InterventionAnswer.PROCEED), _answer(InterventionAnswer.ABORT)]

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj):
        return badge(obj.state, obj.get_state_display(), STEP_STATE_COLOURS)


@admin.register(StepLog)
class StepLogAdmin(ReadOnlyAdmin):
    list_display = ["at", "step", "level", "message"]
    list_filter = ["level"]


@admin.register(DeploymentEvent)
class DeploymentEventAdmin(ReadOnlyAdmin):
    list_display = ["deployment", "seq", "type", "state", "wave_id_ref", "step_id_ref", "at", "message"]
    list_filter = ["type"]


@admin.register(DeploymentLock)
class DeploymentLockAdmin(ReadOnlyAdmin):
    list_display = ["service", "environment", "deployment", "taken_at"]
