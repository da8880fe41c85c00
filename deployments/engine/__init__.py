"""The rollout engine: advance a deployment, run its steps, and stop it (abort, rollback, failure).

PostgreSQL is the truth. A Celery message only says "advance deployment X" or "run steps Y of X"; each
task re-reads the rows and acts idempotently, so a duplicated or stale message does no harm.

- Locking: every transaction that writes about a rollout locks the Deployment row first (``lock_deployment``).
  That one lock orders them all (no deadlock) and makes pause and abort exact: a step is claimed only while
  the deployment allows it and starts as soon as it is claimed, so after an abort at most the steps already
  under way finish. Claims then take one advisory lock (``CLAIM_LOCK``) to count the running steps.
- Leases: a step dispatched to the queue holds a short "queued" lease; a worker that claims it holds a
  lease that a heartbeat thread renews while it runs (``leases``). A step whose lease ran out lost its
  message or its worker; the reconciler has it dispatched again, and it runs with the same idempotency key.
- Waits (bake times, wait steps, manual interventions, retries with backoff) are ``due_at`` times; the
  reconciler (``deployments.reconciler``, Celery beat, every ``RDM_RECONCILE_SECONDS``) advances what came
  due. No task sleeps.
- Concurrency and batching: one task runs several steps at once, each executor call in a thread of the worker
  process (``runner.step_threads``), within ``RDM_STEP_CONCURRENCY`` steps running anywhere and
  ``RDM_DEPLOYMENT_STEP_CONCURRENCY`` per deployment (counted in the database, ``free_slots``). Database work
  stays on the task's thread: it claims steps together and records the outcomes that came together, advancing
  the deployment (and claiming what it moved on to) in the same transaction. With threads to spare it also
  runs steps dispatched to other tasks that no worker took yet. Zero-wait steps thus cost a few queries each,
  not a Celery round trip; slow ones (HTTP calls) wait side by side.
- The reserve: each claim and record also leases (without starting them) as many of the deployment's next
  steps as the batch has calls of it under way. When a call returns, one of them takes its slot at once by one
  guarded statement (``runner.steps_start_held``: still pending, still leased to the batch, the deployment still
  in the same state), not a claim; the next record writes its "running" event. An abort, a rollback or a
  failure skips pending steps, reserved ones included, and a pause changes the state, so a reserved step never
  starts after them; one that started first is under way, and left to its worker.

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
