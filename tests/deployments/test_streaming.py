"""The live event stream of a deployment: replay, live events, gaps filled, the end, permissions, capacity."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from unittest import mock

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from deployments.events import EventBatch, channel_name
from deployments.models import Deployment, DeploymentEvent
from deployments.services import deployment_create, deployment_start
from deployments.streaming import HUB
from rdm_site.redis import redis_client
from rdm_site.roles import Role
from tests.deployments.conftest import drive, make_landscape
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)  # the stream closes its database connection between reads


@pytest.fixture(autouse=True)
def _short_streams(settings):
    settings.RDM_STREAM_KEEPALIVE = 0.5
    settings.RDM_STREAM_LIFETIME = 20


@pytest.fixture
def manager():
    return UserFactory(username="dm", roles=[Role.DEPLOYMENT_MANAGER])


@pytest.fixture
def viewer_client():
    client = Client()
    client.force_login(UserFactory(username="vera", roles=[Role.VIEWER]))
    return client


def planned(manager) -> Deployment:
    land = make_landscape(targets=2)
    return deployment_create(actor=manager, process=land.process, environment=land.environment, version="1.0")


def stream_url(deployment: Deployment) -> str:
    return reverse("deployments:deployment_stream", args=[deployment.pk])


class SseReader:
    """Reads a streaming response message by message (each chunk the view yields is one message)."""

    def __init__(self, response):
        assert response.status_code == 200
        assert response["Content-Type"] == "text/event-stream"
        self.chunks = iter(response.streaming_content)

    def next_message(self) -> dict[str, str]:
        text = next(self.chunks).decode()
        fields = {}
        for line in text.strip("\n").split("\n"):
            name, _, value = line.partition(": ") if not line.startswith(":") else ("comment", "", line[2:])
            fields[name] = value
        return fields

    def events(self, *, until_end: bool = False, count: int | None = None, seconds: float = 10) -> list[dict]:
        """Events (``end`` included) until ``end`` or ``count`` of them, skipping keep-alives."""
        got, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                message = self.next_message()
            except StopIteration:
                break
            if "event" in message:
                got.append(message)
                if (until_end and message["event"] == "end") or (count is not None and len(got) >= count):
                    break
        return got


def seqs(messages: list[dict]) -> list[int]:
    return [int(message["id"]) for message in messages if message["event"] != "end"]


def write_events(deployment: Deployment, messages: list[str], *, published: bool = True) -> None:
    """State changes through the engine's path (written, then published after commit) or with the publish lost."""
    with transaction.atomic():
        locked = Deployment.objects.select_for_update().get(pk=deployment.pk)
        batch = EventBatch(locked)
        for message in messages:
            batch.deployment_changed(message)
        if published:
            batch.flush()
        else:
            with mock.patch("deployments.events.transaction.on_commit"):
                batch.flush()


def test_replay_after_a_given_seq_sends_every_later_event_once_in_order_then_ends(manager, viewer_client):
    deployment = planned(manager)
    deployment_start(deployment=deployment, actor=manager)
    finished = drive(deployment)
    assert finished.state == "succeeded"
    stored = list(DeploymentEvent.objects.filter(deployment=deployment).values_list("seq", flat=True))
    assert len(stored) > 4

    reader = SseReader(viewer_client.get(stream_url(deployment), {"after": stored[2]}))
    assert reader.next_message() == {"retry": "2000"}
    messages = reader.events(until_end=True)

    assert seqs(messages) == stored[3:]
    first = json.loads(messages[0]["data"])
    assert first == DeploymentEvent.objects.get(deployment=deployment, seq=stored[3]).as_message()
    assert messages[0]["event"] == first["type"]
    assert messages[-1]["event"] == "end"
    assert json.loads(messages[-1]["data"]) == {"state": "succeeded", "seq": stored[-1]}


def last_seq(deployment: Deployment) -> int:
    return Deployment.objects.get(pk=deployment.pk).last_event_seq


def test_last_event_id_wins_over_after_on_reconnect(manager, viewer_client):
    deployment = planned(manager)
    write_events(deployment, [f"change {n}" for n in range(6)])
    last = last_seq(deployment)

    response = viewer_client.get(stream_url(deployment), {"after": 1}, headers={"Last-Event-ID": str(last - 2)})
    assert seqs(SseReader(response).events(count=2)) == [last - 1, last]


def test_live_events_arrive_and_a_lost_publish_is_filled_from_the_database(manager, viewer_client):
    deployment = planned(manager)
    reader = SseReader(viewer_client.get(stream_url(deployment), {"after": last_seq(deployment)}))
    assert reader.next_message() == {"retry": "2000"}
    base = last_seq(deployment)

    write_events(deployment, ["live 1", "live 2"])
    assert seqs(reader.events(count=2)) == [base + 1, base + 2]

    write_events(deployment, ["publish lost"], published=False)
    write_events(deployment, ["published after the gap"])
    messages = reader.events(count=2)
    assert seqs(messages) == [base + 3, base + 4]
    assert [json.loads(message["data"])["message"] for message in messages] == [
        "publish lost",
        "published after the gap",
    ]


def test_a_lost_last_publish_is_found_at_the_next_keep_alive(manager, viewer_client):
    deployment = planned(manager)
    reader = SseReader(viewer_client.get(stream_url(deployment), {"after": last_seq(deployment)}))
    assert reader.next_message() == {"retry": "2000"}
    write_events(deployment, ["publish lost"], published=False)
    assert seqs(reader.events(count=1, seconds=5)) == [last_seq(deployment)]


def test_the_stream_ends_when_the_deployment_finishes_while_watched(manager, viewer_client):
    deployment = planned(manager)
    reader = SseReader(viewer_client.get(stream_url(deployment)))
    reader.next_message()  # retry

    deployment_start(deployment=deployment, actor=manager)
    drive(deployment)

    messages = reader.events(until_end=True, seconds=15)
    stored = list(DeploymentEvent.objects.filter(deployment=deployment).values_list("seq", flat=True))
    assert seqs(messages) == stored
    assert messages[-1]["event"] == "end"
    assert json.loads(messages[-1]["data"])["state"] == "succeeded"


def test_anonymous_visitors_go_to_sign_in_and_users_without_the_permission_get_403(manager, client):
    deployment = planned(manager)
    anonymous = client.get(stream_url(deployment))
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("login"))

    client.force_login(UserFactory(username="nobody"))
    assert client.get(stream_url(deployment)).status_code == 403


def test_an_unknown_deployment_is_404(viewer_client):
    assert viewer_client.get(reverse("deployments:deployment_stream", args=[999999])).status_code == 404


OPEN_STREAMS = 40  # more than the 16 threads (2 workers x 8) the server had before streams


def test_pages_still_answer_while_many_streams_are_open(web_server, manager):
    deployment = planned(manager)
    client = Client()
    client.force_login(UserFactory(username="vera", roles=[Role.VIEWER]))
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    host, port = web_server.removeprefix("http://").split(":")
    streams = []
    try:
        for _ in range(OPEN_STREAMS):
            sock = socket.create_connection((host, int(port)), timeout=10)
            request = f"GET {stream_url(deployment)} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n\r\n"
            sock.sendall(request.encode())
            streams.append(sock)
        for sock in streams:  # each one is being served: it has its first message
            assert b"retry: 2000" in read_until(sock, b"retry: 2000")

        page = urllib.request.Request(web_server + "/", headers={"Cookie": cookie})
        with urllib.request.urlopen(page, timeout=20) as response:  # with every thread taken it would wait 5 min
            assert response.status == 200
    finally:
        for sock in streams:
            sock.close()


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    received = b""
    while marker not in received:
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    return received


def test_a_malformed_message_is_logged_and_the_next_event_still_reaches_its_listener(caplog):
    with HUB.listening(987654) as inbox:
        redis_client().publish(channel_name(987654), "not json")
        redis_client().publish(channel_name(987654), json.dumps({"deployment": 987654, "seq": 1, "type": "probe"}))
        event, message = inbox.get(timeout=10)
    assert event["type"] == "probe"
    assert "id: 1" in message
    assert "could not forward a message" in caplog.text
