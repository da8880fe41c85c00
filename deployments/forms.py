"""The deployments app's forms in the browser: starting a deployment, extending an Early Life Support period,
opening and editing an incident and correcting its link to a deployment: what the API takes, as forms a person
fills in. The services check everything again; a form only catches what can be said of the input alone."""

from django import forms
from django.db.models import Case, Q, When

from cmdb.choices import CI_TERMINAL_STATES, EnvironmentTier
from cmdb.models import ConfigurationItem, Environment
from deployments.choices import DeploymentModel, IncidentSeverity
from deployments.correlation import correlation_candidates
from deployments.executors.http_call import METHODS
from deployments.models import Deployment, DeploymentProcess, Incident
from deployments.parallel import SET_BY_ATTRIBUTE
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
    """Step 1 of a start: the process, the environment and the model with its plan (the fields of the model
    chosen are shown); the plan is stored on submit and shown (step 2) before anything runs. ``release``
    narrows the choices to its services and its change records. The plan builder (``deployment_create``)
    judges the plan; ``add_plan_problems`` shows each problem on its field."""

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
        required=False, min_value=0, label="Canary targets", help_text="Targets in a first, canary wave."
    )
    percentages = forms.CharField(
        required=False,
        max_length=200,
        label="Waves by percentage",
        help_text="Cumulative percentages of the targets, for example 50, 100.",
    )
    rings = forms.CharField(
        required=False,
        max_length=500,
        label="Waves by ring",
        help_text="Instead of percentages: ring labels in order, for example canary, eu, us.",
    )
    set_by = forms.ChoiceField(
        required=False,
        choices=[("ring", "Ring"), ("group", "Group"), (SET_BY_ATTRIBUTE, "CI attribute")],
        initial="ring",
        label="Sets named by",
        help_text="What names the two sets of targets: the targets' ring, their group, or a CI attribute.",
    )
    set_attribute = forms.CharField(
        required=False,
        max_length=100,
        label="CI attribute",
        help_text="When the sets are named by a CI attribute: its name, for example colour.",
    )
    live_set = forms.CharField(
        required=False, max_length=100, label="Live set", help_text="The set serving now; it is not touched."
    )
    parallel_set = forms.CharField(
        required=False,
        max_length=100,
        label="Parallel set",
        help_text="The set that gets the new version, then the traffic.",
    )
    cutover_url = forms.CharField(
        required=False,
        max_length=2000,
        label="Cutover call URL",
        help_text="The call that switches traffic to the parallel set (load balancer, DNS, service mesh).",
    )
    cutover_method = forms.ChoiceField(
        required=False, choices=[(method, method) for method in METHODS], initial="POST", label="Cutover call method"
    )
    cutover_rollback_url = forms.CharField(
        required=False,
        max_length=2000,
        label="Cut-back call URL",
        help_text="The call that switches traffic back to the live set: the rollback.",
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

    # Fields shown only for one model (the rest are every model's), in the order the page shows them.
    MODEL_FIELDS = {
        DeploymentModel.PHASED: ("canary", "percentages", "rings"),
        DeploymentModel.PARALLEL: (
            "set_by",
            "set_attribute",
            "live_set",
            "parallel_set",
            "cutover_url",
            "cutover_method",
            "cutover_rollback_url",
        ),
    }
    # Which field a problem of the plan builder is about, by how the problem begins (the first match counts).
    PLAN_PROBLEM_FIELDS = (
        ("cutover: rollback_url", "cutover_rollback_url"),
        ("cutover: url", "cutover_url"),
        ("cutover: method", "cutover_method"),
        ("cutover must give the rollback_url", "cutover_rollback_url"),
        ("cutover must give the url", "cutover_url"),
        ("set_by", "set_by"),
        ("live ", "live_set"),
        ("parallel ", "parallel_set"),
        ("the live and the parallel sets", "parallel_set"),
        ("the parallel set", "parallel_set"),
        ("bake_seconds", "bake_seconds"),
        ("canary", "canary"),
        ("percentages", "percentages"),
        ("rings", "rings"),
    )

    def clean(self):
        data = super().clean()
        attribute_named = data.get("set_by") != SET_BY_ATTRIBUTE or data.get("set_attribute")
        if data.get("model") == DeploymentModel.PARALLEL and not attribute_named:
            self.add_error("set_attribute", "Name the CI attribute whose values name the sets.")
        return data

    def clean_percentages(self):
        return _numbers(self.cleaned_data["percentages"])

    def clean_rings(self):
        return [ring.strip() for ring in self.cleaned_data["rings"].split(",") if ring.strip()]

    def field_groups(self) -> list[tuple[str, str, list[forms.BoundField]]]:
        """The visible fields as (model, legend, fields): every model's ("" for the model), each model's own plan
        (the page shows the chosen model's alone), then every model's again."""
        own = {name for names in self.MODEL_FIELDS.values() for name in names}
        common = [field for field in self.visible_fields() if field.name not in own]
        after_model = next(index for index, field in enumerate(common) if field.name == "model") + 1
        plans = [
            (model, f"{DeploymentModel(model).label}: the plan", [self[name] for name in names])
            for model, names in self.MODEL_FIELDS.items()
        ]
        return [("", "", common[:after_model]), *plans, ("", "", common[after_model:])]

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
        if data["model"] == DeploymentModel.PARALLEL:
            set_by = data["set_by"] or "ring"
            cutover = {"url": data["cutover_url"], "method": data["cutover_method"] or "POST"}
            cutover["rollback_url"] = data["cutover_rollback_url"]
            plan.update(
                set_by=set_by + data["set_attribute"] if set_by == SET_BY_ATTRIBUTE else set_by,
                live=data["live_set"],
                parallel=data["parallel_set"],
                cutover={key: value for key, value in cutover.items() if value},
            )
        if data["bake_seconds"] is not None:
            plan["bake_seconds"] = data["bake_seconds"]
        return plan

    def add_plan_problems(self, problems: list) -> None:
        """Show each problem the plan builder found on the field it is about, the others above the form."""
        for problem in map(str, problems):
            field = next((name for start, name in self.PLAN_PROBLEM_FIELDS if problem.startswith(start)), None)
            self.add_error(field, problem[:1].upper() + problem[1:] + ".")


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
        Deployment.objects.none(),
        required=False,
        label="Caused by",
        empty_label="No deployment caused it",
        help_text="Production deployments that succeeded within their release policy's correlation window before it "
        "opened.",
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
