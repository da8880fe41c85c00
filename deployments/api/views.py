"""The rollout engine's API: how services are deployed (processes, step templates, variables, targets), the
deployments themselves with every control as ``POST …/{id}/<transition>/``, their steps, logs and events, and
incidents (with Alertmanager's webhook). Every write calls a service, which decides who may (403 with its
reason) and what the state allows (409) or the conditions need (422).
"""

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from deployments import els, incidents, redeploy, services
from deployments.api.alertmanager import AlertmanagerOutcomeSerializer, AlertmanagerPayloadSerializer, alerts_apply
from deployments.api.serializers import (
    AnswerInput,
    CorrectCorrelationInput,
    DeploymentCreateSerializer,
    DeploymentDetailSerializer,
    DeploymentEventsSerializer,
    DeploymentProcessSerializer,
    DeploymentProcessUpdateSerializer,
    DeploymentSerializer,
    ElsExtendInput,
    ElsSerializer,
    EventsQuery,
    IncidentSerializer,
    IncidentUpdateSerializer,
    PlannedWaveSerializer,
    RedeployInput,
    RollBackReleaseInput,
    ScheduleInput,
    StepLogSerializer,
    StepSerializer,
    StepTemplateSerializer,
    StepTemplateUpdateSerializer,
    TargetSerializer,
    TargetUpdateSerializer,
    VariableSerializer,
    VariableUpdateSerializer,
)
from deployments.filtersets import (
    DeploymentFilterSet,
    DeploymentProcessFilterSet,
    ElsFilterSet,
    IncidentFilterSet,
    StepFilterSet,
    StepLogFilterSet,
    StepTemplateFilterSet,
    TargetFilterSet,
    VariableFilterSet,
)
from deployments.selectors import (
    deployment_events_since,
    deployment_list,
    deployment_plan,
    deployment_rows,
    incident_list,
    process_list,
    step_list,
    step_log_list,
    step_template_list,
    target_list,
    variable_list,
)
from rdm_site.api.pagination import IdCursorPagination
from rdm_site.api.permissions import TransitionPermission
from rdm_site.api.viewsets import (
    PROBLEMS,
    RdmModelViewSet,
    RdmReadOnlyViewSet,
    RdmViewSetMixin,
    Transition,
    etag_of,
    transition_action,
)

WRITE_PROBLEMS = {code: PROBLEMS[code] for code in (400, 401, 403, 404, 409, 412, 422, 429)}
READ_PROBLEMS = {code: PROBLEMS[code] for code in (400, 401, 403, 404, 429)}


class ServiceDecidesMixin:
    """Writes need only a signed-in caller who may read the collection: the service asks its own permission
    question, so the API refuses exactly what the service refuses, with the service's reason."""

    permission_classes = [TransitionPermission]

    def perform_create(self, serializer):
        serializer.instance = self.create_through_service(serializer.validated_data)

    def perform_update(self, serializer):
        self.check_if_match(serializer.instance)
        serializer.instance = self.update_through_service(serializer.instance, serializer.validated_data)


NOT_MODIFIED = OpenApiResponse(description="Not modified since the ETag given in If-None-Match.")


def _documented(noun: str, output, *, create_input=None, update_input=None, destroy=False, **extra):
    """Summaries, bodies and error answers of a collection's standard operations (``extra`` overrides some);
    ``create_input`` and ``update_input`` are the request bodies (None: no such operation)."""
    operations = {
        "list": extend_schema(summary=f"List {noun}s", responses={200: output(many=True), **READ_PROBLEMS}),
        "retrieve": extend_schema(
            summary=f"Read one {noun}", responses={200: output, 304: NOT_MODIFIED, **READ_PROBLEMS}
        ),
    }
    if create_input is not None:
        operations["create"] = extend_schema(
            summary=f"Create a {noun}", request=create_input, responses={201: output, **WRITE_PROBLEMS}
        )
    if update_input is not None:
        operations["update"] = extend_schema(
            summary=f"Replace a {noun}", request=update_input, responses={200: output, **WRITE_PROBLEMS}
        )
        operations["partial_update"] = extend_schema(
            summary=f"Change some fields of a {noun}", request=update_input, responses={200: output, **WRITE_PROBLEMS}
        )
    if destroy:
        operations["destroy"] = extend_schema(
            summary=f"Delete a {noun}", responses={204: OpenApiResponse(description="Deleted."), **WRITE_PROBLEMS}
        )
    return extend_schema_view(**{**operations, **extra})


# --- how a service is deployed ----------------------------------------------------------------------------


@_documented(
    "deployment process",
    DeploymentProcessSerializer,
    create_input=DeploymentProcessSerializer,
    update_input=DeploymentProcessUpdateSerializer,
)
class DeploymentProcessViewSet(ServiceDecidesMixin, RdmModelViewSet):
    """How a service is deployed: its ordered step templates, health gate, bake time and rollback threshold."""

    queryset = process_list()
    serializer_class = DeploymentProcessSerializer
    filterset_class = DeploymentProcessFilterSet
    ordering_fields = ["name", "created", "updated"]
    search_fields = ["name", "service__name"]
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def create_through_service(self, data):
        return services.process_create(actor=self.request.user, **data)

    def get_serializer_class(self):
        updating = self.action in ("update", "partial_update")
        return DeploymentProcessUpdateSerializer if updating else DeploymentProcessSerializer

    def update_through_service(self, process, data):
        return services.process_update(process=process, actor=self.request.user, data=data)


@_documented(
    "step template",
    StepTemplateSerializer,
    create_input=StepTemplateSerializer,
    update_input=StepTemplateUpdateSerializer,
    destroy=True,
)
class StepTemplateViewSet(ServiceDecidesMixin, RdmModelViewSet):
    """One step of a process: an executor with parameters (``#{Variable}`` allowed), on the matching targets.
    Deployments already planned keep the steps they copied."""

    queryset = step_template_list()
    serializer_class = StepTemplateSerializer
    filterset_class = StepTemplateFilterSet
    ordering_fields = ["position", "name", "id"]
    search_fields = ["name", "executor"]

    def create_through_service(self, data):
        return services.step_template_create(actor=self.request.user, **data)

    def get_serializer_class(self):
        return StepTemplateUpdateSerializer if self.action in ("update", "partial_update") else StepTemplateSerializer

    def update_through_service(self, template, data):
        return services.step_template_update(template=template, actor=self.request.user, data=data)

    def perform_destroy(self, instance):
        self.check_if_match(instance)
        services.step_template_delete(template=instance, actor=self.request.user)


@_documented("variable", VariableSerializer, create_input=VariableSerializer, update_input=VariableUpdateSerializer)
class VariableViewSet(ServiceDecidesMixin, RdmModelViewSet):
    """Values for ``#{Name}`` in step parameters, per service and environment. A secret's value is written
    here and never read back (``current_value`` is null); setting a variable that exists replaces its value."""

    queryset = variable_list()
    serializer_class = VariableSerializer
    filterset_class = VariableFilterSet
    ordering_fields = ["name", "updated"]
    search_fields = ["name"]
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def get_serializer_class(self):
        return VariableUpdateSerializer if self.action in ("update", "partial_update") else VariableSerializer

    def create_through_service(self, data):
        return services.variable_set(actor=self.request.user, **data)

    def update_through_service(self, variable, data):
        is_secret = data.get("is_secret", variable.is_secret)
        value = data["value"] if "value" in data else variable.plain_value()
        return services.variable_set(
            actor=self.request.user,
            service=variable.service,
            environment=variable.environment,
            name=variable.name,
            value=value,
            is_secret=is_secret,
        )


@_documented("deployment target", TargetSerializer, create_input=TargetSerializer, update_input=TargetUpdateSerializer)
class TargetViewSet(ServiceDecidesMixin, RdmModelViewSet):
    """Live CIs that take part in rollouts, labelled with a ring and a group (phased rollouts go ring by ring)."""

    queryset = target_list()
    serializer_class = TargetSerializer
    filterset_class = TargetFilterSet
    ordering_fields = ["ci__name", "ring", "created"]
    search_fields = ["ci__name", "ring", "group"]
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def get_serializer_class(self):
        return TargetUpdateSerializer if self.action in ("update", "partial_update") else TargetSerializer

    def create_through_service(self, data):
        return services.target_create(actor=self.request.user, **data)

    def update_through_service(self, target, data):
        return services.target_update(target=target, actor=self.request.user, data=data)


# --- rollouts -------------------------------------------------------------------------------------------

_REQUEST_EXAMPLE = OpenApiExample(
    "A pipeline requests a production deployment",
    value={
        "service": 3,
        "environment": 4,
        "model": "phased",
        "phase_plan": {"canary": 1, "percentages": [50, 100]},
        "package": 12,
        "change": 31,
        "continuous": True,
    },
    request_only=True,
)


def _reasoned(service):
    return lambda *, deployment, actor, reason="": service(deployment=deployment, actor=actor, reason=reason)


@_documented(
    "deployment",
    DeploymentDetailSerializer,
    list=extend_schema(summary="List deployments", responses={200: DeploymentSerializer(many=True), **READ_PROBLEMS}),
    create=extend_schema(
        summary="Plan a deployment: its waves and steps are computed and stored now, and returned",
        request=DeploymentCreateSerializer,
        responses={201: DeploymentDetailSerializer, **WRITE_PROBLEMS},
        examples=[_REQUEST_EXAMPLE],
    ),
    destroy=extend_schema(
        summary="Delete a deployment that never left planned",
        responses={204: OpenApiResponse(description="Deleted."), **WRITE_PROBLEMS},
    ),
)
class DeploymentViewSet(
    RdmViewSetMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """A package rolled out to one environment under a deployment model. Planned by ``POST``, then moved only
    by its controls; follow it at ``/{id}/`` and ``/{id}/events/?after=SEQ``, its steps at ``/steps/``."""

    queryset = deployment_list()
    permission_classes = [TransitionPermission]
    filterset_class = DeploymentFilterSet
    ordering_fields = ["created", "finished_at", "scheduled_for", "id"]
    search_fields = ["service__name", "version", "environment__name"]

    def get_serializer_class(self):
        return DeploymentSerializer if self.action == "list" else DeploymentDetailSerializer

    def get_queryset(self):
        # A page of rows needs none of the related records the detail's available actions read.
        return deployment_rows() if self.action == "list" else super().get_queryset()

    def create(self, request, *args, **kwargs):
        given = DeploymentCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        deployment = services.deployment_create(actor=request.user, **given.validated_data)
        data = self.representation(self.get_queryset().get(pk=deployment.pk))
        return Response(data, status=status.HTTP_201_CREATED, headers={"ETag": etag_of(data)})

    def perform_destroy(self, instance):
        self.check_if_match(instance)
        services.deployment_delete(deployment=instance, actor=self.request.user, reason="deleted through the API")

    @extend_schema(
        summary="The stored plan: waves, their targets, and each step with how far it got",
        responses={200: PlannedWaveSerializer(many=True), **READ_PROBLEMS},
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def plan(self, request, pk=None):
        return Response(PlannedWaveSerializer(deployment_plan(self.get_object()), many=True).data)

    @extend_schema(
        summary="Replay the numbered events after SEQ (what a live view missed), oldest first",
        parameters=[EventsQuery],
        responses={200: DeploymentEventsSerializer, **READ_PROBLEMS},
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def events(self, request, pk=None):
        deployment = self.get_object()
        query = EventsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        limit = query.validated_data["limit"]
        events = deployment_events_since(deployment.pk, query.validated_data["after"], limit + 1)
        shown = events[:limit]
        last = shown[-1]["seq"] if shown else query.validated_data["after"]
        return Response({"events": shown, "last_seq": last, "more": len(events) > limit})

    schedule = transition_action(
        "schedule",
        services.deployment_schedule,
        record="deployment",
        output=DeploymentDetailSerializer,
        input_serializer=ScheduleInput,
    )
    start = transition_action(
        "start",
        _reasoned(services.deployment_start),
        record="deployment",
        output=DeploymentDetailSerializer,
        summary="Take the (service, environment) lock and start the rollout now",
    )
    pause = transition_action(
        "pause",
        _reasoned(services.deployment_pause),
        record="deployment",
        output=DeploymentDetailSerializer,
        summary="Pause: no new step starts; the steps already running finish",
    )
    resume = transition_action(
        "resume",
        _reasoned(services.deployment_resume),
        record="deployment",
        output=DeploymentDetailSerializer,
        summary="Resume where it stopped, once the reason to pause is gone",
    )
    abort = transition_action(
        "abort",
        _reasoned(services.deployment_abort),
        record="deployment",
        output=DeploymentDetailSerializer,
        summary="Abort for good: no new step starts, nothing is rolled back",
    )
    roll_back = transition_action(
        "roll_back",
        _reasoned(services.deployment_rollback),
        record="deployment",
        output=DeploymentDetailSerializer,
        summary="Roll back now: undo the waves done, the last one first",
    )
    fail = transition_action(
        "fail",
        _reasoned(services.deployment_fail),
        record="deployment",
        output=DeploymentDetailSerializer,
        summary="Mark a paused rollout failed instead of rolling it back (fix forward)",
    )

    def _started(self, deployment):
        data = self.representation(self.get_queryset().get(pk=deployment.pk))
        return Response(data, status=status.HTTP_201_CREATED, headers={"ETag": etag_of(data)})

    @extend_schema(
        summary="Roll back a deployment that succeeded: a new deployment of the last good package replaces it",
        request=RollBackReleaseInput,
        responses={201: DeploymentDetailSerializer, **WRITE_PROBLEMS},
    )
    @action(detail=True, methods=["post"], url_path="roll-back-release", permission_classes=[TransitionPermission])
    def roll_back_release(self, request, pk=None):
        deployment = self.get_object()
        given = RollBackReleaseInput(data=request.data)
        given.is_valid(raise_exception=True)
        return self._started(
            redeploy.deployment_roll_back_release(deployment=deployment, actor=request.user, **given.validated_data)
        )

    # the browser's transition view takes the same input and calls the same service
    roll_back_release.transition = Transition(redeploy.deployment_roll_back_release, "deployment", RollBackReleaseInput)

    @extend_schema(
        summary="Redeploy an earlier package where it succeeded before, in place of what runs there now",
        request=RedeployInput,
        responses={201: DeploymentDetailSerializer, **WRITE_PROBLEMS},
    )
    @action(detail=False, methods=["post"], permission_classes=[TransitionPermission])
    def redeploy(self, request):
        given = RedeployInput(data=request.data)
        given.is_valid(raise_exception=True)
        return self._started(redeploy.deployment_redeploy(actor=request.user, **given.validated_data))


@extend_schema_view(
    list=extend_schema(
        summary="List steps (cursor pagination)", responses={200: StepSerializer(many=True), **READ_PROBLEMS}
    ),
    retrieve=extend_schema(
        summary="Read one step", responses={200: StepSerializer, 304: NOT_MODIFIED, **READ_PROBLEMS}
    ),
)
class StepViewSet(RdmReadOnlyViewSet):
    """Every step of every deployment (filter by ``deployment``; ``waiting=true`` for manual interventions
    waiting for an answer), oldest first."""

    queryset = step_list()
    serializer_class = StepSerializer
    filterset_class = StepFilterSet
    pagination_class = IdCursorPagination
    permission_classes = [TransitionPermission]
    ordering_fields = ["id"]
    search_fields = ["name", "target__ci__name"]

    answer = transition_action(
        "answer",
        lambda *, step, actor, answer, reason="": services.step_answer(
            step=step, actor=actor, answer=answer, reason=reason
        ),
        record="step",
        output=StepSerializer,
        input_serializer=AnswerInput,
        summary="Answer a manual intervention (proceed or abort) before its deadline",
    )


@extend_schema_view(
    list=extend_schema(
        summary="List step log lines (cursor pagination)",
        responses={200: StepLogSerializer(many=True), **READ_PROBLEMS},
    ),
    retrieve=extend_schema(
        summary="Read one step log line", responses={200: StepLogSerializer, 304: NOT_MODIFIED, **READ_PROBLEMS}
    ),
)
class StepLogViewSet(RdmReadOnlyViewSet):
    """The operational log of steps (filter by ``step`` or ``deployment``), secrets masked, oldest first."""

    queryset = step_log_list()
    serializer_class = StepLogSerializer
    filterset_class = StepLogFilterSet
    pagination_class = IdCursorPagination
    ordering_fields = ["id"]
    search_fields = ["message"]


# --- incidents ------------------------------------------------------------------------------------------

_ALERTMANAGER_EXAMPLE = OpenApiExample(
    "Alertmanager: one alert firing",
    value={
        "version": "4",
        "status": "firing",
        "receiver": "rdm",
        "groupKey": '{}:{alertname="HighErrorRate"}',
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "HighErrorRate",
                    "severity": "critical",
                    "ci": "shop-app",
                    "environment": "production",
                },
                "annotations": {"summary": "5xx above 5 %", "description": "shop-app answers 5xx to 7 % of requests"},
                "startsAt": "2030-01-31T22:05:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "https://prometheus.example/graph?g0.expr=...",
                "fingerprint": "c3a2f0e1b4d5a6c7",
            }
        ],
    },
    request_only=True,
)


def _moved(service):
    return lambda *, incident, actor, reason="": service(incident=incident, actor=actor, reason=reason)


@_documented(
    "incident",
    IncidentSerializer,
    update_input=IncidentUpdateSerializer,
    create=extend_schema(
        summary="Open an incident (or update the live one with the same source and external_id: 200)",
        request=IncidentSerializer,
        responses={201: IncidentSerializer, 200: IncidentSerializer, **WRITE_PROBLEMS},
        examples=[
            OpenApiExample(
                "Monitoring opens a P2 against a deployment",
                value={
                    "title": "Checkout latency above 2 s",
                    "severity": "p2",
                    "deployment": 42,
                    "source": "datadog",
                    "external_id": "monitor-1234",
                },
                request_only=True,
            )
        ],
    ),
)
class IncidentViewSet(ServiceDecidesMixin, RdmModelViewSet):
    """Something went wrong in a live service, tied to a deployment, release or CI. Open → acknowledged →
    resolved → closed (a resolved one may be reopened)."""

    queryset = incident_list()
    serializer_class = IncidentSerializer
    filterset_class = IncidentFilterSet
    ordering_fields = ["opened_at", "severity", "updated", "id"]
    search_fields = ["title", "external_id"]
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def get_serializer_class(self):
        return IncidentUpdateSerializer if self.action in ("update", "partial_update") else IncidentSerializer

    def create(self, request, *args, **kwargs):
        given = self.get_serializer(data=request.data)
        given.is_valid(raise_exception=True)
        incident, new = incidents.incident_open(actor=request.user, **given.validated_data)
        data = self.representation(self.get_queryset().get(pk=incident.pk))
        answer = status.HTTP_201_CREATED if new else status.HTTP_200_OK
        return Response(data, status=answer, headers={"ETag": etag_of(data)})

    def update_through_service(self, incident, data):
        return incidents.incident_update(incident=incident, actor=self.request.user, data=data)

    acknowledge = transition_action(
        "acknowledge",
        _moved(incidents.incident_acknowledge),
        record="incident",
        output=IncidentSerializer,
        summary="Acknowledge: someone is on it",
    )
    resolve = transition_action(
        "resolve",
        _moved(incidents.incident_resolve),
        record="incident",
        output=IncidentSerializer,
        summary="Resolve: the service is restored",
    )
    reopen = transition_action(
        "reopen",
        _moved(incidents.incident_reopen),
        record="incident",
        output=IncidentSerializer,
        summary="Reopen a resolved incident that came back",
    )
    close = transition_action(
        "close",
        _moved(incidents.incident_close),
        record="incident",
        output=IncidentSerializer,
        summary="Close a resolved incident",
    )
    correct_correlation = transition_action(
        "correct_correlation",
        incidents.incident_correlation_correct,
        record="incident",
        output=IncidentSerializer,
        input_serializer=CorrectCorrelationInput,
        summary="Correct which deployment caused the incident (null: none did), with a reason; audited",
    )

    @extend_schema(
        summary="Prometheus Alertmanager webhook: firing alerts open or update incidents, resolved ones resolve them",
        request=AlertmanagerPayloadSerializer,
        responses={200: AlertmanagerOutcomeSerializer, **WRITE_PROBLEMS},
        examples=[_ALERTMANAGER_EXAMPLE],
    )
    @action(detail=False, methods=["post"], permission_classes=[TransitionPermission])
    def alertmanager(self, request):
        given = AlertmanagerPayloadSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        return Response(alerts_apply(actor=request.user, alerts=given.validated_data["alerts"]))


# --- early life support ---------------------------------------------------------------------------------------


@_documented("ELS period", ElsSerializer)
class ElsViewSet(RdmReadOnlyViewSet):
    """Early Life Support periods: one per successful production deployment of a release, started by RDM.
    Scheduled → active ⇄ extended → exited; ``criteria`` shows each exit criterion now."""

    queryset = els.els_list()
    serializer_class = ElsSerializer
    filterset_class = ElsFilterSet
    permission_classes = [TransitionPermission]
    ordering_fields = ["created", "planned_end", "started_at", "id"]
    search_fields = ["release__name", "deployment__service__name"]

    start = transition_action(
        "start",
        els.els_start,
        record="els",
        output=ElsSerializer,
        summary="Start a scheduled period with the release's ELS plan in force now",
    )
    extend = transition_action(
        "extend",
        els.els_extend,
        record="els",
        output=ElsSerializer,
        input_serializer=ElsExtendInput,
        summary="Extend: a reason and a planned end later than the current one",
    )
    withdraw_extension = transition_action(
        "withdraw_extension",
        els.els_extension_withdraw,
        record="els",
        output=ElsSerializer,
        summary="Withdraw the extension: back to the originally planned end",
    )
    exit = transition_action(
        "exit",
        els.els_exit,
        record="els",
        output=ElsSerializer,
        summary="Exit when every criterion holds (each unmet one listed, 422); the release moves to review",
    )
