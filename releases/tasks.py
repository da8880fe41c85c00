"""Celery tasks of release governance: thin, each calling one service."""

from celery import shared_task

from releases.services.review import reviews_remind_overdue


@shared_task(acks_late=True, max_retries=0)
def reviews_remind_overdue_task() -> int:
    """Hourly from the beat; each overdue review is reminded at most once a day whatever the schedule."""
    return reviews_remind_overdue()
