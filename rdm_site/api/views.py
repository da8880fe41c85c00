"""The platform's API: users, API tokens, webhooks and their deliveries, the audit trail, notifications, and
one's calendar feed."""

import json

from django.contrib.auth.models import User
from django.core.serializers.json import DjangoJSONEncoder
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from rdm_site import calendar_feeds, notifications, tokens, webhooks
from rdm_site.api.pagination import IdCursorPagination
from rdm_site.api.serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenSerializer,
    AuditEventSerializer,
    CalendarFeedCreatedSerializer,
    CalendarFeedSerializer,
    MarkedReadSerializer,
    NotificationSerializer,
    NotificationsReadSerializer,
    UserSerializer,
    WebhookCreatedSerializer,
    WebhookDeliverySerializer,
    WebhookSerializer,
)
from rdm_site.api.viewsets import PROBLEMS, NoInput, RdmReadOnlyViewSet, RdmViewSetMixin, transition_action
from rdm_site.exports import audit_csv_lines, in_blocks
from rdm_site.filtersets import AuditEventFilterSet, WebhookDeliveryFilterSet
from rdm_site.models import ApiToken, AuditEvent, Notification, Webhook, WebhookDelivery
from rdm_site.selectors import audit_events_in_id_order, calendar_feed_of, notifications_for


class UserViewSet(RdmReadOnlyViewSet):
    """Who uses RDM and which roles they hold (read-only: the administrator manages users)."""

    queryset = User.objects.prefetch_related("groups").order_by("username")
    serializer_class = UserSerializer
    filterset_fields = ["is_active", "groups__name"]
    ordering_fields = ["username", "date_joined"]
    search_fields = ["username", "first_name", "last_name", "email"]


@extend_schema_view(
    create=extend_schema(responses={201: ApiTokenCreatedSerializer, **PROBLEMS}),
    destroy=extend_schema(summary="Revoke the token (it stays listed, revoked)."),
)
class ApiTokenViewSet(
    RdmViewSetMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your API tokens: made, named, scoped and revoked by their owner. The secret is shown once, at creation."""

    serializer_class = ApiTokenSerializer
    permission_classes = [permissions.IsAuthenticated]
    ordering_fields = ["name", "created_at", "last_used_at"]
    filterset_fields = ["name"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return ApiToken.objects.none()
        return ApiToken.objects.filter(owner=self.request.user).select_related("owner").order_by("name")

    def create(self, request, *args, **kwargs):
        given = self.get_serializer(data=request.data)
        given.is_valid(raise_exception=True)
        token, secret = tokens.token_create(
            actor=request.user,
            name=given.validated_data["name"],
            scopes=given.validated_data["scopes"],
            expires_at=given.validated_data.get("expires_at"),
        )
        token.secret = secret
        return Response(ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        tokens.token_revoke(actor=self.request.user, token=instance)


@extend_schema_view(create=extend_schema(responses={201: WebhookCreatedSerializer, **PROBLEMS}))
class WebhookViewSet(RdmViewSetMixin, viewsets.ModelViewSet):
    """Subscriptions to RDM's events, signed with a secret shown once; see docs/api.md to verify a signature."""

    queryset = Webhook.objects.select_related("owner").order_by("name", "id")
    serializer_class = WebhookSerializer
    filterset_fields = ["active", "name"]
    ordering_fields = ["name", "created_at"]

    def create(self, request, *args, **kwargs):
        given = self.get_serializer(data=request.data)
        given.is_valid(raise_exception=True)
        webhook, secret = webhooks.webhook_create(actor=request.user, **given.validated_data)
        webhook.secret = secret
        return Response(WebhookCreatedSerializer(webhook).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        self.check_if_match(serializer.instance)
        serializer.instance = webhooks.webhook_update(
            webhook=serializer.instance, actor=self.request.user, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        webhooks.webhook_delete(webhook=instance, actor=self.request.user)


class WebhookDeliveryViewSet(RdmReadOnlyViewSet):
    """Every delivery of every webhook: attempts, response code, duration and the first 1 KB of the answer."""

    queryset = WebhookDelivery.objects.select_related("webhook")
    serializer_class = WebhookDeliverySerializer
    filterset_class = WebhookDeliveryFilterSet
    pagination_class = IdCursorPagination
    ordering_fields = ["id"]

    redeliver = transition_action(
        "redeliver",
        lambda *, delivery, actor: webhooks.webhook_redeliver(delivery=delivery, actor=actor),
        record="delivery",
        output=WebhookDeliverySerializer,
        input_serializer=NoInput,
        summary="Send this delivery's payload again, as a new delivery.",
    )


class AuditEventViewSet(RdmReadOnlyViewSet):
    """The hash-chained audit trail, oldest first; filter by object, actor, action and time; export streamed."""

    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    pagination_class = IdCursorPagination
    ordering_fields = ["id"]

    @extend_schema(
        summary="The filtered trail as CSV (every hashed field, so the chain can be re-checked elsewhere).",
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    @action(detail=False, methods=["get"], url_path="export.csv", pagination_class=None, filter_backends=[])
    def export_csv(self, request):
        events = audit_events_in_id_order(self._filtered())
        response = StreamingHttpResponse(audit_csv_lines(events), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="rdm-audit.csv"'
        return response

    @extend_schema(
        summary="The filtered trail as JSON lines (one event per line), streamed.",
        responses={(200, "application/x-ndjson"): OpenApiTypes.STR},
    )
    @action(detail=False, methods=["get"], url_path="export.jsonl", pagination_class=None, filter_backends=[])
    def export_jsonl(self, request):
        events = audit_events_in_id_order(self._filtered())
        lines = (json.dumps(AuditEventSerializer(event).data, cls=DjangoJSONEncoder) + "\n" for event in events)
        response = StreamingHttpResponse(in_blocks(lines), content_type="application/x-ndjson")
        response["Content-Disposition"] = 'attachment; filename="rdm-audit.jsonl"'
        return response

    def _filtered(self):
        filterset = AuditEventFilterSet(self.request.query_params, queryset=AuditEvent.objects.all())
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        return filterset.qs


class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your notifications, unread first; mark some or all read."""

    serializer_class = NotificationSerializer
    permission_classes = [permissions.IsAuthenticated]
    filterset_fields = ["kind", "object_type", "object_id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return Notification.objects.none()
        return notifications_for(self.request.user)

    @extend_schema(
        operation_id="notifications_read_all",
        request=NotificationsReadSerializer,
        responses={200: MarkedReadSerializer, **PROBLEMS},
    )
    @action(detail=False, methods=["post"], url_path="read")
    def read_all(self, request):
        given = NotificationsReadSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        marked = notifications.notifications_mark_read(user=request.user, ids=given.validated_data.get("ids"))
        return Response({"marked": marked})

    @extend_schema(request=None, responses={200: NotificationSerializer, 404: OpenApiResponse(description="None.")})
    @action(detail=True, methods=["post"], url_path="read")
    def read_one(self, request, pk=None):
        notification = self.get_object()
        notifications.notifications_mark_read(user=request.user, ids=[notification.pk])
        notification.refresh_from_db()
        return Response(NotificationSerializer(notification).data)


class CalendarFeedView(APIView):
    """Your calendar feed (iCalendar, for Outlook or Google Calendar): its state, a new address, revocation."""

    permission_classes = [permissions.IsAuthenticated]

    def _active(self, request):
        feed = calendar_feed_of(request.user)
        if feed is None:
            raise NotFound("You have no calendar feed.")
        return feed

    @extend_schema(
        summary="Your active calendar feed (never its address).",
        responses={200: CalendarFeedSerializer, **{code: PROBLEMS[code] for code in (401, 404, 429)}},
    )
    def get(self, request):
        return Response(CalendarFeedSerializer(self._active(request)).data)

    @extend_schema(
        summary="Make your calendar feed, or a new address for it (the old one stops working); shown this once.",
        request=None,
        responses={201: CalendarFeedCreatedSerializer, **{code: PROBLEMS[code] for code in (401, 403, 429)}},
    )
    def post(self, request):
        feed, secret = calendar_feeds.calendar_feed_create(actor=request.user)
        feed.url = calendar_feeds.calendar_feed_address(request, secret)
        return Response(CalendarFeedCreatedSerializer(feed).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Revoke your calendar feed: its address answers 404 from now on.",
        request=None,
        responses={204: None, **{code: PROBLEMS[code] for code in (401, 404, 429)}},
    )
    def delete(self, request):
        calendar_feeds.calendar_feed_revoke(actor=request.user, feed=self._active(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
