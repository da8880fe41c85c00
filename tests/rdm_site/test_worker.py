"""A real Celery worker subprocess runs platform tasks through Redis."""

from datetime import timedelta

from django.contrib.sessions.models import Session
from django.utils import timezone

from rdm_site.tasks import sessions_clear_expired_task
from tests.harness.processes import wait_until


def test_worker_subprocess_runs_a_task_sent_through_redis(celery_worker):
    # given an expired and a live session
    now = timezone.now()
    Session.objects.create(session_key="expired", session_data="", expire_date=now - timedelta(days=1))
    Session.objects.create(session_key="live", session_data="", expire_date=now + timedelta(days=1))

    # when the housekeeping task is sent to the broker
    sessions_clear_expired_task.delay()

    # then the worker process removes only the expired one
    wait_until(lambda: not Session.objects.filter(session_key="expired").exists(), what=celery_worker.log())
    assert Session.objects.filter(session_key="live").exists()
    assert celery_worker.alive()
