"""Liveness, readiness and Prometheus metrics.

Metrics are computed from the database at scrape time, so every process and host reports the
same figures. Apps add their own figures with ``register_metrics``.
"""

import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import connection
from prometheus_client.core import GaugeMetricFamily, Metric

from rdm_site.celery import heartbeat_key
from rdm_site.redis import redis_client

MetricsSource = Callable[[], Iterable[Metric]]
_metric_sources: list[MetricsSource] = []


def register_metrics(source: MetricsSource) -> MetricsSource:
    """Add a source of metrics to /metrics (usable as a decorator)."""
    if source not in _metric_sources:
        _metric_sources.append(source)
    return source


def newest_worker_heartbeat_age() -> float | None:
    """Seconds since a worker consuming our queue last said it was alive; None if never."""
    newest = redis_client().zrevrange(heartbeat_key(settings.CELERY_TASK_DEFAULT_QUEUE), 0, 0, withscores=True)
    return time.time() - newest[0][1] if newest else None


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _check_redis() -> str:
    redis_client().ping()
    return "ok"


def _check_worker() -> str:
    age = newest_worker_heartbeat_age()
    if age is None:
        return "no worker heartbeat seen"
    if age > settings.WORKER_HEARTBEAT_MAX_AGE:
        return f"newest worker heartbeat is {age:.0f} s old"
    return "ok"


READINESS_CHECKS = {"database": _check_database, "redis": _check_redis, "worker": _check_worker}


def readiness() -> dict[str, str]:
    """Each check's verdict: "ok" or what is wrong."""
    results = {}
    for name, check in READINESS_CHECKS.items():
        try:
            results[name] = check()
        except Exception as error:  # a readiness probe reports failures, it does not raise them
            results[name] = f"error: {error.__class__.__name__}: {error}"
    return results


class DatabaseCollector:
    """prometheus_client collector that asks every registered source at scrape time."""

    def collect(self):
        for source in _metric_sources:
            yield from source()


@register_metrics
def platform_metrics():
    from django.contrib.auth.models import User
    from django.db.models import Count

    from rdm_site.roles import Role

    users = GaugeMetricFamily("rdm_users", "Active users holding each role", labels=["role"])
    counts = dict(
        User.objects.filter(is_active=True, groups__name__in=Role.values)
        .values_list("groups__name")
        .annotate(n=Count("id", distinct=True))
    )
    for role in Role.values:
        users.add_metric([role], counts.get(role, 0))
    yield users
    age = newest_worker_heartbeat_age()
    yield GaugeMetricFamily(
        "rdm_worker_heartbeat_age_seconds",
        "Seconds since the newest Celery worker heartbeat (-1: none seen)",
        value=-1 if age is None else age,
    )
