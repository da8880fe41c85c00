"""The rollout engine: advance a deployment, run its steps, and stop it (abort, rollback, failure).

PostgreSQL is the truth. A Celery message only says "advance deployment X" or "run steps Y of X"; each
task re-reads the rows and acts idempotently, so a duplicated or stale message does no harm.

- Locking: every transaction that writes about a rollout locks the Deployment row first (``_lock``). That
  one lock orders them all (no deadlock) and makes pause and abort exact: a step is claimed only while the
  deployment allows it, and each step re-checks the state just before it starts, so after an abort at most
  the step already under way finishes.
- Leases: a step dispatched to the queue holds a short "queued" lease; a worker that claims it holds a
  lease that a heartbeat thread renews while it runs (``leases``). A step whose lease ran out lost its
  message or its worker; the reconciler has it dispatched again, and it runs with the same idempotency key.
- Waits (bake times, wait steps, manual interventions, retries with backoff) are ``due_at`` times; the
  reconciler (``deployments.reconciler``, Celery beat, every ``RDM_RECONCILE_SECONDS``) advances what came
  due. No task sleeps.
- Batching: one task runs several steps of a deployment one after the other, claiming them together and
  recording their outcomes together (every ``FLUSH_SECONDS``), and advances the deployment in the same
  transaction as the outcomes. Zero-wait steps thus cost a few queries each, not a Celery round trip.

Deployment transitions made by the engine are recorded (``rdm_site.transitions``: audit and outbox) with RDM
itself as the actor; steps write StepLog lines, not audit events. Every state change is numbered and
published (``deployments.events``). The engine queues its tasks by name (``deployments.queue``) and never
imports ``deployments.tasks``, which imports it.
"""

from deployments.engine.advance import deployment_advance, rollback_begin, stop, wave_transition
from deployments.engine.base import QUEUED, Tick, dispatch_chunks, lock_deployment, skip_open, steps_write
from deployments.engine.runner import steps_run

__all__ = [
    "QUEUED",
    "Tick",
    "deployment_advance",
    "dispatch_chunks",
    "lock_deployment",
    "rollback_begin",
    "skip_open",
    "steps_run",
    "steps_write",
    "stop",
    "wave_transition",
]
