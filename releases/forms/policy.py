"""The rules releases are governed by, as Release Managers write them: policies, windows and freezes."""

from django import forms

from cmdb.choices import EnvironmentTier
from cmdb.models import Environment, Service
from rdm_site.roles import Role
from releases.choices import GateCode
from releases.forms.release import DATETIME_WIDGET
from releases.models import FreezePeriod, ReleasePolicy, ReleaseWindow
from releases.services.policy import FREEZE_FIELDS, POLICY_FIELDS, WINDOW_FIELDS


class RuleForm(forms.ModelForm):
    """A rule's fields as its service takes them (``data``): all of them to create, the edited ones to edit."""

    service_fields: tuple[str, ...] = ()

    def service_data(self, *, changed_only: bool = False) -> dict:
        names = [name for name in self.service_fields if name in self.cleaned_data]
        if changed_only:
            names = [name for name in names if name in self.changed_data]
        return {name: self.cleaned_data[name] for name in names}


def _scope_field(queryset, label: str):
    return forms.ModelMultipleChoiceField(
        queryset, widget=forms.CheckboxSelectMultiple, required=False, label=label, help_text="None ticked: all."
    )


class PolicyForm(RuleForm):
    """How a type of release is governed; the gates are ticked per environment tier."""

    service_fields = POLICY_FIELDS
    approver_roles = forms.MultipleChoiceField(
        choices=Role.choices, widget=forms.CheckboxSelectMultiple, label="Roles whose members may approve"
    )

    class Meta:
        model = ReleasePolicy
        fields = (
            "name",
            "release_type",
            "description",
            "approvals_required",
            "approver_roles",
            "lead_time_days",
            "required_test_suites",
            "els_duration_days",
            "els_min_duration_days",
            "els_exit_criteria",
            "hotfix_window_days",
            "incident_correlation_hours",
            "pir_due_days",
            "active",
        )
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "required_test_suites": forms.Textarea(attrs={"rows": 1, "class": "font-monospace"}),
            "els_exit_criteria": forms.Textarea(attrs={"rows": 2, "class": "font-monospace"}),
        }
        help_texts = {"required_test_suites": 'A JSON list, e.g. ["regression", "smoke"].'}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        required = self.instance.gates_required or {}
        for tier, label in EnvironmentTier.choices:
            self.fields[f"gates_{tier}"] = forms.MultipleChoiceField(
                choices=GateCode.choices,
                widget=forms.CheckboxSelectMultiple,
                required=False,
                label=f"Gates required before {label.lower()}",
                initial=required.get(tier, []),
            )

    def _gates(self) -> dict[str, list[str]]:
        return {tier: self.cleaned_data[f"gates_{tier}"] for tier in EnvironmentTier.values}

    def service_data(self, *, changed_only: bool = False) -> dict:
        data = super().service_data(changed_only=changed_only)
        gates_changed = any(f"gates_{tier}" in self.changed_data for tier in EnvironmentTier.values)
        if not changed_only or gates_changed:
            data["gates_required"] = self._gates()
        return data


class WindowForm(RuleForm):
    """A recurring maintenance window, in its own time zone."""

    service_fields = WINDOW_FIELDS
    services = _scope_field(Service.objects.order_by("name"), "Services")
    environments = _scope_field(Environment.objects.order_by("promotion_order", "name"), "Environments")

    class Meta:
        model = ReleaseWindow
        fields = WINDOW_FIELDS
        labels = {"rrule": "Recurrence (RFC 5545 RRULE)"}
        help_texts = {
            "rrule": "E.g. FREQ=WEEKLY;BYDAY=TU,TH or FREQ=MONTHLY;BYDAY=-1FR.",
            "duration": "Hours:minutes:seconds, e.g. 04:00:00.",
        }
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "first_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "start_time": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }


class FreezeForm(RuleForm):
    """A blackout period on services and environments."""

    service_fields = FREEZE_FIELDS
    services = _scope_field(Service.objects.order_by("name"), "Services")
    environments = _scope_field(Environment.objects.order_by("promotion_order", "name"), "Environments")

    class Meta:
        model = FreezePeriod
        fields = FREEZE_FIELDS
        labels = {"start": "Start (UTC)", "end": "End (UTC)"}
        help_texts = {"end": "Exclusive: deployments may start again at this moment."}
        widgets = {"start": DATETIME_WIDGET, "end": DATETIME_WIDGET, "reason": forms.Textarea(attrs={"rows": 2})}
