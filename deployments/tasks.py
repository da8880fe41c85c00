"""Celery tasks of the rollout engine: thin, taking ids, each calling one engine service.

Messages only say what to look at; the database says what to do, so a duplicated, late or lost message
does no harm (the reconciler re-drives what a lost message or worker left). Tasks are acknowledged late
and retried a bounded number of times on database trouble.
"""

import os
import socket

from celery import shared_task
from django.db import DatabaseError

from deployments import els, engine, reconciler

RETRY = {"acks_late": True, "autoretry_for": (DatabaseError,), "retry_backoff": True, "max_retries": 3}


@shared_task(**RETRY)
def deployment_advance_task(deployment_id: int) -> str | None:
    return engine.deployment_advance(deployment_id=deployment_id)


@shared_task(bind=True, **RETRY)
def steps_run_task(self, deployment_id: int, step_ids: list[int]) -> int:
    owner = f"{socket.gethostname()}:{os.getpid()}:{self.request.id}"
    return engine.steps_run(deployment_id=deployment_id, step_ids=step_ids, owner=owner)


@shared_task(acks_late=True, max_retries=0)
def deployments_reconcile_task() -> dict[str, int]:
    return reconciler.deployments_reconcile()


@shared_task(acks_late=True, max_retries=0)
def els_exits_offer_task() -> int:
    """Evaluate the running ELS periods and offer the exits that came due (each once)."""
    return els.els_exits_offer()


@shared_task(acks_late=True)
def noop_task() -> None:
    """Does nothing: the benchmark's yardstick for a bare Celery round trip (bench/rollout.py)."""
