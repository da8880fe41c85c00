"""The Celery app, configured from Django settings (``CELERY_*``).

Each worker runs a heartbeat bootstep: every ``WORKER_HEARTBEAT_INTERVAL`` seconds it records
the time in a Redis sorted set per queue, which ``/readyz`` reads.
"""

import os
import time

from celery import Celery, bootsteps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rdm_site.settings")

app = Celery("rdm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def heartbeat_key(queue: str) -> str:
    return f"rdm:worker-heartbeats:{queue}"


class HeartbeatStep(bootsteps.StartStopStep):
    """Tells /readyz that a worker consuming our queue is alive."""

    requires = {"celery.worker.components:Timer"}

    def start(self, worker):
        from django.conf import settings

        self.hostname = worker.hostname
        self.interval = settings.WORKER_HEARTBEAT_INTERVAL
        self.key = heartbeat_key(settings.CELERY_TASK_DEFAULT_QUEUE)
        self.beat()
        self.timer_entry = worker.timer.call_repeatedly(self.interval, self.beat)

    def beat(self):
        from rdm_site.redis import redis_client

        client = redis_client()
        client.zadd(self.key, {self.hostname: time.time()})
        client.expire(self.key, self.interval * 30)

    def stop(self, worker):
        if getattr(self, "timer_entry", None):
            self.timer_entry.cancel()


app.steps["worker"].add(HeartbeatStep)


# Every periodic job of RDM, in one place (STYLE.md rule 13). Built once the app is configured, so that
# importing rdm_site does not load the Django settings before the caller has set the environment.
@app.on_after_configure.connect
def _beat_schedule(sender, **kwargs):
    from django.conf import settings

    sender.conf.beat_schedule = {
        "sessions-clear-expired": {"task": "rdm_site.tasks.sessions_clear_expired_task", "schedule": 3600.0},
        "deployments-reconcile": {
            "task": "deployments.tasks.deployments_reconcile_task",
            "schedule": settings.RDM_RECONCILE_SECONDS,
            # A late run is pointless: the next one comes a few seconds later.
            "options": {"expires": settings.RDM_RECONCILE_SECONDS},
        },
        "outbox-dispatch": {
            "task": "rdm_site.tasks.outbox_dispatch_task",
            "schedule": settings.RDM_OUTBOX_DISPATCH_SECONDS,
            "options": {"expires": settings.RDM_OUTBOX_DISPATCH_SECONDS},
        },
        "webhook-deliveries-due": {
            "task": "rdm_site.tasks.webhook_deliveries_due_task",
            "schedule": settings.RDM_OUTBOX_DISPATCH_SECONDS,
            "options": {"expires": settings.RDM_OUTBOX_DISPATCH_SECONDS},
        },
        "idempotency-records-purge": {"task": "rdm_site.tasks.idempotency_records_purge_task", "schedule": 3600.0},
        "audit-anchor-record": {
            "task": "rdm_site.tasks.audit_anchor_record_task",
            "schedule": settings.RDM_AUDIT_ANCHOR_SECONDS,
            "options": {"expires": settings.RDM_AUDIT_ANCHOR_SECONDS},
        },
        # hourly, so a beat that was down catches up; each overdue review is reminded at most once a day
        "reviews-remind-overdue": {"task": "releases.tasks.reviews_remind_overdue_task", "schedule": 3600.0},
        "els-exits-offer": {
            "task": "deployments.tasks.els_exits_offer_task",
            "schedule": settings.RDM_ELS_CHECK_SECONDS,
            "options": {"expires": settings.RDM_ELS_CHECK_SECONDS},
        },
    }
