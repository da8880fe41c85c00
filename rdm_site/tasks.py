"""Platform housekeeping run by Celery beat (schedule in rdm_site/celery.py)."""

from celery import shared_task
from django.contrib.sessions.models import Session
from django.utils import timezone


@shared_task(acks_late=True)
def sessions_clear_expired_task() -> int:
    """Remove expired sign-in sessions; returns how many went."""
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted
