"""How the rollout engine's records are shown and what a write may send. Writes go through the services (the
views call them with ``validated_data``); state fields are read-only; a secret variable's value never leaves.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cmdb.models import Environment, Service
from deployments.choices import CorrelationMethod, DeploymentModel, InterventionAnswer
from deployments.els import els_available_actions, els_criteria_evaluate
from deployments.incidents import incident_available_actions
from deployments.models import (
    Deployment,
    DeploymentProcess,
    EarlyLifeSupport,
    Incident,
    Step,
    StepLog,
    StepTemplate,
    Target,
    Variable,
)
from deployments.selectors import deployment_plan
from deployments.services import deployment_available_actions, step_available_actions
from rdm_site.api.viewsets import ReasonInput
from rdm_site.domain import BIGINT_MAX, REASON_MAX_LENGTH
from rdm_site.representations import representation_register
from releases.models import ChangeRecord, ReleasePackage


def no_nul(value) -> None:
    """PostgreSQL cannot store NUL (``\\u0000``) in text or JSON: refuse it wherever it hides in a JSON value."""
    if isinstance(value, str):
        if "\x00" in value:
            raise serializers.ValidationError("Null characters are not allowed.")
    elif isinstance(value, dict):
        for key, item in value.items():
            no_nul(key)
            no_nul(item)
    elif isinstance(value, list):
        for item in value:
            no_nul(item)


JSON = {"validators": [no_nul]}


@extend_schema_field({"type": "array", "items": {"type": "string"}, "readOnly": True})
class ActionsField(serializers.Field):
    """The transitions the caller may perform now, from the rule table the services enforce (none without a
    request, as in webhook payloads)."""

    def __init__(self, available, **kwargs):
        self.available = available
        super().__init__(
            source="*", read_only=True, help_text="What you may do to it now: POST …/{id}/<action>/.", **kwargs
        )

    def to_representation(self, instance):
        request = self.context.get("request")
        actor = getattr(request, "user", None)
        return self.available(instance, actor) if actor is not None and actor.is_authenticated else []


# --- how a service is deployed --------------------------------------------------------------------------


class StepTemplateSerializer(serializers.ModelSerializer):
    class Meta:
        model = StepTemplate
        fields = [
            "id",
            "process",
            "position",
            "name",
            "executor",
            "parameters",
            "target_filter",
            "run_once",
            "rollback_parameters",
            "retries",
            "timeout_seconds",
        ]
        extra_kwargs = {"parameters": JSON, "rollback_parameters": JSON}


class StepTemplateUpdateSerializer(StepTemplateSerializer):
    """A step stays in its process."""

    class Meta(StepTemplateSerializer.Meta):
        read_only_fields = ["process"]


class ProcessStepSerializer(StepTemplateSerializer):
    class Meta(StepTemplateSerializer.Meta):
        fields = [name for name in StepTemplateSerializer.Meta.fields if name != "process"]
        read_only_fields = fields


class DeploymentProcessSerializer(serializers.ModelSerializer):
    step_templates = ProcessStepSerializer(many=True, read_only=True, help_text="Edited at /step-templates/.")

    class Meta:
        model = DeploymentProcess
        fields = [
            "id",
            "service",
            "name",
            "description",
            "health_checks",
            "bake_seconds",
            "rollback_threshold",
            "step_templates",
            "created",
            "updated",
        ]
        extra_kwargs = {"health_checks": JSON}
        validators = []  # the service names a duplicate name with the rest of the problems


class DeploymentProcessUpdateSerializer(DeploymentProcessSerializer):
    """A process stays with its service."""

    class Meta(DeploymentProcessSerializer.Meta):
        read_only_fields = ["service"]


class VariableSerializer(serializers.ModelSerializer):
    value = serializers.CharField(
        write_only=True, allow_blank=True, max_length=20000, trim_whitespace=False, help_text="Never returned."
    )
    current_value = serializers.SerializerMethodField(help_text="The value; null for a secret (never shown).")

    class Meta:
        model = Variable
        fields = ["id", "service", "environment", "name", "is_secret", "value", "current_value", "updated"]
        validators = []  # setting a variable that exists replaces its value

    def get_current_value(self, variable) -> str | None:
        return None if variable.is_secret else variable.value


class VariableUpdateSerializer(VariableSerializer):
    """A variable keeps its service, environment and name; its value and secrecy change."""

    class Meta(VariableSerializer.Meta):
        read_only_fields = ["service", "environment", "name"]


class TargetSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="ci.name", read_only=True)
    environment = serializers.PrimaryKeyRelatedField(source="ci.environment", read_only=True)
    service = serializers.PrimaryKeyRelatedField(source="ci.service", read_only=True)

    class Meta:
        model = Target
        fields = ["id", "ci", "name", "environment", "service", "ring", "group", "enabled", "created"]


class TargetUpdateSerializer(TargetSerializer):
    class Meta(TargetSerializer.Meta):
        read_only_fields = ["ci"]


# --- rollouts ---------------------------------------------------------------------------------------------


class PlannedStepSerializer(serializers.Serializer):
    name = serializers.CharField()
    executor = serializers.CharField()
    kind = serializers.CharField()
    position = serializers.IntegerField()
    targets = serializers.ListField(child=serializers.CharField())
    state_counts = serializers.DictField(child=serializers.IntegerField(), help_text="Steps per state.")


class PlannedWaveSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    index = serializers.IntegerField()
    name = serializers.CharField()
    state = serializers.CharField()
    targets = serializers.ListField(child=serializers.CharField())
    bake_seconds = serializers.IntegerField()
    health_gate = serializers.ListField(child=serializers.DictField())
    steps = PlannedStepSerializer(many=True)


class DeploymentSerializer(serializers.ModelSerializer):
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Deployment
        fields = [
            "id",
            "service",
            "environment",
            "process",
            "package",
            "change",
            "version",
            "model",
            "phase_plan",
            "rollback_threshold",
            "continuous",
            "state",
            "replaces",
            "fast_rollback",
            "requested_by",
            "scheduled_for",
            "start_wait",
            "start_not_before",
            "started_at",
            "finished_at",
            "pause_kind",
            "pause_reason",
            "outcome",
            "follow_up_problem",
            "last_event_seq",
            "created",
            "updated",
        ]
        read_only_fields = fields


class DeploymentDetailSerializer(DeploymentSerializer):
    """A deployment with its stored plan (waves, their targets and steps, how far each got) and your actions."""

    waves = serializers.SerializerMethodField(help_text="The stored plan, wave by wave.")
    actions = ActionsField(deployment_available_actions)

    class Meta(DeploymentSerializer.Meta):
        fields = [*DeploymentSerializer.Meta.fields, "waves", "actions"]
        read_only_fields = fields

    @extend_schema_field(PlannedWaveSerializer(many=True))
    def get_waves(self, deployment):
        return PlannedWaveSerializer(deployment_plan(deployment), many=True).data


class DeploymentCreateSerializer(serializers.Serializer):
    """What a pipeline or a person sends to plan a deployment: the process (or the service, when it has one
    process), the environment and the model; a production deployment names its package and approved change."""

    process = serializers.PrimaryKeyRelatedField(queryset=DeploymentProcess.objects.all(), required=False)
    service = serializers.PrimaryKeyRelatedField(
        queryset=Service.objects.all(),
        required=False,
        help_text="Instead of the process, when the service has exactly one.",
    )
    environment = serializers.PrimaryKeyRelatedField(queryset=Environment.objects.all())
    model = serializers.ChoiceField(choices=DeploymentModel.choices, default=DeploymentModel.BIG_BANG)
    phase_plan = serializers.JSONField(
        required=False,
        validators=[no_nul],
        help_text=(
            'Phased: {"canary": 1, "percentages": [10, 50, 100]} or {"rings": ["a", "b"]}; "bake_seconds". '
            'Parallel (blue/green): {"set_by": "ring" | "group" | "attribute:<CI attribute>", "live": "blue", '
            '"parallel": "green", "cutover": {"url": ..., "method": "POST", "rollback_url": ...}, "bake_seconds": 0}.'
        ),
    )
    package = serializers.PrimaryKeyRelatedField(queryset=ReleasePackage.objects.all(), required=False, allow_null=True)
    change = serializers.PrimaryKeyRelatedField(queryset=ChangeRecord.objects.all(), required=False, allow_null=True)
    version = serializers.CharField(required=False, allow_blank=True, max_length=100)
    rollback_threshold = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
    continuous = serializers.BooleanField(default=False, help_text="Requested by a pipeline (continuous delivery).")
    scheduled_for = serializers.DateTimeField(required=False, allow_null=True)

    def validate(self, attrs):
        process, service = attrs.get("process"), attrs.pop("service", None)
        if process is None and service is None:
            raise serializers.ValidationError({"process": "Name the process, or the service it deploys."})
        if process is not None and service is not None and process.service_id != service.pk:
            raise serializers.ValidationError({"process": f"The process {process} does not deploy {service}."})
        if process is None:
            processes = list(service.deployment_processes.all()[:2])
            if len(processes) != 1:
                found = "no deployment process" if not processes else "several deployment processes"
                raise serializers.ValidationError({"service": f"{service} has {found}: name the process."})
            attrs["process"] = processes[0]
        return attrs


class RollBackReleaseInput(serializers.Serializer):
    """Rolling back a deployment that succeeded by redeploying an earlier package (by default the one before it)."""

    reason = serializers.CharField(max_length=REASON_MAX_LENGTH, help_text="Why the release is rolled back.")
    package = serializers.PrimaryKeyRelatedField(
        queryset=ReleasePackage.objects.all(),
        required=False,
        allow_null=True,
        default=None,
        help_text="A package that succeeded there before the deployment; by default the last good one.",
    )
    change = serializers.PrimaryKeyRelatedField(
        queryset=ChangeRecord.objects.all(),
        required=False,
        allow_null=True,
        default=None,
        help_text="An approved emergency change to carry it out under; by default the replaced deployment's own.",
    )
    with_analysis = serializers.BooleanField(
        default=False,
        help_text="Keep the bake times and health gates; by default the rollback takes the fast path without them "
        "(a unit that cannot be reversed refuses it either way).",
    )


class RedeployInput(RollBackReleaseInput):
    """Redeploying an earlier package where it succeeded before, in place of what runs there now."""

    service = serializers.PrimaryKeyRelatedField(queryset=Service.objects.all())
    environment = serializers.PrimaryKeyRelatedField(queryset=Environment.objects.all())
    package = serializers.PrimaryKeyRelatedField(
        queryset=ReleasePackage.objects.all(), help_text="A package of the service that succeeded there before."
    )


class ScheduleInput(ReasonInput):
    scheduled_for = serializers.DateTimeField(help_text="When it starts by itself (inside a window, outside freezes).")


class StepSerializer(serializers.ModelSerializer):
    target_name = serializers.CharField(source="target.ci.name", read_only=True, default=None)
    answered_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    actions = ActionsField(step_available_actions)

    class Meta:
        model = Step
        fields = [
            "id",
            "deployment",
            "wave",
            "target",
            "target_name",
            "kind",
            "position",
            "name",
            "executor",
            "parameters",
            "state",
            "attempt",
            "max_attempts",
            "timeout_seconds",
            "due_at",
            "started_at",
            "finished_at",
            "message",
            "output",
            "manual_answer",
            "answered_by",
            "answered_at",
            "deadline",
            "rolls_back",
            "actions",
        ]
        read_only_fields = fields


class AnswerInput(ReasonInput):
    answer = serializers.ChoiceField(choices=InterventionAnswer.choices, help_text="Go on, or abort the rollout.")


class StepLogSerializer(serializers.ModelSerializer):
    class Meta:
        model = StepLog
        fields = ["id", "step", "at", "level", "message"]
        read_only_fields = fields


class DeploymentEventSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    type = serializers.CharField()
    deployment = serializers.IntegerField()
    wave = serializers.IntegerField(allow_null=True)
    step = serializers.IntegerField(allow_null=True)
    state = serializers.CharField()
    at = serializers.DateTimeField()
    message = serializers.CharField(allow_blank=True)


class DeploymentEventsSerializer(serializers.Serializer):
    events = DeploymentEventSerializer(many=True)
    last_seq = serializers.IntegerField(help_text="The newest event's number: ask ?after= it next.")
    more = serializers.BooleanField(help_text="More events follow the ones returned: ask again at once.")


class EventsQuery(serializers.Serializer):
    after = serializers.IntegerField(default=0, min_value=0, max_value=BIGINT_MAX, help_text="The last seq you saw.")
    limit = serializers.IntegerField(default=500, min_value=1, max_value=1000)


# --- incidents --------------------------------------------------------------------------------------------


class CorrelationSerializer(serializers.Serializer):
    """Which deployment caused the incident, and how RDM (or a person) found it."""

    deployment = serializers.IntegerField(source="deployment_id", read_only=True, allow_null=True)
    method = serializers.ChoiceField(source="correlation", choices=CorrelationMethod.choices, read_only=True)


class IncidentSerializer(serializers.ModelSerializer):
    opened_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    correlation = CorrelationSerializer(source="*", read_only=True)
    actions = ActionsField(incident_available_actions)

    class Meta:
        model = Incident
        fields = [
            "id",
            "title",
            "description",
            "severity",
            "state",
            "deployment",
            "release",
            "ci",
            "correlation",
            "source",
            "external_id",
            "opened_by",
            "opened_at",
            "acknowledged_at",
            "resolved_at",
            "closed_at",
            "updated",
            "actions",
        ]
        read_only_fields = ["state", "opened_at", "acknowledged_at", "resolved_at", "closed_at", "updated"]
        extra_kwargs = {"description": {"max_length": 20000}}
        validators = []  # an alert's id that is already open updates that incident (incident_open)


class IncidentUpdateSerializer(IncidentSerializer):
    class Meta(IncidentSerializer.Meta):
        read_only_fields = [*IncidentSerializer.Meta.read_only_fields, "source", "external_id"]


class CorrectCorrelationInput(serializers.Serializer):
    """The deployment that caused the incident (null: none did), and why the link changes."""

    deployment = serializers.PrimaryKeyRelatedField(queryset=Deployment.objects.all(), allow_null=True)
    reason = serializers.CharField(max_length=REASON_MAX_LENGTH)


# --- early life support -------------------------------------------------------------------------------------


class CriterionSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="max_open_p1_p2, max_incidents or min_duration.")
    label = serializers.CharField()
    met = serializers.BooleanField()
    figure = serializers.CharField(help_text="What was found.")
    limit = serializers.CharField(help_text="What the plan allows.")


class ElsSerializer(serializers.ModelSerializer):
    staff = serializers.SlugRelatedField(slug_field="username", many=True, read_only=True)
    criteria = serializers.SerializerMethodField(help_text="Each exit criterion now: met or not, with its figures.")
    actions = ActionsField(els_available_actions)

    class Meta:
        model = EarlyLifeSupport
        fields = [
            "id",
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
            "created",
            "updated",
            "actions",
        ]
        read_only_fields = fields

    @extend_schema_field(CriterionSerializer(many=True))
    def get_criteria(self, els):
        return CriterionSerializer(els_criteria_evaluate(els), many=True).data


class ElsExtendInput(serializers.Serializer):
    """Why the watch goes on, and until when (later than the current planned end)."""

    reason = serializers.CharField(max_length=REASON_MAX_LENGTH)
    new_end = serializers.DateTimeField()


for model, serializer in (
    (DeploymentProcess, DeploymentProcessSerializer),
    (StepTemplate, StepTemplateSerializer),
    (Variable, VariableSerializer),
    (Target, TargetSerializer),
    (Deployment, DeploymentDetailSerializer),
    (Step, StepSerializer),
    (Incident, IncidentSerializer),
    (EarlyLifeSupport, ElsSerializer),
):
    representation_register(model, serializer)
