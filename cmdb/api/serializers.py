"""How the CMDB's records look in the API, and in webhook payloads (``representation_register``).

People are named by username, environments, services and CIs by id. The state of a CI is read-only: it moves
only through the lifecycle actions (``POST /api/v1/cis/{id}/<transition>/``), which ``actions`` lists.
"""

from django.contrib.auth.models import User
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers
from rest_framework.utils.urls import replace_query_param

from cmdb.actions import CI_ACTIONS, ci_available_actions
from cmdb.models import Baseline, BaselineItem, ConfigurationItem, Environment, Relationship, Service
from rdm_site.domain import BIGINT_MAX, REASON_MAX_LENGTH
from rdm_site.representations import representation_register

IMPACT_PAGE_SIZE = 100  # CIs per page of an impact analysis, unless ``limit`` says otherwise
IMPACT_PAGE_MAX = 1000
VERSION_MATRIX_PAGE_SIZE = 50  # services per page of the version matrix, unless ``limit`` says otherwise
VERSION_MATRIX_PAGE_MAX = 200


class UsernameField(serializers.SlugRelatedField):
    """A user named by username. Text PostgreSQL cannot hold (a NUL character) names nobody, like any unknown name."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="username", queryset=User.objects.all(), **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) or "\x00" in data:
            self.fail("invalid")
        return super().to_internal_value(data)


class EnvironmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Environment
        fields = ["id", "name", "slug", "tier", "promotion_order", "description"]
        extra_kwargs = {"slug": {"required": False, "help_text": "Made from the name when not given."}}


class ServiceSerializer(serializers.ModelSerializer):
    owner = UsernameField(help_text="The service owner (username): accountable, and may edit the service's CIs.")
    stakeholders = UsernameField(many=True, required=False, help_text="Told about the service's releases.")

    class Meta:
        model = Service
        fields = ["id", "name", "slug", "description", "owner", "stakeholders", "criticality"]
        extra_kwargs = {"slug": {"required": False, "help_text": "Made from the name when not given."}}


class ServiceSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Service
        fields = ["id", "name", "slug", "criticality"]
        read_only_fields = fields


class ConfigurationItemSerializer(serializers.ModelSerializer):
    owner = UsernameField(required=False, allow_null=True, help_text="The technical owner (username).")
    actions = serializers.SerializerMethodField(help_text="What you may do with the CI now.")

    class Meta:
        model = ConfigurationItem
        fields = [
            "id",
            "name",
            "ci_type",
            "state",
            "version",
            "attributes",
            "owner",
            "environment",
            "service",
            "created",
            "updated",
            "actions",
        ]
        read_only_fields = ["state", "created", "updated"]

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(choices=list(CI_ACTIONS))))
    def get_actions(self, ci) -> list[str]:
        request = self.context.get("request")
        return ci_available_actions(ci, request.user) if request is not None else []


class CiSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = ConfigurationItem
        fields = ["id", "name", "ci_type", "state", "version", "environment", "service"]
        read_only_fields = fields


class RelationshipSerializer(serializers.ModelSerializer):
    summary = serializers.CharField(source="__str__", read_only=True, help_text='"web-shop depends on orders-db".')

    class Meta:
        model = Relationship
        fields = ["id", "source", "kind", "target", "summary", "created"]
        read_only_fields = ["created"]


class BaselineSerializer(serializers.ModelSerializer):
    taken_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, help_text="Empty when RDM took it by itself."
    )
    item_count = serializers.IntegerField(read_only=True, help_text="How many CIs it holds.")

    class Meta:
        model = Baseline
        fields = ["id", "name", "scope", "taken_at", "taken_by", "reason", "item_count"]
        read_only_fields = fields


class BaselineItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = BaselineItem
        fields = ["ci_id", "ci_name", "environment_name", "service_name", "ci_type", "state", "version", "attributes"]
        read_only_fields = fields


class BaselineDetailSerializer(BaselineSerializer):
    item_count = serializers.SerializerMethodField(help_text="How many CIs it holds.")
    items = BaselineItemSerializer(many=True, read_only=True, help_text="Every CI as it was when it was taken.")

    class Meta(BaselineSerializer.Meta):
        fields = [*BaselineSerializer.Meta.fields, "items"]
        read_only_fields = fields

    def get_item_count(self, baseline) -> int:
        return len(baseline.items.all())


class BaselineTakeSerializer(serializers.Serializer):
    """What to snapshot: exactly one of ``cis``, ``service`` (its CIs) or ``environment`` (its CIs)."""

    name = serializers.CharField(max_length=Baseline._meta.get_field("name").max_length)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=REASON_MAX_LENGTH, default="")
    cis = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=BIGINT_MAX),
        required=False,
        allow_empty=False,
        max_length=100_000,
        help_text="The CIs' ids.",
    )
    service = serializers.PrimaryKeyRelatedField(queryset=Service.objects.all(), required=False)
    environment = serializers.PrimaryKeyRelatedField(queryset=Environment.objects.all(), required=False)

    def validate(self, data):
        scopes = [scope for scope in ("cis", "service", "environment") if scope in data]
        if len(scopes) != 1:
            raise serializers.ValidationError("Give exactly one of cis, service or environment.")
        if "cis" in data:
            found = ConfigurationItem.objects.filter(pk__in=data["cis"])
            if unknown := sorted(set(data["cis"]) - {ci.pk for ci in found}):
                raise serializers.ValidationError({"cis": [f"No CI has the id {ci_id}." for ci_id in unknown[:20]]})
            data["cis"] = list(found)
        return data


class BaselineDifferenceSerializer(serializers.Serializer):
    ci_id = serializers.IntegerField()
    ci_name = serializers.CharField()
    environment_name = serializers.CharField()
    changes = serializers.DictField(
        child=serializers.ListField(child=serializers.JSONField(), min_length=2, max_length=2),
        help_text='{"version": ["1.0", "1.1"], "attributes.replicas": [2, 3]}; null stands for "absent".',
    )


class BaselineDiffSerializer(serializers.Serializer):
    added = BaselineItemSerializer(many=True, help_text="CIs in the later baseline only.")
    removed = BaselineItemSerializer(many=True, help_text="CIs in the earlier baseline only.")
    changed = BaselineDifferenceSerializer(many=True)


class ImpactedCiSerializer(serializers.Serializer):
    ci = CiSummarySerializer()
    depth = serializers.IntegerField(help_text="Relationships between the broken CI and this one.")


class ImpactedServiceSerializer(serializers.Serializer):
    service = ServiceSummarySerializer()
    depth = serializers.IntegerField(help_text="Depth of its nearest hurt CI; 0 when the broken CI is its own.")


class ImpactDepthSerializer(serializers.Serializer):
    depth = serializers.IntegerField()
    cis = serializers.IntegerField(help_text="CIs hurt at this depth.")
    services = serializers.IntegerField(help_text="Services whose nearest hurt CI is at this depth.")


class OffsetPageLinks:
    """``next`` and ``previous`` links of an answer holding ``limit`` items from ``offset`` of ``page_total``
    (the name of the answer's attribute counting them all); both null when the answer is not paged."""

    page_total = ""

    def get_next(self, answer) -> str | None:
        if answer.limit is None or answer.offset + answer.limit >= getattr(answer, self.page_total):
            return None
        return self._page_link(answer.offset + answer.limit)

    def get_previous(self, answer) -> str | None:
        if answer.limit is None or answer.offset == 0:
            return None
        return self._page_link(max(answer.offset - answer.limit, 0))

    def _page_link(self, offset: int) -> str:
        return replace_query_param(self.context["request"].build_absolute_uri(), "offset", offset)


class ImpactSerializer(OffsetPageLinks, serializers.Serializer):
    """A blast radius of any size: the totals, every service, and the hurt CIs a page at a time (``limit``
    from ``offset``, nearest first)."""

    page_total = "ci_count"

    ci_count = serializers.IntegerField(help_text="Every CI hurt, whatever the page; the broken CI is not counted.")
    service_count = serializers.IntegerField(help_text="Every service hurt, its own included.")
    depths = ImpactDepthSerializer(many=True, help_text="How many CIs and services are hurt at each depth.")
    next = serializers.SerializerMethodField(help_text="The next page of CIs; null on the last one.")
    previous = serializers.SerializerMethodField(help_text="The previous page of CIs; null on the first one.")
    cis = ImpactedCiSerializer(
        many=True,
        help_text="This page of the CIs hurt, nearest first (by depth, then name and id); the broken CI itself "
        "is not listed.",
    )
    services = ImpactedServiceSerializer(many=True, help_text="All of them, nearest first.")


class ImpactQuerySerializer(serializers.Serializer):
    max_depth = serializers.IntegerField(min_value=1, max_value=50, default=10, help_text="How many hops to follow.")


class ImpactPageQuerySerializer(ImpactQuerySerializer):
    limit = serializers.IntegerField(
        min_value=1, max_value=IMPACT_PAGE_MAX, default=IMPACT_PAGE_SIZE, help_text="How many CIs to list."
    )
    offset = serializers.IntegerField(
        min_value=0, max_value=BIGINT_MAX, default=0, help_text="How many of the nearest CIs to skip."
    )


class VersionCellSerializer(serializers.Serializer):
    environment = serializers.IntegerField(source="environment.pk")
    # Both lists go out as read: tens of thousands of values in all, not converted one field at a time.
    versions = serializers.SerializerMethodField(help_text="Distinct versions, sorted.")
    cis = serializers.SerializerMethodField(help_text="The ids of the service's application CIs there.")

    def get_versions(self, cell) -> list[str]:
        return cell.versions

    def get_cis(self, cell) -> list[int]:
        return cell.ci_ids


class VersionRowSerializer(serializers.Serializer):
    service = ServiceSummarySerializer()
    cells = VersionCellSerializer(many=True, help_text="One per environment, in promotion order.")


@extend_schema_serializer(many=False)
class VersionMatrixSerializer(OffsetPageLinks, serializers.Serializer):
    """The matrix a page of services at a time (``limit`` from ``offset``, by name)."""

    page_total = "service_count"

    service_count = serializers.IntegerField(help_text="Every service asked for, whatever the page.")
    next = serializers.SerializerMethodField(help_text="The next page of services; null on the last one.")
    previous = serializers.SerializerMethodField(help_text="The previous page of services; null on the first one.")
    environments = EnvironmentSerializer(many=True, help_text="The columns, in promotion order.")
    rows = VersionRowSerializer(many=True, help_text="One per service of this page, by name.")


class VersionMatrixQuerySerializer(serializers.Serializer):
    service = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=BIGINT_MAX),
        required=False,
        max_length=VERSION_MATRIX_PAGE_MAX,
        help_text="Only these services (repeat the parameter for several).",
    )
    limit = serializers.IntegerField(
        min_value=1,
        max_value=VERSION_MATRIX_PAGE_MAX,
        default=VERSION_MATRIX_PAGE_SIZE,
        help_text="How many services to list.",
    )
    offset = serializers.IntegerField(
        min_value=0, max_value=BIGINT_MAX, default=0, help_text="How many services (by name) to skip."
    )


class ImportFileSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A .csv or .json file (cmdb/importing.py describes its columns).")


class ImportResultSerializer(serializers.Serializer):
    created = CiSummarySerializer(many=True)
    updated = CiSummarySerializer(many=True)
    unchanged = CiSummarySerializer(many=True)
    relationships_added = RelationshipSerializer(many=True)


representation_register(Environment, EnvironmentSerializer)
representation_register(Service, ServiceSerializer)
representation_register(ConfigurationItem, ConfigurationItemSerializer)
representation_register(Relationship, RelationshipSerializer)
representation_register(Baseline, BaselineDetailSerializer)
