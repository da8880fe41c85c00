import hashlib
import json
from datetime import UTC

from django.contrib.auth.models import User
from django.db import models
from django.utils import timezone

from rdm_site.choices import ActorKind, DeliveryState

# The first event's predecessor.
GENESIS_HASH = "0" * 64


class AuditEvent(models.Model):
    """One decision, transition or significant edit, as evidence for auditors.

    Rows name their object by type and id rather than by foreign key, so that deleting a
    record never deletes or rewrites its history. Each row carries the hash of the row
    before it: editing or removing a row breaks the chain, and ``audit_chain_verify``
    names where. The database refuses UPDATE, DELETE and TRUNCATE (migration 0001).
    Write through ``rdm_site.audit.audit_record`` only.
    """

    # The content the hash covers. Adding a field here changes every past row's hash, so a new
    # field stays out of it unless the chain is re-based on purpose (a test keeps this list honest).
    HASHED_FIELDS = (
        "occurred_at",
        "actor_id",
        "actor_label",
        "actor_kind",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "from_state",
        "to_state",
        "reason",
        "changes",
        "request_id",
        "previous_hash",
    )

    occurred_at = models.DateTimeField("occurred at", default=timezone.now)
    actor_id = models.PositiveBigIntegerField("actor id", null=True, blank=True)
    actor_label = models.CharField("actor", max_length=200)
    actor_kind = models.CharField("actor kind", max_length=10, choices=ActorKind.choices)
    action = models.CharField("action", max_length=100)
    object_type = models.CharField("object type", max_length=100, blank=True)
    object_id = models.CharField("object id", max_length=64, blank=True)
    object_repr = models.CharField("object", max_length=200, blank=True)
    from_state = models.CharField("from state", max_length=50, blank=True)
    to_state = models.CharField("to state", max_length=50, blank=True)
    reason = models.TextField("reason", blank=True)
    changes = models.JSONField("changes", default=dict, blank=True, help_text="For edits: {field: [old, new]}.")
    request_id = models.CharField("request id", max_length=128, blank=True)
    previous_hash = models.CharField("previous hash", max_length=64)
    hash = models.CharField("hash", max_length=64)

    class Meta:
        verbose_name = "audit event"
        verbose_name_plural = "audit events"
        ordering = ["id"]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="rdm_site_audit_object_idx"),
            models.Index(fields=["occurred_at"], name="rdm_site_audit_occurred_idx"),
        ]
        constraints = [
            # Two events claiming the same predecessor would fork the chain; the database refuses it.
            models.UniqueConstraint(fields=["previous_hash"], name="rdm_site_audit_no_fork"),
        ]

    def __str__(self):
        return f"#{self.pk} {self.action} {self.object_type}:{self.object_id}"

    @staticmethod
    def reference_to(target: models.Model) -> tuple[str, str]:
        """How audit rows name a model instance: ("app_label.model", "pk")."""
        if target.pk is None:
            raise ValueError(f"cannot audit an unsaved {target._meta.label}")
        return target._meta.label_lower, str(target.pk)

    def compute_hash(self) -> str:
        """SHA-256 over a canonical JSON of the hashed fields: the one definition for writing and verifying."""
        content = {name: getattr(self, name) for name in self.HASHED_FIELDS}
        content["occurred_at"] = self.occurred_at.astimezone(UTC).isoformat()
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


class AuditAnchor(models.Model):
    """The audit chain's head as it was at a moment: which event was newest, its hash and how many came up to it.

    A chain cannot show that its newest events were removed; the last anchor can. ``audit_chain_verify``
    checks that the anchored event is still there with that hash and that count, so removing events up to
    the anchor is caught, and each anchor is also logged for a copy outside the database. The event is named
    by id, not by foreign key, like the records audit events name. The database refuses UPDATE, DELETE and
    TRUNCATE (migration 0006). Written by ``rdm_site.audit.audit_anchor_record`` only.
    """

    event_id = models.PositiveBigIntegerField("event id")
    head_hash = models.CharField("head hash", max_length=64)
    event_count = models.PositiveBigIntegerField("event count")
    recorded_at = models.DateTimeField("recorded at", default=timezone.now)

    class Meta:
        verbose_name = "audit anchor"
        verbose_name_plural = "audit anchors"
        ordering = ["-id"]

    def __str__(self):
        return f"anchor #{self.pk} at event #{self.event_id}"


class Notification(models.Model):
    """A message to one user, in RDM and by e-mail.

    The "stakeholders notified" gate of the go/no-go checklist is computed from these rows:
    they name the record they are about (type and id, like audit events) and their kind.
    """

    recipient = models.ForeignKey(
        "auth.User", on_delete=models.CASCADE, related_name="notifications", verbose_name="recipient"
    )
    kind = models.CharField("kind", max_length=60, help_text='What the message is for, e.g. "release.stakeholders".')
    subject = models.CharField("subject", max_length=200)
    body = models.TextField("message", blank=True)
    link = models.CharField("link", max_length=300, blank=True)
    object_type = models.CharField("about (type)", max_length=100, blank=True)
    object_id = models.CharField("about (id)", max_length=64, blank=True)
    sent_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name="sent by"
    )
    created_at = models.DateTimeField("sent at", default=timezone.now)
    read_at = models.DateTimeField("read at", null=True, blank=True)
    emailed_at = models.DateTimeField("e-mailed at", null=True, blank=True)

    class Meta:
        verbose_name = "notification"
        verbose_name_plural = "notifications"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["recipient", "read_at"], name="rdm_site_notif_unread_idx"),
            models.Index(fields=["object_type", "object_id", "kind"], name="rdm_site_notif_about_idx"),
        ]

    def __str__(self):
        return f"{self.subject} → {self.recipient}"


class ApiToken(models.Model):
    """A named credential a user makes for a pipeline or a tool; it acts as its owner, narrowed by its scopes.

    Only a hash of the secret is kept: the secret is shown once, when the token is made. The prefix
    (``rdm_`` and the token's public id) lets a log reader or a secret scanner recognise one.
    """

    owner = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="api_tokens", verbose_name="owner")
    name = models.CharField("name", max_length=100)
    public_id = models.CharField("public id", max_length=16, unique=True, editable=False)
    secret_hash = models.CharField("secret hash", max_length=64, editable=False)
    scopes = models.JSONField("scopes", default=list, help_text='"read", and the areas it may write.')
    created_at = models.DateTimeField("created at", default=timezone.now)
    expires_at = models.DateTimeField("expires at", null=True, blank=True)
    revoked_at = models.DateTimeField("revoked at", null=True, blank=True)
    last_used_at = models.DateTimeField("last used at", null=True, blank=True)
    last_used_from = models.GenericIPAddressField("last used from", null=True, blank=True)

    class Meta:
        verbose_name = "API token"
        verbose_name_plural = "API tokens"
        ordering = ["owner", "name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="rdm_site_token_name_per_owner")]

    def __str__(self):
        return f"{self.name} ({self.owner.get_username()})"

    @property
    def prefix(self) -> str:
        return f"rdm_{self.public_id}"

    def usable(self, moment=None) -> bool:
        moment = moment or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or moment < self.expires_at)


class CalendarFeed(models.Model):
    """A secret address from which a user's calendar application (Outlook, Google Calendar) reads release
    windows, freezes and planned deployments (``deployments.calendar``).

    The address is the credential, as calendar applications send no other: only its hash is kept, the
    address is shown once, when made. A user has at most one active feed; making a new one revokes the old,
    so a leaked address is dealt with by making another.
    """

    owner = models.ForeignKey(
        "auth.User", on_delete=models.CASCADE, related_name="calendar_feeds", verbose_name="owner"
    )
    secret_hash = models.CharField("secret hash", max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField("created at", default=timezone.now)
    last_fetched_at = models.DateTimeField("last fetched at", null=True, blank=True)
    revoked_at = models.DateTimeField("revoked at", null=True, blank=True)

    class Meta:
        verbose_name = "calendar feed"
        verbose_name_plural = "calendar feeds"
        ordering = ["owner", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner"], condition=models.Q(revoked_at=None), name="rdm_site_calendar_feed_one_active"
            )
        ]

    def __str__(self):
        return f"calendar feed of {self.owner.get_username()}"


class OutboxEvent(models.Model):
    """A recorded transition or edit, waiting to be told to the outside (webhooks, live pages).

    Written in the same transaction as its audit event by ``rdm_site.transitions.transition_record``:
    an event is published if and only if what it tells of was committed.
    """

    audit_event = models.OneToOneField(
        AuditEvent, on_delete=models.PROTECT, related_name="outbox", verbose_name="audit event"
    )
    event_type = models.CharField("event type", max_length=100, help_text='e.g. "release.submit".')
    object_type = models.CharField("object type", max_length=100)
    object_id = models.CharField("object id", max_length=64)
    occurred_at = models.DateTimeField("occurred at")
    dispatched_at = models.DateTimeField("dispatched at", null=True, blank=True)

    class Meta:
        verbose_name = "outbox event"
        verbose_name_plural = "outbox events"
        ordering = ["id"]
        indexes = [
            models.Index(fields=["id"], condition=models.Q(dispatched_at=None), name="rdm_site_outbox_pending_idx"),
            models.Index(fields=["object_type", "object_id"], name="rdm_site_outbox_object_idx"),
        ]

    def __str__(self):
        return f"{self.event_type} {self.object_type}:{self.object_id}"


class Actor(User):
    """Who asks a service to act: a signed-in user, or a user acting through one of their API tokens.

    Every service takes a ``User``; an ``Actor`` is one, so foreign keys (requested by, approved by) name the
    person while permission checks see the token's scopes: a token may do what its owner's roles allow and
    its scopes cover, nothing more. The audit trail records the token beside its owner.
    """

    token: "ApiToken | None" = None

    class Meta:
        proxy = True
        verbose_name = "actor"

    @classmethod
    def for_token(cls, token: ApiToken) -> "Actor":
        actor = cls.objects.get(pk=token.owner_id)
        actor.token = token
        return actor

    def has_perm(self, perm, obj=None) -> bool:
        from rdm_site.scopes import scopes_allow

        allowed = super().has_perm(perm, obj)
        return allowed and (self.token is None or scopes_allow(self.token.scopes, perm))


class IdempotencyRecord(models.Model):
    """The first answer to a POST sent with an ``Idempotency-Key``: a retry with the same key and body gets it
    again instead of a second effect. Keys belong to whoever sent them (a user, or a token).
    """

    owner_key = models.CharField("owner", max_length=40, help_text='"user:<id>" or "token:<id>".')
    key = models.CharField("idempotency key", max_length=255)
    request_hash = models.CharField("request hash", max_length=64, help_text="SHA-256 of method, path and body.")
    status_code = models.PositiveSmallIntegerField("status code")
    content_type = models.CharField("content type", max_length=100)
    response_body = models.BinaryField("response body")
    created_at = models.DateTimeField("created at", default=timezone.now)

    class Meta:
        verbose_name = "idempotency record"
        verbose_name_plural = "idempotency records"
        constraints = [models.UniqueConstraint(fields=["owner_key", "key"], name="rdm_site_idempotency_key_once")]
        indexes = [models.Index(fields=["created_at"], name="rdm_site_idempotency_age_idx")]

    def __str__(self):
        return f"{self.owner_key} {self.key} → {self.status_code}"


class Webhook(models.Model):
    """A subscription: RDM posts each matching event, signed with the subscription's secret, to ``url``.

    ``event_types`` lists exact types (``release.approve``), families (``release.*``) or ``*`` for all. The
    secret is kept encrypted (it must sign every delivery) and shown once, when the webhook is made.
    """

    owner = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="webhooks", verbose_name="owner")
    name = models.CharField("name", max_length=100)
    url = models.URLField("URL", max_length=500)
    event_types = models.JSONField("event types", default=list)
    secret_encrypted = models.TextField("secret (encrypted)", editable=False)
    active = models.BooleanField("active", default=True)
    created_at = models.DateTimeField("created at", default=timezone.now)

    class Meta:
        verbose_name = "webhook"
        verbose_name_plural = "webhooks"
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="rdm_site_webhook_name_per_owner")]

    def __str__(self):
        return self.name

    def wants(self, event_type: str) -> bool:
        family = event_type.partition(".")[0] + ".*"
        return any(pattern in ("*", event_type, family) for pattern in self.event_types)


class WebhookDelivery(models.Model):
    """One event posted (or to be posted) to one webhook, with every attempt's outcome.

    A failed attempt is retried at ``next_attempt_at`` (exponential backoff, stored here rather than held in
    the broker) until ``RDM_WEBHOOK_MAX_ATTEMPTS``, then the delivery is marked failed.
    """

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries", verbose_name="webhook")
    event_type = models.CharField("event type", max_length=100)
    audit_event_id = models.PositiveBigIntegerField("audit event", null=True, blank=True)
    payload = models.JSONField("payload")
    state = models.CharField("state", max_length=20, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveSmallIntegerField("attempts", default=0)
    next_attempt_at = models.DateTimeField("next attempt at", null=True, blank=True)
    last_attempt_at = models.DateTimeField("last attempt at", null=True, blank=True)
    response_status = models.PositiveSmallIntegerField("response status", null=True, blank=True)
    response_ms = models.PositiveIntegerField("duration (ms)", null=True, blank=True)
    response_excerpt = models.TextField("response (first 1 KB)", blank=True)
    error = models.TextField("error", blank=True)
    redelivery_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name="redelivery of"
    )
    created_at = models.DateTimeField("created at", default=timezone.now)
    delivered_at = models.DateTimeField("delivered at", null=True, blank=True)

    class Meta:
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(state="pending"),
                name="rdm_site_delivery_due_idx",
            )
        ]

    def __str__(self):
        return f"{self.event_type} → {self.webhook} ({self.state})"
