"""The deployments app's forms in the browser: starting a deployment, extending an Early Life Support period,
opening and editing an incident and correcting its link to a deployment: what the API takes, as forms a person
fills in. The services check everything again; a form only catches what can be said of the input alone."""

from django import forms
from django.db.models import Case, Q, When

from cmdb.choices import CI_TERMINAL_STATES, EnvironmentTier
from cmdb.models import ConfigurationItem, Environment
from deployments.choices import DeploymentModel, IncidentSeverity
from deployments.correlation import correlation_candidates, correlation_window
from deployments.models import Deployment, DeploymentProcess, Incident
from rdm_site.domain import REASON_MAX_LENGTH, TEXT_MAX_LENGTH
from releases.choices import CHANGE_AUTHORISED_STATES, ChangeType
from releases.models import ChangeRecord, ReleasePackage

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


def _reason(label: str, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=help_text,
    )


class ElsExtendForm(forms.Form):
    """Keep watching longer: until when, and why (``els_extend`` wants the new end later than the current)."""

    new_end = forms.DateTimeField(
        widget=DATETIME_WIDGET, label="New planned end (UTC)", help_text="Later than the current planned end."
    )
    reason = _reason("Reason", "Why the staff stay on duty longer.")


def _ci_label(ci: ConfigurationItem) -> str:
    service = ci.service.name if ci.service else "no service"
    return f"{service}: {ci.name} ({ci.environment.name})"


def _deployment_label(deployment: Deployment) -> str:
    finished = f", finished {deployment.finished_at:%Y-%m-%d %H:%M} UTC" if deployment.finished_at else ""
    return f"{deployment} ({deployment.get_state_display().lower()}{finished})"


class IncidentForm(forms.Form):
    """What is known of an incident: what happened, how bad it is, and the CI (of which service) it concerns."""

    title = forms.CharField(label="Title", max_length=Incident._meta.get_field("title").max_length)
    description = forms.CharField(
        label="Description", required=False, max_length=TEXT_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 5})
    )
    severity = forms.ChoiceField(
        label="Severity",
        choices=[("", "---------"), *IncidentSeverity.choices],
        help_text="P1: the service is down for everyone; P4: a nuisance.",
    )
    ci = forms.ModelChoiceField(
        ConfigurationItem.objects.exclude(state__in=CI_TERMINAL_STATES)
        .select_related("service", "environment")
        .order_by("service__name", "environment__promotion_order", "name"),
        required=False,
        label="Service and CI",
        help_text="The CI that misbehaves; an incident names its CI, its deployment, or both.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["ci"].label_from_instance = _ci_label


class IncidentOpenForm(IncidentForm):
    """A person opens an incident; when it names no deployment, RDM looks for the one that changed its CI."""

    deployment = forms.ModelChoiceField(
        Deployment.objects.filter(environment__tier=EnvironmentTier.PRODUCTION, started_at__isnull=False)
        .select_related("service", "environment")
        .order_by("-started_at", "-id"),
        required=False,
        label="Deployment",
        help_text="The production deployment that caused it, when known; empty: RDM looks for it by the CI.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["deployment"].label_from_instance = _deployment_label


class IncidentCorrelationForm(forms.Form):
    """Put right which deployment caused the incident: one of the production deployments that succeeded shortly
    before it opened, or none."""

    deployment = forms.ModelChoiceField(
        Deployment.objects.none(), required=False, label="Caused by", empty_label="No deployment caused it"
    )
    reason = _reason("Reason", "Why the link changes: it is kept in the incident's history.")

    def __init__(self, *args, incident: Incident, **kwargs):
        super().__init__(*args, initial={"deployment": incident.deployment_id}, **kwargs)
        candidates = Q(pk__in=correlation_candidates(incident).values("pk"))
        if incident.deployment_id:
            candidates |= Q(pk=incident.deployment_id)
        field = self.fields["deployment"]
        field.queryset = (
            Deployment.objects.filter(candidates)
            .select_related("service", "environment")
            .order_by("-finished_at", "-id")
        )
        field.label_from_instance = _deployment_label
        hours = int(correlation_window().total_seconds() // 3600)
        field.help_text = f"Production deployments that succeeded in the {hours} hours before it opened."


class RedeployForm(forms.Form):
    """Rolling back what runs in an environment: which earlier package goes back, why, and how (``packages``: those
    that succeeded there before, newest first; the first, the last good one, is chosen already)."""

    package = forms.ModelChoiceField(None, label="Package", empty_label=None)
    reason = forms.CharField(label="Why", widget=forms.Textarea(attrs={"rows": 3}), max_length=REASON_MAX_LENGTH)
    change = forms.ModelChoiceField(
        ChangeRecord.objects.none(),
        required=False,
        label="Under emergency change",
        help_text="By default, the change of the deployment it replaces (while approved or implemented).",
    )
    with_analysis = forms.BooleanField(
        required=False,
        label="Keep bake times and health gates",
        help_text="By default a rollback takes the fast path without them; a unit that cannot be reversed refuses it.",
    )

    def __init__(self, *args, packages, **kwargs):
        super().__init__(*args, **kwargs)
        order = Case(*[When(pk=package.pk, then=rank) for rank, package in enumerate(packages)], default=len(packages))
        chosen = ReleasePackage.objects.filter(pk__in=[package.pk for package in packages]).select_related("release")
        self.fields["package"].queryset = chosen.order_by(order)
        self.fields["package"].label_from_instance = lambda package: f"{package.version} (release {package.release})"
        self.fields["package"].initial = packages[0].pk if packages else None
        self.fields["change"].queryset = ChangeRecord.objects.filter(
            change_type=ChangeType.EMERGENCY, state__in=CHANGE_AUTHORISED_STATES
        ).order_by("-planned_start")
