"""Queueing the engine's Celery tasks by name, after the caller's transaction commits.

Services and the engine queue work here instead of importing ``deployments.tasks`` (which imports them):
a message is sent only once the rows it points to are committed, so a worker never looks too early.
"""

from django.db import transaction

from rdm_site.celery import app

ADVANCE = "deployments.tasks.deployment_advance_task"
RUN_STEPS = "deployments.tasks.steps_run_task"


def queue_after_commit(task: str, *args) -> None:
    """Send the task named ``task`` with ``args`` (routed as configured) once the transaction commits."""
    transaction.on_commit(lambda: app.send_task(task, args=args))


def advance_after_commit(deployment_id: int) -> None:
    queue_after_commit(ADVANCE, deployment_id)
