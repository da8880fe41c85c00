"""The live event stream of a deployment (Server-Sent Events).

Contract with the pages that consume it (``EventSource`` or htmx's SSE extension):

- ``GET /deployments/<pk>/events/stream/`` (``deployments:deployment_stream``), ``text/event-stream``, for
  signed-in users with ``deployments.view_deployment`` (anonymous: sign-in redirect; no permission: 403).
- It starts with ``retry: 2000``. Each ``DeploymentEvent`` is sent once, in ``seq`` order, as
  ``id: <seq>``, ``event: <type>`` (deployment, wave or step) and ``data: <json of as_message()>``.
- It replays from the ``Last-Event-ID`` header (sent by ``EventSource`` on reconnect) or ``?after=<seq>``
  (first connect) out of the database, then follows ``rdm:deployment:{id}`` on Redis: it subscribes before
  reading the replay, drops what it already sent and fills any gap (a lost publish) from the database.
- A ``: keep-alive`` comment every ``RDM_STREAM_KEEPALIVE`` seconds (15); the database is checked then too,
  so a lost last publish is not missed for long.
- Once the deployment is finished and all its events are sent: ``event: end`` with
  ``data: {"state": ..., "seq": ...}`` (state ``deleted`` if it was deleted), then the stream closes; the
  page closes its ``EventSource`` on ``end`` (else the browser reconnects, and gets ``end`` again).
  Otherwise it closes after ``RDM_STREAM_LIFETIME`` seconds (300); the browser reconnects with
  ``Last-Event-ID``.
- Step logs are not on this stream.

Each open stream holds a server thread, but no database connection between its reads and no Redis connection
of its own: one subscription per server process feeds them all (docs/serving.md: the figures and the layout).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from django.conf import settings
from django.db import connection
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path
from django.views import View

from deployments.choices import DEPLOYMENT_TERMINAL_STATES
from deployments.events import channel_name
from deployments.models import Deployment
from deployments.selectors import deployment_events_since
from rdm_site.redis import redis_client
from rdm_site.web import RdmPermissionRequiredMixin

logger = logging.getLogger(__name__)
DELETED = "deleted"  # the final state sent when a (planned) deployment is deleted while watched


def sse_message(event: dict) -> str:
    return f"id: {event['seq']}\nevent: {event['type']}\ndata: {json.dumps(event)}\n\n"


def requested_start(request) -> int:
    """The last ``seq`` the browser has: ``Last-Event-ID`` on reconnect, else ``?after=``, else 0."""
    raw = request.headers.get("Last-Event-ID") or request.GET.get("after") or "0"
    return int(raw) if raw.isdigit() else 0


class EventHub:
    """One Redis subscription per server process, to every deployment's channel, shared by its open streams.

    A stream registers its inbox before it reads its replay from the database, so no event falls between
    the two. If Redis drops the connection, redis-py reconnects and subscribes again; the streams fill what
    they missed from the database (at the next event's gap, or at their next keep-alive).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._inboxes: dict[int, set[queue.SimpleQueue]] = defaultdict(set)
        self._pubsub = None

    @contextmanager
    def listening(self, deployment_id: int) -> Iterator[queue.SimpleQueue]:
        inbox = queue.SimpleQueue()
        with self._lock:
            if self._pubsub is None:
                self._pubsub = self._subscribed()
                threading.Thread(target=self._forward, name="rdm-event-hub", daemon=True).start()
            self._inboxes[deployment_id].add(inbox)
        try:
            yield inbox
        finally:
            with self._lock:
                self._inboxes[deployment_id].discard(inbox)
                if not self._inboxes[deployment_id]:
                    del self._inboxes[deployment_id]

    @staticmethod
    def _subscribed():
        """A subscription that Redis has confirmed: events published from now on reach it."""
        pubsub = redis_client().pubsub()
        pubsub.psubscribe(channel_name("*"))
        deadline = time.monotonic() + 5
        while (message := pubsub.get_message(timeout=1)) is None or message["type"] != "psubscribe":
            if time.monotonic() > deadline:
                raise redis.TimeoutError("Redis did not confirm the subscription to deployment events")
        return pubsub

    def _forward(self) -> None:
        unreachable = False
        while True:
            try:
                self._forward_next()
            except redis.ConnectionError as error:  # an outage: one line when it begins, one when it ends
                if not unreachable:
                    logger.warning("deployment events: Redis unreachable (%s); retrying every second", error)
                unreachable = True
                time.sleep(1)
                continue
            except Exception:  # the hub must outlive a malformed message
                logger.warning("deployment events: could not forward a message; carrying on", exc_info=True)
                time.sleep(1)
            if unreachable:
                logger.warning("deployment events: Redis reachable again")
                unreachable = False

    def _forward_next(self) -> None:
        message = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
        if message is None:
            return
        event = json.loads(message["data"])
        delivery = (event, sse_message(event))  # formatted once for all the streams of this process
        with self._lock:
            inboxes = list(self._inboxes.get(event["deployment"], ()))
        for inbox in inboxes:
            inbox.put(delivery)


HUB = EventHub()


class DeploymentEventStream:
    """One connection's events: replay from the database, then live from Redis, each ``seq`` once."""

    def __init__(self, deployment_id: int, after_seq: int):
        self.deployment_id = deployment_id
        self.sent_seq = after_seq
        self.finished = False

    def __iter__(self) -> Iterator[str]:
        with HUB.listening(self.deployment_id) as inbox:  # before the replay: nothing falls in between
            yield "retry: 2000\n\n"
            yield from self._from_database()
            now = time.monotonic()
            closes_at, keepalive_at = now + settings.RDM_STREAM_LIFETIME, now + settings.RDM_STREAM_KEEPALIVE
            while not self.finished and now < closes_at:
                try:
                    delivery = inbox.get(timeout=max(0.0, min(keepalive_at, closes_at) - now))
                except queue.Empty:
                    delivery = None
                now = time.monotonic()
                if delivery is not None:
                    yield from self._published(*delivery)
                elif now >= keepalive_at:
                    yield ": keep-alive\n\n"
                    yield from self._from_database()
                    keepalive_at = now + settings.RDM_STREAM_KEEPALIVE

    def _published(self, event: dict, message: str) -> Iterator[str]:
        if event["seq"] <= self.sent_seq:
            return  # already sent (replayed, or filled from the database)
        if event["seq"] > self.sent_seq + 1 or (
            event["type"] == "deployment" and event["state"] in DEPLOYMENT_TERMINAL_STATES
        ):
            yield from self._from_database()  # a gap to fill, or maybe the end
            return
        self.sent_seq = event["seq"]
        yield message

    def _from_database(self) -> Iterator[str]:
        """Every stored event after the last one sent; then ``end`` if the deployment is finished."""
        state, last_seq, events = self._stored_after()
        for event in events:
            self.sent_seq = event["seq"]
            yield sse_message(event)
        if (state in DEPLOYMENT_TERMINAL_STATES or state == DELETED) and self.sent_seq >= last_seq:
            self.finished = True
            yield f"event: end\ndata: {json.dumps({'state': state, 'seq': self.sent_seq})}\n\n"

    def _stored_after(self) -> tuple[str, int, list[dict]]:
        try:
            row = Deployment.objects.filter(pk=self.deployment_id).values_list("state", "last_event_seq").first()
            state, last_seq = row or (DELETED, self.sent_seq)
            events, after = [], self.sent_seq
            while after < last_seq and (page := deployment_events_since(self.deployment_id, after)):
                events += page
                after = page[-1]["seq"]
            return state, last_seq, events
        finally:
            connection.close()  # an open stream holds no database connection while it waits or writes


class DeploymentStreamView(RdmPermissionRequiredMixin, View):
    permission_required = "deployments.view_deployment"

    def get(self, request, pk: int):
        get_object_or_404(Deployment, pk=pk)
        response = StreamingHttpResponse(
            iter(DeploymentEventStream(pk, requested_start(request))), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
        return response


urlpatterns = [
    path("deployments/<int:pk>/events/stream/", DeploymentStreamView.as_view(), name="deployment_stream"),
]
