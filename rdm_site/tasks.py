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
