"""Outbound webhooks: every recorded transition (the outbox) told to the subscriptions that want it, signed.

Delivery is at least once. Each POST carries ``X-RDM-Timestamp`` (Unix seconds) and ``X-RDM-Signature:
sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the webhook's secret>``; a receiver recomputes it,
compares in constant time and refuses a timestamp older than its replay tolerance (docs/api.md).

- ``outbox_dispatch`` (Celery beat) turns committed outbox rows into deliveries, one per matching webhook,
  with the payload built then: the event and the fresh object as the API shows it.
- ``webhook_deliver`` makes one attempt; a failure schedules the next one in the database
  (``next_attempt_at``, exponential backoff) and ``webhook_deliveries_due`` (beat) queues what came due.
- Outbound HTTP goes through ``rdm_site.outbound``: allowed hosts only, addresses checked.
"""

import hashlib
import hmac
import json
import secrets
import time
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import User
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from rdm_site.audit import audit_record
from rdm_site.changes import apply_changes
from rdm_site.choices import DeliveryState
from rdm_site.crypto import decrypt_secret, encrypt_secret
from rdm_site.domain import bounded_text, ensure_allowed, locked, validated
from rdm_site.exceptions import InvalidInput
from rdm_site.models import AuditEvent, OutboxEvent, Webhook, WebhookDelivery
from rdm_site.outbound import OutboundError, OutboundRefused, host_allowed, outbound_request
from rdm_site.permissions import permission_problem
from rdm_site.representations import representation_of

SIGNATURE_HEADER = "X-RDM-Signature"
TIMESTAMP_HEADER = "X-RDM-Timestamp"
EVENT_HEADER = "X-RDM-Event"
DELIVERY_HEADER = "X-RDM-Delivery"
EXCERPT_BYTES = 1024
DISPATCH_BATCH = 500
MANAGE_WEBHOOKS = "rdm_site.add_webhook"
EDITABLE_FIELDS = ("name", "url", "event_types", "active")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: the HMAC-SHA256 of ``b"<timestamp>.<body>"`` keyed with the secret."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


# --- subscriptions ---------------------------------------------------------------------------------


def _webhook_problems(url: str, event_types) -> list[str]:
    problems = []
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append("the URL must be http(s)://host/…")
    elif not host_allowed(parts.hostname.lower(), settings.OUTBOUND_ALLOWED_HOSTS):
        problems.append(f"host {parts.hostname!r} is not in OUTBOUND_ALLOWED_HOSTS (ask the administrator)")
    if not isinstance(event_types, list) or not event_types or not all(isinstance(t, str) for t in event_types):
        problems.append('list the event types: exact ("release.approve"), a family ("release.*") or "*"')
    return problems


def _may_manage(actor: User, webhook: Webhook | None, attempt: str) -> None:
    ensure_allowed(permission_problem(actor, MANAGE_WEBHOOKS, attempt))
    if webhook is not None and webhook.owner_id != actor.pk and not actor.is_superuser:
        ensure_allowed(f"{actor.get_username()} may not {attempt}: it belongs to {webhook.owner.get_username()}.")


@transaction.atomic
def webhook_create(*, actor: User, name: str, url: str, event_types: list[str], active: bool = True):
    """Subscribe ``url`` to events; returns the webhook and its signing secret, shown this once."""
    _may_manage(actor, None, "create webhooks")
    name = bounded_text(name, "the webhook's name", 100)
    problems = _webhook_problems(url, event_types)
    if not name:
        problems.insert(0, "name the webhook")
    if problems:
        raise InvalidInput("The webhook cannot be made: " + "; ".join(problems), problems)
    secret = "whsec_" + secrets.token_urlsafe(32)
    webhook = Webhook(
        owner=actor, name=name, url=url, event_types=event_types, active=active, secret_encrypted=encrypt_secret(secret)
    )
    validated(webhook)
    webhook.save()
    audit_record(actor=actor, action="webhook.create", target=webhook, changes={"url": url, "events": event_types})
    return webhook, secret


@transaction.atomic
def webhook_update(*, webhook: Webhook, actor: User, data: dict) -> Webhook:
    webhook = locked(webhook)
    _may_manage(actor, webhook, f"change webhook {webhook}")
    changes = apply_changes(webhook, data, EDITABLE_FIELDS)
    problems = _webhook_problems(webhook.url, webhook.event_types)
    if problems:
        raise InvalidInput("The webhook cannot be saved: " + "; ".join(problems), problems)
    if changes:
        validated(webhook)
        webhook.save()
        audit_record(actor=actor, action="webhook.update", target=webhook, changes=changes)
    return webhook


@transaction.atomic
def webhook_delete(*, webhook: Webhook, actor: User) -> None:
    webhook = locked(webhook)
    _may_manage(actor, webhook, f"delete webhook {webhook}")
    audit_record(actor=actor, action="webhook.delete", target=webhook)
    webhook.delete()


@transaction.atomic
def webhook_redeliver(*, delivery: WebhookDelivery, actor: User) -> WebhookDelivery:
    """Send a past delivery's payload again, as a new delivery (its own attempts and log)."""
    _may_manage(actor, delivery.webhook, f"redeliver to webhook {delivery.webhook}")
    again = WebhookDelivery.objects.create(
        webhook=delivery.webhook,
        event_type=delivery.event_type,
        audit_event_id=delivery.audit_event_id,
        payload=delivery.payload,
        next_attempt_at=timezone.now(),
        redelivery_of=delivery,
    )
    audit_record(actor=actor, action="webhook.redeliver", target=delivery.webhook, reason=f"delivery #{delivery.pk}")
    _queue_after_commit([again.pk])
    return again


# --- dispatch and delivery -------------------------------------------------------------------------


def _event_body(event: AuditEvent) -> dict:
    return {
        "id": event.pk,
        "type": event.action,
        "occurred_at": event.occurred_at,
        "actor": {"kind": event.actor_kind, "id": event.actor_id, "label": event.actor_label},
        "object": {"type": event.object_type, "id": event.object_id, "repr": event.object_repr},
        "from_state": event.from_state,
        "to_state": event.to_state,
        "reason": event.reason,
    }


def outbox_dispatch() -> int:
    """Turn pending outbox rows into deliveries for the webhooks that want them; returns the rows handled."""
    with transaction.atomic():
        pending = list(
            OutboxEvent.objects.select_for_update(skip_locked=True)
            .filter(dispatched_at=None)
            .select_related("audit_event")
            .order_by("id")[:DISPATCH_BATCH]
        )
        if not pending:
            return 0
        webhooks = list(Webhook.objects.filter(active=True))
        now = timezone.now()
        deliveries = []
        for row in pending:
            wanting = [webhook for webhook in webhooks if webhook.wants(row.event_type)]
            if not wanting:
                continue
            payload = json.loads(
                json.dumps(
                    {"event": _event_body(row.audit_event), "data": representation_of(row.object_type, row.object_id)},
                    cls=DjangoJSONEncoder,
                )
            )
            deliveries += [
                WebhookDelivery(
                    webhook=webhook,
                    event_type=row.event_type,
                    audit_event_id=row.audit_event_id,
                    payload=payload,
                    next_attempt_at=now,
                )
                for webhook in wanting
            ]
        created = WebhookDelivery.objects.bulk_create(deliveries)
        OutboxEvent.objects.filter(pk__in=[row.pk for row in pending]).update(dispatched_at=now)
        _queue_after_commit([delivery.pk for delivery in created])
    return len(pending)


def _queue_after_commit(delivery_ids: list[int]) -> None:
    from rdm_site.tasks import webhook_deliver_task

    for delivery_id in delivery_ids:
        transaction.on_commit(lambda delivery_id=delivery_id: webhook_deliver_task.delay(delivery_id))


def backoff(attempts: int) -> timedelta:
    """Wait before attempt ``attempts + 1``: base, doubled each time, capped."""
    seconds = settings.RDM_WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.RDM_WEBHOOK_RETRY_MAX_SECONDS))


def webhook_deliver(delivery_id: int) -> str:
    """One attempt at a delivery that is pending and due; idempotent (a duplicate message finds nothing due)."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .select_related("webhook")
            .filter(pk=delivery_id, state=DeliveryState.PENDING, next_attempt_at__lte=timezone.now())
            .first()
        )
        if delivery is None:
            return "not due"
        # Claim it while the request is in flight, so that a duplicate message or the due-scan leaves it alone.
        delivery.next_attempt_at = timezone.now() + timedelta(seconds=settings.RDM_WEBHOOK_TIMEOUT_SECONDS * 3)
        delivery.save(update_fields=["next_attempt_at"])
    webhook = delivery.webhook
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "RDM-Webhooks/1",
        EVENT_HEADER: delivery.event_type,
        DELIVERY_HEADER: str(delivery.pk),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(decrypt_secret(webhook.secret_encrypted), timestamp, body),
    }
    started = time.monotonic()
    status, excerpt, error, final = None, "", "", False
    try:
        response = outbound_request(
            "POST", webhook.url, headers=headers, data=body, timeout=settings.RDM_WEBHOOK_TIMEOUT_SECONDS
        )
        status, excerpt = response.status, response.body[:EXCERPT_BYTES].decode("utf-8", "replace")
    except OutboundRefused as refused:
        error, final = f"refused: {refused}", True  # the policy will not change by retrying
    except OutboundError as failed:
        error = str(failed)
    elapsed_ms = int((time.monotonic() - started) * 1000)
    return _record_attempt(delivery.pk, status, excerpt, error, elapsed_ms, final)


@transaction.atomic
def _record_attempt(delivery_id: int, status, excerpt: str, error: str, elapsed_ms: int, final: bool) -> str:
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
    now = timezone.now()
    delivery.attempts += 1
    delivery.last_attempt_at, delivery.response_status, delivery.response_ms = now, status, elapsed_ms
    delivery.response_excerpt, delivery.error = excerpt, error or ("" if status and status < 300 else f"HTTP {status}")
    if status is not None and 200 <= status < 300:
        delivery.state, delivery.delivered_at, delivery.next_attempt_at = DeliveryState.SUCCEEDED, now, None
    elif final or delivery.attempts >= settings.RDM_WEBHOOK_MAX_ATTEMPTS:
        delivery.state, delivery.next_attempt_at = DeliveryState.FAILED, None
    else:
        delivery.next_attempt_at = now + backoff(delivery.attempts)
    delivery.save()
    return delivery.state


def webhook_deliveries_due() -> int:
    """Queue the pending deliveries whose next attempt came due (Celery beat)."""
    due = list(
        WebhookDelivery.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:DISPATCH_BATCH]
    )
    from rdm_site.tasks import webhook_deliver_task

    for delivery_id in due:
        webhook_deliver_task.delay(delivery_id)
    return len(due)
