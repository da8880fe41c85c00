"""The product's settings plus the benchmark's yardstick views (bench/urls.py): the same server serves both."""

from rdm_site.settings import *  # noqa: F403 - the product's settings, unchanged but for the URLs

ROOT_URLCONF = "bench.urls"
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]  # noqa: F405 - the in-process client counting queries
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}  # noqa: F405 - measure serving, not the limit
