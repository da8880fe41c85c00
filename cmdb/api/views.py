"""The CMDB's API: environments, services, CIs (lifecycle, impact, relationships, bulk import), relationships,
baselines (and their diffs) and the version matrix. Every write calls a ``cmdb.services`` service.

Environments and services are laid out by administrators: their writes need the model permissions, which no
role holds. For CIs, relationships and baselines the services decide who may (Service Owners only for the
services they own, tokens only with the ``cmdb`` scope) and the refusal carries their reason.
"""

from functools import partial

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from cmdb import selectors, services
from cmdb.api.parsers import CsvImportParser, JsonImportParser, import_source
from cmdb.api.serializers import (
    BaselineDetailSerializer,
    BaselineDiffSerializer,
    BaselineSerializer,
    BaselineTakeSerializer,
    ConfigurationItemSerializer,
    EnvironmentSerializer,
    ImpactPageQuerySerializer,
    ImpactSerializer,
    ImportFileSerializer,
    ImportResultSerializer,
    RelationshipSerializer,
    ServiceSerializer,
    VersionMatrixQuerySerializer,
    VersionMatrixSerializer,
)
from cmdb.choices import CiTransition
from cmdb.exceptions import ImportFailed, InvalidInput
from cmdb.filtersets import (
    BaselineFilterSet,
    ConfigurationItemFilterSet,
    EnvironmentFilterSet,
    RelationshipFilterSet,
    ServiceFilterSet,
)
from cmdb.models import ConfigurationItem
from rdm_site.api.permissions import TransitionPermission
from rdm_site.api.viewsets import PROBLEMS, RdmViewSetMixin, ReasonInput, transition_action

LIST_PROBLEMS = {code: PROBLEMS[code] for code in (400, 401, 403, 429)}
READ_PROBLEMS = {code: PROBLEMS[code] for code in (401, 403, 404, 429)}
WRITE_PROBLEMS = {code: PROBLEMS[code] for code in (400, 401, 403, 404, 409, 412, 429)}


def _documented(noun: str, serializer, *, writes: str, examples=()) -> dict:
    """The summaries and answers of a collection's list, read, create and edit operations."""
    a = "an" if noun[0] in "aeiou" else "a"
    return {
        "list": extend_schema(summary=f"List {noun}s.", responses={200: serializer(many=True), **LIST_PROBLEMS}),
        "retrieve": extend_schema(summary=f"Read {a} {noun}.", responses={200: serializer, **READ_PROBLEMS}),
        "create": extend_schema(
            summary=f"Add {a} {noun} ({writes}).", responses={201: serializer, **WRITE_PROBLEMS}, examples=examples
        ),
        "update": extend_schema(summary=f"Edit {a} {noun} ({writes}).", responses={200: serializer, **WRITE_PROBLEMS}),
        "partial_update": extend_schema(
            summary=f"Edit some fields of {a} {noun} ({writes}).", responses={200: serializer, **WRITE_PROBLEMS}
        ),
    }


class ServiceBackedViewSet(
    RdmViewSetMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """Created and edited through ``create_service`` and ``update_service`` (which takes the record as
    ``record``); never deleted: history points at environments and services, and CIs retire instead.
    """

    record: str
    create_service = None
    update_service = None

    def perform_create(self, serializer):
        serializer.instance = self.create_service(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        self.check_if_match(serializer.instance)
        serializer.instance = self.update_service(
            **{self.record: serializer.instance}, actor=self.request.user, data=serializer.validated_data
        )


@extend_schema_view(**_documented("environment", EnvironmentSerializer, writes="administrators"))
class EnvironmentViewSet(ServiceBackedViewSet):
    """The path releases walk to production. Every role reads it; administrators lay it out."""

    queryset = selectors.environment_list()
    serializer_class = EnvironmentSerializer
    filterset_class = EnvironmentFilterSet
    ordering_fields = ["promotion_order", "name", "tier"]
    search_fields = ["name", "slug", "description"]
    record = "environment"
    create_service = staticmethod(services.environment_create)
    update_service = staticmethod(services.environment_update)


@extend_schema_view(**_documented("service", ServiceSerializer, writes="administrators"))
class ServiceViewSet(ServiceBackedViewSet):
    """Business services, their owners and stakeholders. Every role reads them; administrators define them."""

    queryset = selectors.service_list()
    serializer_class = ServiceSerializer
    filterset_class = ServiceFilterSet
    ordering_fields = ["name", "criticality"]
    search_fields = ["name", "slug", "description"]
    record = "service"
    create_service = staticmethod(services.service_create)
    update_service = staticmethod(services.service_update)


class RetireInput(ReasonInput):
    """Retiring a CI that live CIs depend on is refused; an administrator may override it with a reason."""

    override_dependents = serializers.BooleanField(required=False, default=False)


def _lifecycle_action(transition: CiTransition):
    """``POST /cis/{id}/<transition>/`` with an optional reason, summarised by the model's own transition."""
    return transition_action(
        transition.value,
        partial(services.ci_transition, transition=transition),
        record="ci",
        output=ConfigurationItemSerializer,
        input_serializer=RetireInput if transition == CiTransition.RETIRE else ReasonInput,
        summary=f"{transition.label}. {getattr(ConfigurationItem, transition.value).__doc__.strip().splitlines()[0]}",
    )


CI_EXAMPLE = OpenApiExample(
    "Register an application",
    value={
        "name": "orders-api",
        "ci_type": "application",
        "environment": 3,
        "service": 1,
        "version": "2.4.0",
        "attributes": {"replicas": 3},
    },
    request_only=True,
)
IMPORT_EXAMPLE = OpenApiExample(
    "Discovery upsert",
    value=[
        {"name": "orders-db", "environment": "production", "type": "database", "state": "live", "service": "Orders"},
        {
            "name": "orders-api",
            "environment": "production",
            "type": "application",
            "version": "2.4.0",
            "depends_on": ["orders-db"],
        },
    ],
    request_only=True,
)


@extend_schema_view(
    **_documented(
        "configuration item",
        ConfigurationItemSerializer,
        writes="who may edit the service's CIs",
        examples=[CI_EXAMPLE],
    ),
)
class ConfigurationItemViewSet(ServiceBackedViewSet):
    """Configuration items. Their state moves only through the lifecycle actions; ``actions`` lists yours."""

    queryset = selectors.ci_list()
    serializer_class = ConfigurationItemSerializer
    permission_classes = [TransitionPermission]
    filterset_class = ConfigurationItemFilterSet
    ordering_fields = ["name", "state", "ci_type", "version", "updated", "environment__promotion_order"]
    search_fields = ["name", "version"]
    record = "ci"
    create_service = staticmethod(services.ci_create)
    update_service = staticmethod(services.ci_update)

    build = _lifecycle_action(CiTransition.BUILD)
    go_live = _lifecycle_action(CiTransition.GO_LIVE)
    start_maintenance = _lifecycle_action(CiTransition.START_MAINTENANCE)
    end_maintenance = _lifecycle_action(CiTransition.END_MAINTENANCE)
    retire = _lifecycle_action(CiTransition.RETIRE)

    @extend_schema(
        summary="Every CI and service hurt when this CI breaks: the totals, every service, the CIs a page at a "
        "time, nearest first.",
        description="A broken CI may hurt thousands: `ci_count`, `service_count` and `depths` count them all, "
        "`services` lists them all, and `cis` holds `limit` CIs from `offset` (nearest first); `next` and "
        "`previous` link the neighbouring pages.",
        parameters=[ImpactPageQuerySerializer],
        responses={200: ImpactSerializer, 400: PROBLEMS[400], **READ_PROBLEMS},
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def impact(self, request, pk=None):
        given = ImpactPageQuerySerializer(data=request.query_params)
        given.is_valid(raise_exception=True)
        impact = selectors.ci_impact(self.get_object(), **given.validated_data)
        return Response(ImpactSerializer(impact, context={"request": request}).data)

    @extend_schema(
        summary="The relationships this CI takes part in, as source or as target.",
        responses={200: RelationshipSerializer(many=True), **READ_PROBLEMS},
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def relationships(self, request, pk=None):
        ci = self.get_object()
        return Response(RelationshipSerializer(selectors.ci_relationships(ci), many=True).data)

    @extend_schema(
        summary="Create or update CIs and their relationships from a CSV or JSON file, all or nothing.",
        description="The body is the file itself (`text/csv`, or `application/json` holding a list of objects), "
        "or a multipart form with a `.csv` or `.json` `file`. Columns: `name`, `environment` (its name), `type`, "
        "`version`, `state`, `service` (its name), `owner` (a username), `attributes` (a JSON object) and the "
        "relationships `depends_on`, `runs_on`, `part_of`, `connects_to` (CI names, `name@environment` for "
        "another environment). Every row is checked first: any problem answers 400 listing each one with its "
        "place (`line 4`, `item 3`), and nothing is imported. Importing the same file again changes nothing.",
        request={
            "application/json": {"type": "array", "items": {"type": "object"}},
            "text/csv": {"type": "string"},
            "multipart/form-data": ImportFileSerializer,
        },
        responses={200: ImportResultSerializer, **{code: PROBLEMS[code] for code in (400, 401, 403, 409, 429)}},
        examples=[IMPORT_EXAMPLE],
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[JsonImportParser, CsvImportParser, MultiPartParser],
        filter_backends=[],
        pagination_class=None,
    )
    def import_file(self, request):
        source, file_format = import_source(request)
        try:
            result = services.ci_import(source=source, file_format=file_format, actor=request.user)
        except ImportFailed as failed:
            problems = [{"where": problem.where, "reason": problem.reason} for problem in failed.errors]
            raise InvalidInput(str(failed), problems) from None
        return Response(ImportResultSerializer(result).data)


@extend_schema_view(
    list=extend_schema(
        summary="List relationships between CIs.", responses={200: RelationshipSerializer(many=True), **LIST_PROBLEMS}
    ),
    retrieve=extend_schema(summary="Read one relationship.", responses={200: RelationshipSerializer, **READ_PROBLEMS}),
    create=extend_schema(
        summary="State that a CI depends on, runs on, is part of or connects to another.",
        responses={201: RelationshipSerializer, **WRITE_PROBLEMS},
        examples=[OpenApiExample("orders-api depends on orders-db", {"source": 12, "kind": "depends_on", "target": 7})],
    ),
    destroy=extend_schema(summary="Remove a relationship.", responses={204: None, **WRITE_PROBLEMS}),
)
class RelationshipViewSet(
    RdmViewSetMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """Relationships are added and removed, never edited; whoever may edit the source CI decides."""

    queryset = selectors.relationship_list()
    serializer_class = RelationshipSerializer
    permission_classes = [TransitionPermission]
    filterset_class = RelationshipFilterSet
    ordering_fields = ["created", "kind"]
    search_fields = ["source__name", "target__name"]

    def perform_create(self, serializer):
        serializer.instance = services.relationship_add(actor=self.request.user, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.relationship_remove(relationship=instance, actor=self.request.user)


@extend_schema_view(
    list=extend_schema(
        summary="List baselines, latest first.", responses={200: BaselineSerializer(many=True), **LIST_PROBLEMS}
    ),
    retrieve=extend_schema(
        summary="Read one baseline with every CI as it was.", responses={200: BaselineDetailSerializer, **READ_PROBLEMS}
    ),
)
class BaselineViewSet(RdmViewSetMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Snapshots of sets of CIs, taken before and after releases, and compared."""

    queryset = selectors.baseline_list()
    permission_classes = [TransitionPermission]
    filterset_class = BaselineFilterSet
    ordering_fields = ["taken_at", "name"]
    search_fields = ["name", "scope", "reason"]

    def get_serializer_class(self):
        return BaselineDetailSerializer if self.action == "retrieve" else BaselineSerializer

    @extend_schema(
        summary="Take a baseline of some CIs, a service's or an environment's.",
        request=BaselineTakeSerializer,
        responses={201: BaselineDetailSerializer, **WRITE_PROBLEMS},
        examples=[OpenApiExample("Before the release", {"name": "orders before 2.4", "service": 1}, request_only=True)],
    )
    def create(self, request):
        given = BaselineTakeSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        baseline = services.baseline_take(actor=request.user, **given.validated_data)
        fresh = self.get_queryset().get(pk=baseline.pk)
        return Response(BaselineDetailSerializer(fresh).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="What changed between this baseline and another, CI by CI.",
        parameters=[OpenApiParameter("other", int, OpenApiParameter.PATH, description="The later baseline.")],
        responses={200: BaselineDiffSerializer, **READ_PROBLEMS},
    )
    @action(detail=True, methods=["get"], url_path=r"diff/(?P<other>[^/.]+)", filter_backends=[], pagination_class=None)
    def diff(self, request, pk=None, other=None):
        before = self.get_object()
        after = get_object_or_404(self.get_queryset(), pk=other)
        return Response(BaselineDiffSerializer(selectors.baseline_diff(before, after)).data)


@extend_schema_view(
    list=extend_schema(
        summary="What version is where: services by environments, each cell the versions there.",
        description="A page of services at a time: `limit` services (50 unless asked, at most 200) by name from "
        "`offset`, with `service_count` and `next` / `previous` links; `service` keeps only the services named.",
        parameters=[VersionMatrixQuerySerializer],
        responses={200: VersionMatrixSerializer, **{code: PROBLEMS[code] for code in (400, 401, 403, 429)}},
    )
)
class VersionMatrixViewSet(viewsets.GenericViewSet):
    """Readable by whoever may read services: the version of each service's applications in each environment."""

    queryset = selectors.service_list()
    serializer_class = VersionMatrixSerializer
    filter_backends = []
    pagination_class = None

    def list(self, request):
        given = VersionMatrixQuerySerializer(data=request.query_params)
        given.is_valid(raise_exception=True)
        page = given.validated_data
        matrix = selectors.version_matrix(page.get("service"), limit=page["limit"], offset=page["offset"])
        return Response(VersionMatrixSerializer(matrix, context={"request": request}).data)
