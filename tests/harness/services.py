"""pytest plugin (loaded with ``-p`` before Django settings): embedded PostgreSQL and Redis.

When ``DATABASE_URL`` / ``REDIS_URL`` are unset, the embedded servers are started for the test
session (and stopped afterwards if this session started them). Tests use Redis database 1 and a
Celery queue of their own, so a ``make run`` on the same servers is left alone.

Under pytest-xdist every worker process has its own test database (pytest-django names it), and here its
own Redis database (the next ones after the session's), Celery queue and live-event channel prefix.
"""

import os
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from rdm_site import embedded

_started = embedded.start(postgres="DATABASE_URL" not in os.environ, redis="REDIS_URL" not in os.environ)


def redis_url_with_db(url: str, db: int) -> str:
    """The same Redis server, another database (``redis://host/db`` or ``unix://path?db=``)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = urlencode({**dict(parse_qsl(parts.query)), "db": db})
        return f"unix://{parts.path}?{query}"
    return urlunsplit(parts._replace(path=f"/{db}"))


def redis_db_of(url: str) -> int:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return int(dict(parse_qsl(parts.query)).get("db", 0))
    return int(parts.path.strip("/") or 0)


# The first process (the only one, or pytest-xdist's controller) names the session's Redis; its workers inherit it.
_session_redis = os.environ.setdefault("RDM_TEST_REDIS_URL", os.environ.get("REDIS_URL", embedded.redis_url(db=1)))
_worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
os.environ["REDIS_URL"] = redis_url_with_db(_session_redis, redis_db_of(_session_redis) + _worker)
os.environ["RDM_CELERY_QUEUE"] = f"rdm-test-{uuid.uuid4().hex[:8]}"
os.environ["RDM_REDIS_CHANNEL_PREFIX"] = os.environ["RDM_CELERY_QUEUE"]


def pytest_unconfigure(config):
    embedded.stop(_started)
