"""``/api/v1/promotions/``: a pipeline requests a continuous promotion of a package, and follows it stage by stage.
``deployments.promotions`` decides who may (403), and what is wrong with the request (422)."""

import django_filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from cmdb.models import Environment
from deployments import promotions
from deployments.choices import PromotionState
from deployments.models import DeploymentProcess, Promotion, PromotionStage
from deployments.promotions import promotion_list
from rdm_site.api.permissions import TransitionPermission
from rdm_site.api.viewsets import PROBLEMS, RdmViewSetMixin, etag_of
from releases.models import ChangeTemplate, ReleasePackage

ALL_ENVIRONMENTS = "all"


class PromotionFilterSet(django_filters.FilterSet):
    """Shared by the API list and the browser's."""

    state = django_filters.MultipleChoiceFilter(choices=PromotionState.choices)

    class Meta:
        model = Promotion
        fields = ["state", "service", "package"]


class PromotionStageSerializer(serializers.ModelSerializer):
    environment_name = serializers.CharField(source="environment.name", read_only=True)

    class Meta:
        model = PromotionStage
        fields = [
            "position",
            "environment",
            "environment_name",
            "state",
            "deployment",
            "reason",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class PromotionSerializer(serializers.ModelSerializer):
    stages = PromotionStageSerializer(many=True, read_only=True)
    version = serializers.CharField(source="package.version", read_only=True)

    class Meta:
        model = Promotion
        fields = [
            "id",
            "package",
            "version",
            "process",
            "service",
            "template",
            "change",
            "state",
            "reason",
            "requested_by",
            "created",
            "finished_at",
            "stages",
        ]
        read_only_fields = fields


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "enum": [ALL_ENVIRONMENTS]},
            {"type": "array", "items": {"type": "integer"}, "minItems": 1},
        ]
    }
)
class EnvironmentsField(serializers.Field):
    """``"all"`` (every environment, in promotion order) or a list of environment ids."""

    default_error_messages = {"invalid": 'Give "all" or a list of environment ids.', "unknown": "Unknown ids: {ids}."}

    def to_internal_value(self, data):
        if data == ALL_ENVIRONMENTS:
            return None
        if (
            not isinstance(data, list)
            or not data
            or not all(isinstance(pk, int) and not isinstance(pk, bool) for pk in data)
        ):
            self.fail("invalid")
        found = {environment.pk: environment for environment in Environment.objects.filter(pk__in=data)}
        unknown = [pk for pk in data if pk not in found]
        if unknown:
            self.fail("unknown", ids=", ".join(map(str, unknown)))
        return [found[pk] for pk in data]

    def to_representation(self, value):
        return value


class PromotionCreateSerializer(serializers.Serializer):
    """What a pipeline sends: the package, the pre-approved change template the production stage runs under,
    and the environments (``"all"``: every one, in promotion order)."""

    package = serializers.PrimaryKeyRelatedField(queryset=ReleasePackage.objects.all())
    template = serializers.PrimaryKeyRelatedField(queryset=ChangeTemplate.objects.all())
    environments = EnvironmentsField(
        required=False, help_text='"all" (the default), or environment ids: run in promotion order.'
    )
    process = serializers.PrimaryKeyRelatedField(
        queryset=DeploymentProcess.objects.all(),
        required=False,
        help_text="Needed only when the release's services have more than one deployment process.",
    )


READ = {code: PROBLEMS[code] for code in (400, 401, 403, 404, 429)}


@extend_schema_view(
    list=extend_schema(summary="List continuous promotions", responses={200: PromotionSerializer(many=True), **READ}),
    retrieve=extend_schema(
        summary="Read one promotion with its stages",
        responses={200: PromotionSerializer, 304: OpenApiResponse(description="Not modified."), **READ},
    ),
    create=extend_schema(
        summary="Request a continuous promotion of a package through the environments",
        request=PromotionCreateSerializer,
        responses={201: PromotionSerializer, **{code: PROBLEMS[code] for code in (400, 401, 403, 422, 429)}},
    ),
)
class PromotionViewSet(
    RdmViewSetMixin, mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """One pipeline run: its stages (an environment each) start by themselves, each when the one before it
    succeeded and its gates pass; it stops, with the reason, at the first that does not."""

    queryset = promotion_list()
    serializer_class = PromotionSerializer
    permission_classes = [TransitionPermission]
    filterset_class = PromotionFilterSet
    ordering_fields = ["created", "id"]

    def create(self, request, *args, **kwargs):
        given = PromotionCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        promotion = promotions.promotion_create(actor=request.user, **given.validated_data)
        data = self.representation(self.get_queryset().get(pk=promotion.pk))
        return Response(data, status=status.HTTP_201_CREATED, headers={"ETag": etag_of(data)})
