from django.contrib.auth.models import User
from rest_framework import serializers

from rdm_site.domain import BIGINT_MAX
from rdm_site.models import ApiToken, AuditEvent, CalendarFeed, Notification, Webhook, WebhookDelivery
from rdm_site.roles import Role
from rdm_site.scopes import Scope


class UserSerializer(serializers.ModelSerializer):
    full_name = serializers.CharField(source="get_full_name", read_only=True)
    roles = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "full_name", "email", "roles", "is_active"]

    def get_roles(self, user) -> list[str]:
        return sorted(group.name for group in user.groups.all() if group.name in Role.values)


class ApiTokenSerializer(serializers.ModelSerializer):
    """A token as its owner sees it later: never the secret, which is shown once (``secret`` on creation)."""

    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    prefix = serializers.CharField(read_only=True)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=Scope.choices), allow_empty=False)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "owner",
            "prefix",
            "scopes",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "last_used_from",
        ]
        read_only_fields = ["created_at", "revoked_at", "last_used_at", "last_used_from"]
        validators = []  # the service names a duplicate name with the rest of the problems


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    secret = serializers.CharField(read_only=True, help_text="The token itself, shown this once: store it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "secret"]


class CalendarFeedSerializer(serializers.ModelSerializer):
    """Your calendar feed as it stands: never its address, which is shown once (``url`` when made)."""

    class Meta:
        model = CalendarFeed
        fields = ["id", "created_at", "last_fetched_at"]
        read_only_fields = fields


class CalendarFeedCreatedSerializer(CalendarFeedSerializer):
    url = serializers.URLField(read_only=True, help_text="The feed's address, shown this once: subscribe to it now.")

    class Meta(CalendarFeedSerializer.Meta):
        fields = [*CalendarFeedSerializer.Meta.fields, "url"]


class WebhookSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=100),
        allow_empty=False,
        help_text='Exact types ("release.approve"), families ("release.*") or "*".',
    )

    class Meta:
        model = Webhook
        fields = ["id", "name", "url", "event_types", "active", "owner", "created_at"]
        read_only_fields = ["created_at"]
        validators = []


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(read_only=True, help_text="The signing secret, shown this once: store it now.")

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "webhook",
            "event_type",
            "audit_event_id",
            "state",
            "attempts",
            "next_attempt_at",
            "last_attempt_at",
            "response_status",
            "response_ms",
            "response_excerpt",
            "error",
            "redelivery_of",
            "created_at",
            "delivered_at",
            "payload",
        ]
        read_only_fields = fields


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["id", *AuditEvent.HASHED_FIELDS, "hash"]
        read_only_fields = fields


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "kind", "subject", "body", "link", "object_type", "object_id", "created_at", "read_at"]
        read_only_fields = fields


class NotificationsReadSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=BIGINT_MAX),
        required=False,
        max_length=1000,
        help_text="The notifications to mark read; all unread ones when omitted.",
    )


class MarkedReadSerializer(serializers.Serializer):
    marked = serializers.IntegerField()
