"""Starting a deployment in the browser: what the API's create takes, as a form a person fills in."""

from django import forms

from cmdb.models import Environment
from deployments.choices import DeploymentModel
from deployments.models import DeploymentProcess
from releases.models import ChangeRecord

# Dates are entered and shown in the site's zone (UTC): the labels say so.
DATETIME_WIDGET = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


def _numbers(text: str) -> list[float]:
    try:
        return [float(part) if "." in part else int(part) for part in text.replace(",", " ").split()]
    except ValueError:
        raise forms.ValidationError("Give numbers separated by commas, for example 10, 50, 100.") from None


class DeploymentStartForm(forms.Form):
    """Step 1 of a start: the process, the environment and the model; the plan is stored on submit and shown
    (step 2) before anything runs. ``release`` narrows the choices to its services and its change records."""

    process = forms.ModelChoiceField(
        DeploymentProcess.objects.none(),
        label="Service and process",
        help_text="How the service is deployed: its steps, health gate, bake time and rollback threshold.",
    )
    environment = forms.ModelChoiceField(Environment.objects.order_by("promotion_order", "name"), label="Environment")
    model = forms.ChoiceField(
        choices=DeploymentModel.choices, initial=DeploymentModel.PHASED, widget=forms.RadioSelect, label="Model"
    )
    canary = forms.IntegerField(
        required=False, min_value=0, label="Canary targets", help_text="Phased: targets in a first, canary wave."
    )
    percentages = forms.CharField(
        required=False,
        max_length=200,
        label="Waves by percentage",
        help_text="Phased: cumulative percentages of the targets, for example 50, 100.",
    )
    rings = forms.CharField(
        required=False,
        max_length=500,
        label="Waves by ring",
        help_text="Phased, instead of percentages: ring labels in order, for example canary, eu, us.",
    )
    bake_seconds = forms.IntegerField(
        required=False,
        min_value=0,
        label="Bake time (seconds)",
        help_text="How long each wave runs before its health gate decides; empty: the process's.",
    )
    change = forms.ModelChoiceField(
        ChangeRecord.objects.none(),
        required=False,
        label="Change record",
        help_text="The approved change the deployment implements (needed in production).",
    )
    scheduled_for = forms.DateTimeField(
        required=False,
        widget=DATETIME_WIDGET,
        label="Schedule for (UTC)",
        help_text="Empty: start it now, once you have seen the plan.",
    )

    def __init__(self, *args, release=None, **kwargs):
        super().__init__(*args, **kwargs)
        processes = DeploymentProcess.objects.select_related("service").order_by("service__name", "name")
        changes = ChangeRecord.objects.order_by("-id")
        if release is not None:
            processes = processes.filter(service__in=release.services.all())
            changes = changes.filter(release=release)
        self.fields["process"].queryset = processes
        only = list(processes[:2])
        if len(only) == 1:  # the release's one way to deploy: chosen already
            self.fields["process"].initial = only[0]
        self.fields["process"].label_from_instance = _process_label
        self.fields["change"].queryset = changes

    def clean_percentages(self):
        return _numbers(self.cleaned_data["percentages"])

    def clean_rings(self):
        return [ring.strip() for ring in self.cleaned_data["rings"].split(",") if ring.strip()]

    def phase_plan(self) -> dict:
        """The plan as the service takes it; the service names whatever is wrong with it."""
        data = self.cleaned_data
        plan = {}
        if data["model"] == DeploymentModel.PHASED:
            if data["rings"]:
                plan["rings"] = data["rings"]
            if data["percentages"]:
                plan["percentages"] = data["percentages"]
            if data["canary"]:
                plan["canary"] = data["canary"]
        if data["bake_seconds"] is not None:
            plan["bake_seconds"] = data["bake_seconds"]
        return plan


def _process_label(process: DeploymentProcess) -> str:
    checks = ", ".join(check.get("executor", "?") for check in process.health_checks or []) or "none"
    return f"{process.service}: {process.name} (health gate: {checks}; bake {process.bake_seconds} s)"
