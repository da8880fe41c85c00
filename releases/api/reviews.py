"""Post-implementation reviews and the knowledge base over ``/api/v1/``: ``reviews`` (edited while open, then
submitted, accepted or returned; action items nested) and ``knowledge`` (``?q=`` searches, ranked, with
highlights). Every write calls the service the admin and the browser call.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, viewsets

from cmdb.models import ConfigurationItem
from rdm_site.api.viewsets import NoInput, ReasonInput, transition_action
from rdm_site.domain import TEXT_MAX_LENGTH
from rdm_site.representations import representation_register
from releases import services
from releases.actions import review_available_actions
from releases.api.base import EditableViewSet, ServiceWrites
from releases.api.serializers import AvailableActionsField, RecordSerializer
from releases.filtersets import KnowledgeArticleFilterSet, ReviewFilterSet
from releases.knowledge import highlighted, knowledge_list, knowledge_search
from releases.models import KnowledgeArticle, PostImplementationReview, ReviewActionItem
from releases.services.review import MAX_ACTION_ITEMS

# --- reviews ----------------------------------------------------------------------------------------


class ReviewActionItemSerializer(RecordSerializer):
    """Something the review decided to do: what, by whom (a username), by when."""

    class Meta:
        model = ReviewActionItem
        fields = ["text", "owner", "due_on"]


class TimelineLineSerializer(serializers.Serializer):
    at = serializers.DateTimeField(allow_null=True)
    text = serializers.CharField()


class TimelineSerializer(serializers.Serializer):
    """One production deployment as it happened: waves and gates, pauses, overrides, interventions, rollbacks."""

    deployment = serializers.IntegerField()
    title = serializers.CharField()
    state = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration = serializers.CharField()
    lines = TimelineLineSerializer(many=True)


class ReviewIncidentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    severity = serializers.CharField()
    state = serializers.CharField()
    opened_at = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    time_to_restore = serializers.CharField(help_text="Empty while unresolved.")


class ReviewGateSerializer(serializers.Serializer):
    gate = serializers.CharField()
    title = serializers.CharField()
    required = serializers.BooleanField()
    satisfied = serializers.BooleanField()
    status = serializers.CharField()
    evidence = serializers.ListField(child=serializers.CharField())


REVIEW_SUMMARY_FIELDS = [
    "id",
    "release",
    "service",
    "owner",
    "state",
    "due_on",
    "overdue",
    "submitted_at",
    "decided_at",
]


class ReviewSerializer(RecordSerializer):
    """A review as lists show it."""

    overdue = serializers.BooleanField(read_only=True, help_text="Still to be written or reworked after its due date.")

    class Meta:
        model = PostImplementationReview
        fields = REVIEW_SUMMARY_FIELDS
        read_only_fields = fields


class ReviewDetailSerializer(ReviewSerializer):
    """One review: the facts it was pre-filled from, what the owner wrote, the action items, the decision."""

    timeline = TimelineSerializer(many=True, read_only=True)
    incidents = ReviewIncidentSerializer(many=True, read_only=True)
    checklist = ReviewGateSerializer(many=True, read_only=True, help_text="The go/no-go checklist at go-live.")
    lessons = serializers.ListField(
        child=serializers.CharField(max_length=TEXT_MAX_LENGTH, allow_blank=True),
        required=False,
        help_text="One text per lesson; each becomes a knowledge article when the review is accepted.",
    )
    action_items = ReviewActionItemSerializer(
        many=True, required=False, max_length=MAX_ACTION_ITEMS, help_text="Given in an edit: replaces them all."
    )
    actions = AvailableActionsField(review_available_actions)

    class Meta:
        model = PostImplementationReview
        fields = [
            *REVIEW_SUMMARY_FIELDS,
            "timeline",
            "incidents",
            "checklist",
            "objectives",
            "objectives_met",
            "objectives_note",
            "went_well",
            "went_badly",
            "lessons",
            "action_items",
            "submitted_by",
            "decided_by",
            "decision_reason",
            "last_reminded_on",
            "created",
            "updated",
            "actions",
        ]
        read_only_fields = [
            "release",
            "service",
            "owner",
            "state",
            "due_on",
            "submitted_at",
            "decided_at",
            "submitted_by",
            "decided_by",
            "decision_reason",
            "last_reminded_on",
            "created",
            "updated",
        ]


def _review_transition(name, service, input_serializer=NoInput, summary=""):
    return transition_action(
        name,
        service,
        record="review",
        output=ReviewDetailSerializer,
        input_serializer=input_serializer,
        summary=summary,
    )


class ReviewViewSet(
    ServiceWrites, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet
):
    """Post-implementation reviews: opened, pre-filled, when early life support exits; never created or deleted
    here.
    """

    queryset = PostImplementationReview.objects.select_related(
        "release", "service", "owner", "submitted_by", "decided_by"
    ).prefetch_related("action_items__owner")
    serializer_class = ReviewDetailSerializer
    serializer_classes = {"list": ReviewSerializer}
    filterset_class = ReviewFilterSet
    ordering_fields = ["due_on", "created", "state"]
    search_fields = ["release__name", "release__version", "objectives"]

    def update_record(self, review, data):
        return services.review_update(review=review, actor=self.request.user, data=data)

    submit = _review_transition("submit", services.review_submit)
    accept = _review_transition("accept", services.review_accept, ReasonInput)
    return_ = _review_transition("return_", services.review_return, ReasonInput, "Return the review for rework.")
    # "return" is a Python keyword: the method is ``return_``, the address ``…/return/``.
    return_.url_path, return_.url_name = "return", "return"


# --- knowledge --------------------------------------------------------------------------------------


class KnowledgeArticleSerializer(RecordSerializer):
    """An article; with ``?q=`` its rank and highlights (safe HTML: the text escaped, matches in ``<mark>``)."""

    configuration_items = serializers.PrimaryKeyRelatedField(
        many=True, required=False, queryset=ConfigurationItem.objects.all()
    )
    rank = serializers.FloatField(read_only=True, allow_null=True, default=None, help_text="With ?q= only.")
    title_highlight = serializers.SerializerMethodField(help_text="With ?q= only.")
    body_highlight = serializers.SerializerMethodField(help_text="With ?q= only: the best fragments.")

    class Meta:
        model = KnowledgeArticle
        fields = [
            "id",
            "title",
            "body",
            "kind",
            "service",
            "package",
            "release",
            "review",
            "configuration_items",
            "author",
            "created",
            "updated",
            "rank",
            "title_highlight",
            "body_highlight",
        ]
        read_only_fields = ["review", "author", "created", "updated"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_title_highlight(self, article) -> str | None:
        return highlighted(article.title_headline) if hasattr(article, "title_headline") else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_body_highlight(self, article) -> str | None:
        return highlighted(article.body_headline) if hasattr(article, "body_headline") else None


@extend_schema_view(
    list=extend_schema(
        summary="List knowledge articles, or search them with ?q= (best first, with highlights).",
        parameters=[
            OpenApiParameter(
                "q", str, description='Words, "a phrase", or, -excluded: as typed into a search box.', required=False
            )
        ],
    )
)
class KnowledgeArticleViewSet(EditableViewSet):
    """Runbooks and rollback steps for services and packages, and lessons from accepted reviews."""

    queryset = knowledge_list()
    serializer_class = KnowledgeArticleSerializer
    filterset_class = KnowledgeArticleFilterSet
    ordering_fields = ["updated", "title"]

    def get_queryset(self):
        query = self.request.query_params.get("q", "") if self.action == "list" else ""
        return knowledge_search(query) if query.strip() else super().get_queryset()

    def create_record(self, data):
        return services.knowledge_article_create(actor=self.request.user, **data)

    def update_record(self, article, data):
        return services.knowledge_article_update(article=article, actor=self.request.user, data=data)


representation_register(PostImplementationReview, ReviewDetailSerializer)
representation_register(KnowledgeArticle, KnowledgeArticleSerializer)
