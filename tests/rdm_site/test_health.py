"""Liveness, readiness (database, Redis, worker heartbeat) and metrics."""

import uuid

import pytest

from rdm_site.celery import heartbeat_key
from rdm_site.redis import redis_client
from tests.harness.processes import wait_until


def test_healthz_answers_without_sign_in(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_goes_from_503_to_200_when_a_worker_heartbeat_arrives(client, settings, worker_factory):
    # given a queue no worker has ever consumed
    queue = f"rdm-readyz-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    before = client.get("/readyz")
    assert before.status_code == 503
    assert before.json()["checks"] == {"database": "ok", "redis": "ok", "worker": "no worker heartbeat seen"}

    # when a worker for that queue starts
    worker = worker_factory(RDM_CELERY_QUEUE=queue)

    # then readiness turns green with all three checks ok
    after = wait_until(lambda: (r := client.get("/readyz")).status_code == 200 and r, what=worker.log())
    assert after.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok", "worker": "ok"}}


@pytest.mark.django_db
def test_readyz_fails_on_a_stale_heartbeat(client, settings):
    queue = f"rdm-stale-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    redis_client().zadd(heartbeat_key(queue), {"worker@gone": 1_000_000_000})
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["worker"].startswith("newest worker heartbeat is")


@pytest.fixture
def fresh_redis_client():
    """Forget the per-process Redis client before and after a test that changes REDIS_URL."""
    redis_client.cache_clear()
    yield
    redis_client.cache_clear()


@pytest.mark.django_db
def test_readyz_reports_an_unreachable_redis(client, settings, fresh_redis_client):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("error: ConnectionError")
    assert response.json()["checks"]["database"] == "ok"


@pytest.mark.django_db
def test_metrics_are_computed_from_the_database_at_scrape_time(client, demo_users):
    response = client.get("/metrics")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'rdm_users{role="Service Owner"} 2.0' in body
    assert 'rdm_users{role="Viewer"} 1.0' in body
    assert "rdm_worker_heartbeat_age_seconds" in body


@pytest.mark.django_db
def test_metrics_require_the_bearer_token_when_one_is_set(client, settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape-token"}).status_code == 200


def test_request_id_is_echoed_or_made_up(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"})["X-Request-ID"] == "abc-123"
    made_up = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})["X-Request-ID"]
    assert made_up != "bad id with spaces"
    assert len(made_up) == 32
