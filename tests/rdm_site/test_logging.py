"""Structured logs: JSON lines carrying the request id."""

import io
import json
import logging
import logging.config

import pytest
from django.conf import settings


@pytest.fixture
def json_log_stream():
    """RDM's production logging configuration, writing to a buffer."""
    stream = io.StringIO()
    config = {**settings.LOGGING, "handlers": {**settings.LOGGING["handlers"]}}
    config["handlers"]["console"] = {**config["handlers"]["console"], "formatter": "json", "stream": stream}
    logging.config.dictConfig(config)
    yield stream
    logging.config.dictConfig(settings.LOGGING)


@pytest.mark.django_db
def test_a_log_line_written_during_a_request_is_json_with_its_request_id(client, json_log_stream, settings):
    # when a request fails readiness (Django logs 5xx responses): no worker ever served this queue
    settings.CELERY_TASK_DEFAULT_QUEUE = "a-queue-no-worker-serves"
    client.get("/readyz", headers={"X-Request-ID": "req-42"})

    # then the line is JSON and names the request
    lines = [json.loads(line) for line in json_log_stream.getvalue().splitlines()]
    readiness = [line for line in lines if "/readyz" in line["message"]]
    assert readiness, lines
    assert readiness[0]["request_id"] == "req-42"
    assert readiness[0]["level"] == "ERROR"
    assert {"time", "logger"} <= set(readiness[0])


def test_the_request_id_is_cleared_when_the_request_finishes(client):
    from rdm_site.middleware import current_request_id

    client.get("/healthz", headers={"X-Request-ID": "req-43"})
    assert current_request_id.get() == "-"
