"""Outbound webhooks: a transition reaches a real local receiver that verifies the signature; failed attempts
(a 500, a timeout) are retried from the database with backoff until delivered; private addresses refused."""

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from rdm_site.models import OutboxEvent, WebhookDelivery
from rdm_site.transitions import transition_record
from rdm_site.webhooks import outbox_dispatch, webhook_create, webhook_deliver, webhook_redeliver
from tests.cmdb.factories import EnvironmentFactory
from tests.harness.processes import wait_until

TOLERANCE_SECONDS = 300


class Receiver(ThreadingHTTPServer):
    """A webhook receiver as docs/api.md tells one to verify: HMAC of "<timestamp>.<body>", recent timestamp."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.secret = ""
        self.answers: list[int | float] = []  # what to answer next: a status, or seconds to stall
        self.verified: list[dict] = []
        self.rejected = 0

    @property
    def url(self) -> str:
        return f"http://localhost:{self.server_address[1]}/hooks/rdm"


class _ReceiverHandler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):
        pass

    def do_POST(self):
        server: Receiver = self.server
        body = self.rfile.read(int(self.headers["Content-Length"]))
        answer = server.answers.pop(0) if server.answers else 204
        if isinstance(answer, float):
            time.sleep(answer)
            answer = 204
        timestamp = self.headers["X-RDM-Timestamp"]
        expected = hmac.new(server.secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        fresh = abs(time.time() - int(timestamp)) <= TOLERANCE_SECONDS
        if fresh and hmac.compare_digest(f"sha256={expected}", self.headers["X-RDM-Signature"]):
            if answer < 300:
                server.verified.append(json.loads(body))
        else:
            server.rejected += 1
            answer = 401
        self.send_response(answer)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


@pytest.fixture
def receiver(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["localhost"]
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture
def hook(receiver, demo_users):
    webhook, secret = webhook_create(
        actor=demo_users["dan.deploy"], name="chat", url=receiver.url, event_types=["environment.*"]
    )
    receiver.secret = secret
    return webhook


def _an_event(demo_users):
    environment = EnvironmentFactory(name="Perf", slug="perf")
    transition_record(actor=demo_users["admin"], target=environment, action="environment.create")
    return environment


def _deliver_due(delivery: WebhookDelivery) -> str:
    """Make the stored retry time come due now, then attempt (as the beat-driven due-scan would)."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    return webhook_deliver(delivery.pk)


@pytest.mark.django_db
def test_an_event_reaches_the_receiver_signed_with_the_fresh_object(receiver, hook, demo_users):
    environment = _an_event(demo_users)
    assert outbox_dispatch() >= 1
    delivery = WebhookDelivery.objects.get(webhook=hook)
    assert webhook_deliver(delivery.pk) == "succeeded"
    [payload] = receiver.verified
    assert payload["event"]["type"] == "environment.create"
    assert payload["event"]["object"] == {"type": "cmdb.environment", "id": str(environment.pk), "repr": "Perf"}
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.response_status) == ("succeeded", 1, 204)
    assert OutboxEvent.objects.filter(dispatched_at=None).count() == 0


@pytest.mark.django_db
def test_a_500_and_a_timeout_are_retried_with_backoff_then_delivered(receiver, hook, demo_users, settings):
    settings.RDM_WEBHOOK_TIMEOUT_SECONDS = 0.5
    receiver.answers = [500, 2.0]  # an error, then a stall past the timeout, then 204
    _an_event(demo_users)
    outbox_dispatch()
    delivery = WebhookDelivery.objects.get(webhook=hook)

    before = timezone.now()
    assert webhook_deliver(delivery.pk) == "pending"
    delivery.refresh_from_db()
    assert delivery.response_status == 500
    assert delivery.response_excerpt == "ok"
    assert delivery.next_attempt_at >= before + timezone.timedelta(seconds=settings.RDM_WEBHOOK_RETRY_BASE_SECONDS)
    assert webhook_deliver(delivery.pk) == "not due"  # the retry waits in the database, not in a task

    assert _deliver_due(delivery) == "pending"
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert "timed out" in delivery.error
    second_wait = delivery.next_attempt_at - delivery.last_attempt_at
    assert second_wait.total_seconds() >= 2 * settings.RDM_WEBHOOK_RETRY_BASE_SECONDS - 1

    wait_until(lambda: not receiver.answers, what="the receiver to finish the stalled request")
    assert _deliver_due(delivery) == "succeeded"
    assert len(receiver.verified) == 1
    assert receiver.rejected == 0


@pytest.mark.django_db
def test_a_delivery_gives_up_after_the_last_attempt_and_can_be_redelivered(receiver, hook, demo_users, settings):
    settings.RDM_WEBHOOK_MAX_ATTEMPTS = 2
    receiver.answers = [500, 503]
    _an_event(demo_users)
    outbox_dispatch()
    delivery = WebhookDelivery.objects.get(webhook=hook)
    webhook_deliver(delivery.pk)
    assert _deliver_due(delivery) == "failed"
    again = webhook_redeliver(delivery=delivery, actor=demo_users["dan.deploy"])
    assert webhook_deliver(again.pk) == "succeeded"
    assert receiver.verified[0]["event"]["type"] == "environment.create"


@pytest.mark.django_db
def test_a_private_address_is_refused_unless_allowed(receiver, hook, demo_users, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False
    _an_event(demo_users)
    outbox_dispatch()
    delivery = WebhookDelivery.objects.get(webhook=hook)
    assert webhook_deliver(delivery.pk) == "failed"  # a refusal is not retried: the policy will not change
    delivery.refresh_from_db()
    assert delivery.error.startswith("refused:")
    assert "127.0.0.1" in delivery.error
    assert receiver.verified == []


@pytest.mark.django_db
def test_events_nobody_subscribed_to_are_dispatched_without_deliveries(hook, demo_users):
    transition_record(actor=None, target=demo_users["admin"], action="user.update", changes={"x": [1, 2]})
    outbox_dispatch()
    assert not WebhookDelivery.objects.exists()
    assert OutboxEvent.objects.filter(dispatched_at=None).count() == 0


@pytest.mark.django_db
def test_a_webhook_to_a_host_outside_the_allow_list_is_refused_at_once(demo_users, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["hooks.example.com"]
    from rdm_site.exceptions import InvalidInput

    with pytest.raises(InvalidInput, match="not in OUTBOUND_ALLOWED_HOSTS"):
        webhook_create(actor=demo_users["dan.deploy"], name="x", url="http://10.0.0.8/hook", event_types=["*"])


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_delivers_what_beat_dispatches(receiver, hook, demo_users, worker_factory):
    from rdm_site.tasks import outbox_dispatch_task

    worker_factory(OUTBOUND_ALLOWED_HOSTS="localhost", OUTBOUND_ALLOW_PRIVATE_NETWORKS="true")
    _an_event(demo_users)
    outbox_dispatch_task.delay()
    wait_until(lambda: receiver.verified, timeout=20, what="the worker to deliver the webhook")
    # the receiver answers before the worker records the answer: wait for the record, then check it
    recorded = WebhookDelivery.objects.filter(webhook=hook).exclude(state="pending")
    wait_until(recorded.exists, timeout=20, what="the worker to record the delivery")
    assert WebhookDelivery.objects.get(webhook=hook).state == "succeeded"
