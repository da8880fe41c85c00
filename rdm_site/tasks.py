"""Platform housekeeping run by Celery beat (schedule in rdm_site/celery.py)."""

from celery import shared_task
from django.contrib.sessions.models import Session
from django.utils import timezone


@shared_task(acks_late=True)
def sessions_clear_expired_task() -> int:
    """Remove expired sign-in sessions; returns how many went."""
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def notifications_email_task(notification_ids: list[int]) -> int:
    from rdm_site.notifications import notifications_email

    return notifications_email(notification_ids)


@shared_task(acks_late=True, max_retries=0)
def outbox_dispatch_task() -> int:
    from rdm_site.webhooks import outbox_dispatch

    return outbox_dispatch()


@shared_task(acks_late=True, max_retries=0)
def webhook_deliver_task(delivery_id: int) -> str:
    from rdm_site.webhooks import webhook_deliver

    return webhook_deliver(delivery_id)


@shared_task(acks_late=True, max_retries=0)
def webhook_deliveries_due_task() -> int:
    from rdm_site.webhooks import webhook_deliveries_due

    return webhook_deliveries_due()


@shared_task(acks_late=True, max_retries=0)
def audit_anchor_record_task() -> int | None:
    """Note the audit chain's head when it moved; returns the new anchor's id, if one was recorded."""
    from rdm_site.audit import audit_anchor_record

    anchor = audit_anchor_record()
    return anchor.pk if anchor else None


@shared_task(acks_late=True)
def idempotency_records_purge_task() -> int:
    from rdm_site.api.idempotency import idempotency_records_purge

    return idempotency_records_purge()
