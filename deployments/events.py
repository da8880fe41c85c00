"""Live events: every state change of a deployment, wave or step is written, then published after commit.

Each event gets the next number of its deployment (``Deployment.last_event_seq``, on the deployment row
that the writing transaction has locked), so a live view that missed some can replay them from the
database (``selectors.deployment_events_since``). Redis carries them on ``rdm:deployment:{id}``.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from deployments.choices import EventType
from deployments.models import Deployment, DeploymentEvent, Step, Wave
from rdm_site.redis import redis_client

logger = logging.getLogger(__name__)


def channel_name(deployment_id: int | str) -> str:
    """The deployment's Redis channel: ``rdm:deployment:{id}`` (``RDM_REDIS_CHANNEL_PREFIX`` names the ``rdm``)."""
    return f"{settings.RDM_REDIS_CHANNEL_PREFIX}:deployment:{deployment_id}"


class EventBatch:
    """Events gathered during one transaction on a locked deployment, written together by ``flush``."""

    def __init__(self, deployment: Deployment):
        self.deployment = deployment
        self.pending: list[DeploymentEvent] = []

    def deployment_changed(self, message: str = "") -> None:
        self._add(EventType.DEPLOYMENT, self.deployment.state, message=message)

    def wave_changed(self, wave: Wave, message: str = "") -> None:
        self._add(EventType.WAVE, wave.state, wave_id=wave.pk, message=message)

    def step_changed(self, step: Step, message: str = "") -> None:
        self._add(EventType.STEP, step.state, wave_id=step.wave_id, step_id=step.pk, message=message)

    def _add(self, kind: str, state: str, *, wave_id=None, step_id=None, message: str = "") -> None:
        self.pending.append(
            DeploymentEvent(
                deployment_id=self.deployment.pk,
                type=kind,
                state=state,
                wave_id_ref=wave_id,
                step_id_ref=step_id,
                message=message[:2000],
                at=timezone.now(),
            )
        )

    def flush(self, **also) -> list[DeploymentEvent]:
        """Number, write and (after commit) publish the gathered events. Call inside the transaction.

        ``also`` are other fields of the deployment row to write in the same statement.
        """
        if not self.pending:
            if also:
                Deployment.objects.filter(pk=self.deployment.pk).update(**also)
            return []
        events, self.pending = self.pending, []
        first = self.deployment.last_event_seq + 1
        for offset, event in enumerate(events):
            event.seq = first + offset
        self.deployment.last_event_seq = first + len(events) - 1
        Deployment.objects.filter(pk=self.deployment.pk).update(last_event_seq=self.deployment.last_event_seq, **also)
        DeploymentEvent.objects.bulk_create(events)
        messages = [json.dumps(event.as_message()) for event in events]
        transaction.on_commit(lambda: events_publish(self.deployment.pk, messages))
        return events


def events_publish(deployment_id: int, messages: list[str]) -> None:
    """Best effort: a live view that misses one replays it from the database."""
    try:
        pipeline = redis_client().pipeline(transaction=False)
        for message in messages:
            pipeline.publish(channel_name(deployment_id), message)
        pipeline.execute()
    except Exception:
        logger.warning("could not publish %d event(s) of deployment %s", len(messages), deployment_id, exc_info=True)
