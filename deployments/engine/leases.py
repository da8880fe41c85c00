"""Leases of the steps a worker runs: a heartbeat thread per worker process renews them while they run.

A step whose lease ran out lost its worker; the reconciler has it run again (``deployments.reconciler``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from deployments.choices import StepState
from deployments.engine.base import lease_seconds
from deployments.models import Step

logger = logging.getLogger(__name__)


class LeaseKeeper:
    """One per worker process: a thread that renews the leases of the steps this process is running or holds in
    reserve.

    Started on first use (after the fork, in the process that runs steps); it connects to the database only
    while it renews. If the process dies, nothing renews the leases and the steps are re-driven.
    """

    _instance: LeaseKeeper | None = None
    _instance_pid = 0
    _create = threading.Lock()

    @classmethod
    def of_this_process(cls) -> LeaseKeeper:
        with cls._create:
            if cls._instance is None or cls._instance_pid != os.getpid():
                cls._instance, cls._instance_pid = cls(), os.getpid()
            return cls._instance

    def __init__(self):
        self.held: dict[int, str] = {}
        self.guard = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="step-lease-keeper", daemon=True)
        self.thread.start()

    def hold(self, owner: str, step_ids: list[int]) -> None:
        with self.guard:
            self.held.update(dict.fromkeys(step_ids, owner))

    def release(self, *step_ids: int) -> None:
        with self.guard:
            for step_id in step_ids:
                self.held.pop(step_id, None)

    def _run(self) -> None:
        while True:
            time.sleep(max(lease_seconds() / 3, 0.2))
            with self.guard:
                by_owner: dict[str, list[int]] = {}
                for step_id, owner in self.held.items():
                    by_owner.setdefault(owner, []).append(step_id)
            if not by_owner:
                continue
            try:
                for owner, ids in by_owner.items():
                    _renew(owner, ids)
            except Exception:
                logger.warning("could not renew step leases", exc_info=True)
            finally:
                connection.close()  # a renewal is rare (a third of a lease): no connection kept idle


@transaction.atomic
def _renew(owner: str, step_ids: list[int]) -> None:
    """Extend the leases this owner still holds. A row that a transaction is writing (its outcome being
    recorded) is skipped rather than waited for, so a renewal never deadlocks with a recording."""
    held = (
        Step.objects.select_for_update(no_key=True, skip_locked=True, of=("self",))
        .filter(pk__in=step_ids, lease_owner=owner, state__in=[StepState.PENDING, StepState.RUNNING])
        .order_by()
        .values("pk")
    )
    Step.objects.filter(pk__in=held).update(lease_expires_at=timezone.now() + timedelta(seconds=lease_seconds()))
