"""RDM settings, read from the environment and grouped by concern.

Every variable is documented in README.md ("Configuration"). ``RDM_ENV=production`` switches on
production mode, which refuses to start while any setting is unsafe.
"""

from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from rdm_site import embedded

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

# --- mode -------------------------------------------------------------------------------------
RDM_ENV = env.str("RDM_ENV", default="development")
if RDM_ENV not in {"development", "production"}:
    raise ImproperlyConfigured(f"RDM_ENV must be 'development' or 'production', not {RDM_ENV!r}")
PRODUCTION = RDM_ENV == "production"

# --- security ---------------------------------------------------------------------------------
DEVELOPMENT_SECRET_KEY = "rdm-development-only-secret-key-never-use-in-production"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
DEBUG = env.bool("DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=PRODUCTION)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=PRODUCTION)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=PRODUCTION)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=PRODUCTION)
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# When set, /metrics asks for "Authorization: Bearer <METRICS_TOKEN>"; production mode requires it.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# The health and metrics endpoints are probed over plain HTTP inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]

# --- database ---------------------------------------------------------------------------------
USING_EMBEDDED_POSTGRES = "DATABASE_URL" not in env
DATABASES = {"default": env.db_url("DATABASE_URL", default=embedded.database_url())}
# Under ASGI, Django advises a connection pool instead of persistent connections (docs/serving.md).
DATABASE_POOL = env.bool("DATABASE_POOL", default=False)
if DATABASE_POOL:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {"min_size": 2, "max_size": 20}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# No JIT compilation: it costs seconds on list queries whose annotations' estimated cost passes jit_above_cost, and
# pages read a few dozen rows (docs/performance.md).
DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis and Celery -------------------------------------------------------------------------
USING_EMBEDDED_REDIS = "REDIS_URL" not in env
REDIS_URL = env.str("REDIS_URL", default=embedded.redis_url())


def _celery_broker_url(redis_url: str) -> str:
    """Celery names a Unix-socket Redis differently from redis-py."""
    if redis_url.startswith("unix://"):
        path, _, query = redis_url.removeprefix("unix://").partition("?")
        db = dict(part.split("=", 1) for part in query.split("&") if "=" in part).get("db", "0")
        return f"redis+socket://{path}?virtual_host={db}"
    return redis_url


CELERY_BROKER_URL = _celery_broker_url(REDIS_URL)
# Redis keeps keys per database but publishes on channels shared by the whole server: two installations on one
# Redis server (each with a database of its own in REDIS_URL) need different prefixes for their live events.
RDM_REDIS_CHANNEL_PREFIX = env.str("RDM_REDIS_CHANNEL_PREFIX", default="rdm")
CELERY_TASK_DEFAULT_QUEUE = env.str("RDM_CELERY_QUEUE", default="rdm")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True  # PostgreSQL is the truth: nothing reads a Celery result
CELERY_TASK_TIME_LIMIT = 120  # tasks stay short; long waits are "due at" rows in the database
CELERY_TASK_SOFT_TIME_LIMIT = 90
# Well above any task's run time, so a slow task is never delivered twice while it runs.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = env.str(
    "CELERY_BEAT_SCHEDULE_FILENAME", default=str(embedded.DATA_DIR / "celerybeat-schedule")
)
CELERY_TIMEZONE = "UTC"
WORKER_HEARTBEAT_INTERVAL = 10  # seconds between a worker's heartbeats
WORKER_HEARTBEAT_MAX_AGE = 60  # /readyz fails when the newest heartbeat is older

# --- rollout engine (deployments/engine.py) ---------------------------------------------------
# Seconds between two runs of the reconciler (Celery beat), which advances what came due (bake times,
# waits, retries, deadlines) and re-drives steps whose worker or message was lost.
RDM_RECONCILE_SECONDS = env.float("RDM_RECONCILE_SECONDS", default=5.0)
# A running step's lease: renewed by its worker every third of it; once it runs out the step is re-run.
RDM_STEP_LEASE_SECONDS = env.float("RDM_STEP_LEASE_SECONDS", default=60.0)
# At most this many steps of a deployment are sent to one task...
RDM_STEP_BATCH_SIZE = env.int("RDM_STEP_BATCH_SIZE", default=50)
# ...and the steps dispatched together are spread over at least this many tasks (when there are that many),
# so that their bookkeeping runs on that many worker processes at once.
RDM_STEP_SPREAD = env.int("RDM_STEP_SPREAD", default=8)
# At most this many steps run at once, across every worker process and deployment (each worker process
# runs its steps' executor calls in threads, docs/rollout-engine.md)...
RDM_STEP_CONCURRENCY = env.int("RDM_STEP_CONCURRENCY", default=64)
# ...and at most this many of one deployment (spares the tools its steps call).
RDM_DEPLOYMENT_STEP_CONCURRENCY = env.int("RDM_DEPLOYMENT_STEP_CONCURRENCY", default=32)
_engine_numbers = {
    "RDM_RECONCILE_SECONDS": RDM_RECONCILE_SECONDS,
    "RDM_STEP_LEASE_SECONDS": RDM_STEP_LEASE_SECONDS,
    "RDM_STEP_BATCH_SIZE": RDM_STEP_BATCH_SIZE,
    "RDM_STEP_SPREAD": RDM_STEP_SPREAD,
    "RDM_STEP_CONCURRENCY": RDM_STEP_CONCURRENCY,
    "RDM_DEPLOYMENT_STEP_CONCURRENCY": RDM_DEPLOYMENT_STEP_CONCURRENCY,
}
if min(_engine_numbers.values()) <= 0:
    raise ImproperlyConfigured(f"{', '.join(_engine_numbers)} must be positive")

# --- early life support and incidents (deployments/els.py, deployments/correlation.py) -------------------
# An incident naming no deployment is tied to a production deployment that succeeded at most this long before;
# the window of a deployment of no release package (one of a release takes its policy's incident_correlation_hours).
RDM_INCIDENT_CORRELATION_HOURS = env.int("RDM_INCIDENT_CORRELATION_HOURS", default=72)
# Seconds between two evaluations of the running ELS periods' exit criteria (Celery beat).
RDM_ELS_CHECK_SECONDS = env.float("RDM_ELS_CHECK_SECONDS", default=300.0)
if RDM_INCIDENT_CORRELATION_HOURS <= 0 or RDM_ELS_CHECK_SECONDS <= 0:
    raise ImproperlyConfigured("RDM_INCIDENT_CORRELATION_HOURS and RDM_ELS_CHECK_SECONDS must be positive")

# --- audit trail (rdm_site/audit.py) ------------------------------------------------------------
# Seconds between two anchors of the audit chain's head (Celery beat; recorded only when the head moved).
RDM_AUDIT_ANCHOR_SECONDS = env.float("RDM_AUDIT_ANCHOR_SECONDS", default=300.0)
if RDM_AUDIT_ANCHOR_SECONDS <= 0:
    raise ImproperlyConfigured("RDM_AUDIT_ANCHOR_SECONDS must be positive")

CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}

# --- application ------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_tables2",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "rdm_site",
    "cmdb",
    "releases",
    "deployments",
]

MIDDLEWARE = [
    "rdm_site.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "rdm_site.middleware.ActingUserMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "rdm_site.urls"
WSGI_APPLICATION = "rdm_site.wsgi.application"
ASGI_APPLICATION = "rdm_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "rdm_site.context_processors.navigation",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Selects written in Python (a list's filter form lists every service and user as options).
FORM_RENDERER = "rdm_site.renderers.FormRenderer"
LOGIN_URL = "login"
DJANGO_TABLES2_TEMPLATE = "django_tables2/bootstrap5-responsive.html"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / ".data" / "static"))
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = not PRODUCTION  # production serves what collectstatic gathered
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rdm_site.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "rdm_site.api.parsers.RdmJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["rdm_site.api.throttling.ActorRateThrottle"],
    # Requests per API token and per signed-in user (429 with Retry-After beyond).
    "DEFAULT_THROTTLE_RATES": {
        "token": env.str("RDM_API_RATE_TOKEN", default="1200/min"),
        "user": env.str("RDM_API_RATE_USER", default="600/min"),
    },
    "DEFAULT_PERMISSION_CLASSES": ["rdm_site.api.permissions.RdmModelPermissions"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "rdm_site.api.pagination.PagePagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "rdm_site.api.exceptions.problem_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "RDM API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # The interactive docs are served from our own static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Choice sets whose field names ("state", "kind", …) other records use too: named after what they are.
    "ENUM_NAME_OVERRIDES": {
        "CiStateEnum": "cmdb.choices.CiState",
        "ReleaseStateEnum": "releases.choices.ReleaseState",
        "PackageStateEnum": "releases.choices.PackageState",
        "ChangeStateEnum": "releases.choices.ChangeState",
        "WaveStateEnum": "deployments.choices.WaveState",
        "DeliveryStateEnum": "rdm_site.choices.DeliveryState",
        "DeploymentStateEnum": "deployments.choices.DeploymentState",
        "StepStateEnum": "deployments.choices.StepState",
        "StepKindEnum": "deployments.choices.StepKind",
        "IncidentStateEnum": "deployments.choices.IncidentState",
        "IncidentSeverityEnum": "deployments.choices.IncidentSeverity",
        "ReviewStateEnum": "releases.choices.ReviewState",
    },
}

# A retried POST with the same Idempotency-Key gets the first answer for this long (at least 24 hours).
RDM_IDEMPOTENCY_HOURS = max(env.int("RDM_IDEMPOTENCY_HOURS", default=48), 24)
# JUnit XML results up to 10 MB are accepted in one request.
DATA_UPLOAD_MAX_MEMORY_SIZE = 11 * 1024 * 1024

# --- webhooks ---------------------------------------------------------------------------------
# How often committed events are turned into webhook deliveries, and due retries queued (Celery beat).
RDM_OUTBOX_DISPATCH_SECONDS = env.float("RDM_OUTBOX_DISPATCH_SECONDS", default=2.0)
RDM_WEBHOOK_TIMEOUT_SECONDS = env.float("RDM_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
RDM_WEBHOOK_MAX_ATTEMPTS = env.int("RDM_WEBHOOK_MAX_ATTEMPTS", default=8)
# Retries wait base, 2 x base, 4 x base, … seconds, at most max.
RDM_WEBHOOK_RETRY_BASE_SECONDS = env.float("RDM_WEBHOOK_RETRY_BASE_SECONDS", default=30.0)
RDM_WEBHOOK_RETRY_MAX_SECONDS = env.float("RDM_WEBHOOK_RETRY_MAX_SECONDS", default=3600.0)
# A deployment's live event stream: keep-alive period, and how long before the browser must reconnect.
RDM_STREAM_KEEPALIVE = env.float("RDM_STREAM_KEEPALIVE", default=15.0)
RDM_STREAM_LIFETIME = env.float("RDM_STREAM_LIFETIME", default=300.0)

# --- deployment execution ----------------------------------------------------------------------
# Outbound HTTP from executors (rdm_site/outbound.py) goes only to these hosts: exact names or
# "*.example.com" patterns (any subdomain). Empty means nothing is allowed.
OUTBOUND_ALLOWED_HOSTS = env.list("OUTBOUND_ALLOWED_HOSTS", default=[])
# Private, loopback and link-local addresses are refused unless this is on (targets on an internal network).
OUTBOUND_ALLOW_PRIVATE_NETWORKS = env.bool("OUTBOUND_ALLOW_PRIVATE_NETWORKS", default=False)
# A PEM file of the CAs that HTTPS targets are verified against; empty means the system's trust store.
OUTBOUND_CA_BUNDLE = env.str("OUTBOUND_CA_BUNDLE", default="")
# The commands the "command" executor may run, as JSON: {"name": ["argv0", "--flag", "{placeholder}"]}.
RDM_ALLOWED_COMMANDS = env.json("RDM_ALLOWED_COMMANDS", default={})
if not isinstance(RDM_ALLOWED_COMMANDS, dict) or not all(
    isinstance(argv, list) and argv and all(isinstance(part, str) for part in argv)
    for argv in RDM_ALLOWED_COMMANDS.values()
):
    raise ImproperlyConfigured("RDM_ALLOWED_COMMANDS must be a JSON object of name -> non-empty list of strings")
# Secrets at rest (rdm_site/crypto.py): a Fernet key, and the keys it replaced (comma-separated) while
# stored secrets are re-encrypted. Development derives a key from SECRET_KEY when it is unset.
RDM_SECRETS_KEY = env.str("RDM_SECRETS_KEY", default="")
RDM_SECRETS_KEY_PREVIOUS = env.list("RDM_SECRETS_KEY_PREVIOUS", default=[])

# --- e-mail -----------------------------------------------------------------------------------
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="rdm@localhost")

# --- logging ----------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if PRODUCTION else "text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "rdm_site.middleware.RequestIdLogFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}


def _is_fernet_key(value: str) -> bool:
    try:
        Fernet(value)
    except ValueError:
        return False
    return True


def _production_problems() -> list[str]:
    """Every unsafe setting at once, so an operator fixes them in one go."""
    problems = []
    if DEBUG:
        problems.append("DEBUG must be off")
    if SECRET_KEY == DEVELOPMENT_SECRET_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        problems.append("SECRET_KEY must be set to a random value of at least 50 characters")
    if not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS:
        problems.append("ALLOWED_HOSTS must name the site's host names")
    if USING_EMBEDDED_POSTGRES:
        problems.append("DATABASE_URL must point to the production PostgreSQL")
    if USING_EMBEDDED_REDIS:
        problems.append("REDIS_URL must point to the production Redis")
    if not METRICS_TOKEN:
        problems.append("METRICS_TOKEN must be set so that /metrics is not open to everyone")
    if not _is_fernet_key(RDM_SECRETS_KEY) or not all(map(_is_fernet_key, RDM_SECRETS_KEY_PREVIOUS)):
        problems.append("RDM_SECRETS_KEY (and every RDM_SECRETS_KEY_PREVIOUS) must be a Fernet key")
    if not (SESSION_COOKIE_SECURE and CSRF_COOKIE_SECURE):
        problems.append("SESSION_COOKIE_SECURE and CSRF_COOKIE_SECURE must stay on")
    return problems


if PRODUCTION and (problems := _production_problems()):
    raise ImproperlyConfigured("RDM refuses to start in production mode: " + "; ".join(problems) + ".")
