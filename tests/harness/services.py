"""pytest plugin (loaded with ``-p`` before Django settings): embedded PostgreSQL and Redis.

When ``DATABASE_URL`` / ``REDIS_URL`` are unset, the embedded servers are started for the test
session (and stopped afterwards if this session started them). Tests use Redis database 1 and a
Celery queue of their own, so a ``make run`` on the same servers is left alone.
"""

import os
import uuid

from rdm_site import embedded

_started = embedded.start(postgres="DATABASE_URL" not in os.environ, redis="REDIS_URL" not in os.environ)
os.environ.setdefault("REDIS_URL", embedded.redis_url(db=1))
os.environ.setdefault("RDM_CELERY_QUEUE", f"rdm-test-{uuid.uuid4().hex[:8]}")


def pytest_unconfigure(config):
    embedded.stop(_started)
