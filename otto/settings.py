"""Otto settings: every value comes from the environment (see docs/env.md).

Defaults are safe for production; `make run` opts into development explicitly.
"""

import ipaddress
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

from otto.env import (
    env_bool,
    env_choice,
    env_decimal,
    env_durations,
    env_float,
    env_int,
    env_list,
    env_mapping,
    env_rate,
    env_secret,
    env_str,
)
from otto.queues import DEFAULT_CLUSTER, Queue

BASE_DIR = Path(__file__).resolve().parent.parent

# Real environment variables win over the file.
load_dotenv(BASE_DIR / ".env", override=False)

ENVIRONMENT = env_choice("ENVIRONMENT", ("development", "staging", "production"), "production")
DEVELOPMENT = ENVIRONMENT == "development"
DEBUG = DEVELOPMENT

# Only development falls back to a placeholder; the deploy checks reject it anywhere else.
DEV_SECRET_KEY = "insecure-development-key-do-not-deploy"  # noqa: S105 - a known placeholder
SECRET_KEY = env_secret("SECRET_KEY", DEV_SECRET_KEY if DEVELOPMENT else None)
if not SECRET_KEY:
    raise ImproperlyConfigured(f"SECRET_KEY must be set when ENVIRONMENT={ENVIRONMENT}.")

PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://localhost:8080").rstrip("/")
ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS",
    ["*"] if DEVELOPMENT else [urlsplit(PUBLIC_BASE_URL).hostname or "localhost"],
)
ALLOWED_ORIGINS = env_list("ALLOWED_ORIGINS", ["http://localhost:3000"] if DEVELOPMENT else [])
CORS_ALLOWED_ORIGINS = [origin for origin in ALLOWED_ORIGINS if origin != "*"]
CORS_ALLOW_ALL_ORIGINS = "*" in ALLOWED_ORIGINS
CSRF_TRUSTED_ORIGINS = [PUBLIC_BASE_URL, *CORS_ALLOWED_ORIGINS]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    # Full-text search on calls (SearchVectorField, GIN); harmless on the SQLite default.
    "django.contrib.postgres",
    "corsheaders",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "otto",
    "calls",
    "analysis",
    "appointments",
    "messaging",
    "integrations",
    # Its management commands (sandbox, sandbox_calls, sandbox_sms, sandbox_token) are
    # dev and test tools; nothing in production imports the sandbox.
    "integrations.sandbox",
]

MIDDLEWARE = [
    "otto.middleware.MetricsMiddleware",
    "otto.middleware.RequestIdMiddleware",
    # Binds the request for otto.audit.record (client address, user agent).
    "otto.audit.AuditContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# Provider webhooks (integrations/urls.py) go through a lean chain (otto/handlers.py): a
# delivery is verified by its signature and answered in JSON, so it needs no session,
# CSRF, user, messages, CORS or framing header. It keeps its metrics, its request id, the
# security headers and CommonMiddleware's ALLOWED_HOSTS check (docs/performance.md).
WEBHOOK_PATH_PREFIXES = ("/callrail/", "/webhooks/", "/sms/")
WEBHOOK_MIDDLEWARE = [
    "otto.middleware.MetricsMiddleware",
    "otto.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "otto.urls"
WSGI_APPLICATION = "otto.wsgi.application"
AUTH_USER_MODEL = "otto.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database --------------------------------------------------------------------------

VAR_DIR = BASE_DIR / "var"
DATABASE_URL = env_str("DATABASE_URL")
# Connections per process in a psycopg pool (PostgreSQL only); 0: no pool. otto/web.py
# sets it to the web worker's threads. Other processes keep persistent connections checked
# before each use: qcluster forks its workers, and a pool's threads and sockets must not
# cross a fork.
DATABASE_POOL_SIZE = env_int("DATABASE_POOL_SIZE", 0, minimum=0)
# Seconds PostgreSQL lets one statement run before it cancels it; 0: no limit. otto/web.py
# sets it for the web process (a runaway query must not hold a request thread and its
# connection for ever); the qcluster's rollup rebuilds and backfills need no such limit.
DATABASE_STATEMENT_TIMEOUT = env_int("DATABASE_STATEMENT_TIMEOUT", 0, minimum=0)
if DATABASE_URL:
    try:
        DATABASES = {
            "default": dj_database_url.parse(
                DATABASE_URL, conn_max_age=600, conn_health_checks=True
            )
        }
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is invalid: {exc}") from None
    if DATABASE_POOL_SIZE and DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # A request borrows a pooled connection and gives it back at its end, so nothing
        # runs the per-request `SELECT 1` of CONN_HEALTH_CHECKS (a round trip before every
        # request; docs/performance.md). A connection that broke while idle fails the one
        # request that next uses it (a 500 the provider retries), and the pool drops it.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": DATABASE_POOL_SIZE,
            # A request waits this long for a free connection, then fails (500).
            "timeout": 10,
        }
    if DATABASE_STATEMENT_TIMEOUT and DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # A libpq start-up option, so every connection (pooled or not) has it from its
        # first statement; a statement past it fails with QueryCanceled (otto/errors.py).
        options = DATABASES["default"].setdefault("OPTIONS", {})
        limit = f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT * 1000}"
        options["options"] = f"{options['options']} {limit}" if options.get("options") else limit
else:
    # The embedded default serves web, worker and sandbox from one file. Several processes
    # can share SQLite only with WAL, IMMEDIATE transactions and a busy timeout; without
    # them concurrent writes fail with "database is locked".
    VAR_DIR.mkdir(exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "otto.sqlite3"),
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
USING_SQLITE = DATABASES["default"]["ENGINE"].endswith("sqlite3")

# --- Redis, cache, broker --------------------------------------------------------------

UPSTASH_REDIS_URL = env_str("UPSTASH_REDIS_URL")
REDIS_URL = env_str("REDIS_URL") or UPSTASH_REDIS_URL


def _cache_redis_url(url: str) -> str:
    """The broker's URL on the next DB index, so clearing the cache never drops tasks.

    Upstash serves DB 0 only, so there the cache shares it under a key prefix.
    """
    parts = urlsplit(url)
    if url == UPSTASH_REDIS_URL and not env_str("REDIS_URL"):
        return url
    try:
        db = int(parts.path.lstrip("/") or 0)
    except ValueError:
        raise ImproperlyConfigured(
            f"REDIS_URL has an invalid database index: {parts.path}"
        ) from None
    return urlunsplit(parts._replace(path=f"/{db + 1}"))


if REDIS_URL:
    if urlsplit(REDIS_URL).scheme not in ("redis", "rediss"):
        raise ImproperlyConfigured("REDIS_URL must start with redis:// or rediss://.")
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _cache_redis_url(REDIS_URL),
            "KEY_PREFIX": "otto-cache",
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    # django-q2 keeps cluster stats in the cache when the broker is not Redis, and
    # /health/workers reads them from the web process: the cache must be shared.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Django-Q2 -------------------------------------------------------------------------

_routes = env_mapping("Q_ROUTES", keys=list(Queue))
QUEUE_ROUTES = {queue: _routes.get(queue, DEFAULT_CLUSTER) for queue in Queue}
for _cluster in QUEUE_ROUTES.values():
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,39}", _cluster):
        raise ImproperlyConfigured(f"Q_ROUTES names an invalid cluster {_cluster!r}.")

TASK_SYNC = env_bool("TASK_SYNC", False)
Q_WORKERS = env_int("Q_WORKERS", 2, minimum=1)
# A task may run this long before the cluster kills it; the pipeline's own stage
# deadlines (reaper) are longer, so the reaper never races a task that is still alive.
Q_TASK_TIMEOUT = 600
# How many times a unit of work (a webhook event, later a call's stage) is tried before
# it is marked failed for ops to retry.
PIPELINE_MAX_ATTEMPTS = env_int("PIPELINE_MAX_ATTEMPTS", 5, minimum=1)
# How long a call may sit in an in-progress stage before the reaper presumes its worker
# dead and puts it back to wait (seconds; docs/operations.md "The reaper").
PIPELINE_STAGE_DEADLINES = env_durations(
    "PIPELINE_STAGE_DEADLINES",
    {
        "ingesting": Q_TASK_TIMEOUT + 60,
        "transcribing": 15 * 60,
        "analyzing": Q_TASK_TIMEOUT + 60,
        "applying": Q_TASK_TIMEOUT + 60,
    },
    keys=("ingesting", "transcribing", "analyzing", "applying"),
)
# The transcriber of a company that names none (per company: Company.transcriber).
TRANSCRIBER = env_choice("TRANSCRIBER", ("deepgram", "shunya"), "deepgram")
# The analyzer of a company that names none (per company: Company.analyzer).
ANALYZER = env_choice("ANALYZER", ("openai", "shunya"), "openai")
# The LLM spend (USD) a company's analyses may reach per calendar month in its own time
# zone before its calls wait (per company: Company.analysis_monthly_budget_usd); unset: none.
ANALYSIS_MONTHLY_BUDGET_USD = env_decimal("ANALYSIS_MONTHLY_BUDGET_USD")

Q_CLUSTER = {
    "name": DEFAULT_CLUSTER,
    "workers": Q_WORKERS,
    "timeout": Q_TASK_TIMEOUT,
    # A broker that acknowledges (ORM) hands a task out again after `retry`; it must
    # exceed `timeout`, or a slow task runs twice.
    "retry": Q_TASK_TIMEOUT + 60,
    # Retries are Otto's job (PostgreSQL state + reaper), not the broker's.
    "max_attempts": 1,
    "ack_failures": True,
    # Keep every result row and prune them with a schedule: save_limit > 0 deletes on
    # every task and costs 4x throughput (DESIGN.md §3).
    "save_limit": 0,
    "recycle": 5000,
    # KiB, compared with the worker's peak RSS (ru_maxrss), which counts the ~230 MB of
    # pages it shares with the sentinel it was forked from (its own share, PSS, is ~70 MB;
    # docs/performance.md). At 200 MB every worker was recycled after every task, paying
    # its imports and warm-up again each time; this recycles one that grew ~170 MB.
    "max_rss": 400_000,
    "catch_up": False,
    "sync": TASK_SYNC,
    "cache": "default",
    "label": "Task queue",
    "broker_class": "otto.brokers.RedisBroker" if REDIS_URL else "otto.brokers.OrmBroker",
    "ALT_CLUSTERS": {
        # Only the default cluster runs the scheduler (DESIGN.md §3).
        cluster: {"scheduler": False}
        for cluster in set(QUEUE_ROUTES.values()) - {DEFAULT_CLUSTER}
    },
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 0.5

# --- storage and static files ----------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = BASE_DIR / "media"
S3_BUCKET = env_str("S3_BUCKET")
# Values are backend options of any JSON type, not only the strings of the first entries.
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage",
    },
}
# Recordings are streamed into storage; a larger one fails its call instead of the worker.
RECORDING_MAX_BYTES = env_int("RECORDING_MAX_BYTES", 200 * 1024 * 1024, minimum=1)
# Lifetime of a recording link handed to a browser (S3 presigned or signed local URL).
RECORDING_URL_TTL_SECONDS = env_int("RECORDING_URL_TTL_SECONDS", 300, minimum=10)
# Tests and a fresh checkout run without collectstatic; fall back to unhashed names.
WHITENOISE_MANIFEST_STRICT = False
if S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "region_name": env_str("AWS_REGION", "us-east-1"),
            "endpoint_url": env_str("S3_ENDPOINT_URL") or None,
            "access_key": env_secret("AWS_ACCESS_KEY_ID"),
            "secret_key": env_secret("AWS_SECRET_ACCESS_KEY"),
            "default_acl": None,
            "file_overwrite": False,
            "querystring_expire": RECORDING_URL_TTL_SECONDS,
            # SigV4: the only scheme newer regions and KMS-encrypted buckets accept.
            "signature_version": "s3v4",
        },
    }

# --- providers -------------------------------------------------------------------------

# Base URLs are what each official SDK expects (DESIGN.md §5). With SANDBOX on, every one
# points at the local provider sandbox, and unset credentials get the sandbox's values.
CALLRAIL_BASE_URL = env_str("CALLRAIL_BASE_URL", "https://api.callrail.com/v3").rstrip("/")
CALLRAIL_API_KEY = env_secret("CALLRAIL_API_KEY")
CALLRAIL_ACCOUNT_ID = env_str("CALLRAIL_ACCOUNT_ID")
# CallRail tenancy (docs/webhooks.md, docs/env.md). The deployment's CALLRAIL_API_KEY reads
# only for the company with this slug, and only when it has no key of its own.
CALLRAIL_SINGLE_TENANT = env_str("CALLRAIL_SINGLE_TENANT")
# A delivery no tenant's key can verify: stored up to this size, at most this often per
# source IP, and purged after this many days (with failed events).
WEBHOOK_UNVERIFIED_MAX_BYTES = env_int("WEBHOOK_UNVERIFIED_MAX_BYTES", 65536, minimum=1024)
WEBHOOK_UNVERIFIED_RATE = env_rate("WEBHOOK_UNVERIFIED_RATE", "60/minute")
WEBHOOK_UNVERIFIED_RETENTION_DAYS = env_int("WEBHOOK_UNVERIFIED_RETENTION_DAYS", 7, minimum=1)
TWILIO_API_BASE_URL = env_str("TWILIO_API_BASE_URL", "https://api.twilio.com").rstrip("/")
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID")
TWILIO_AUTH_TOKEN = env_secret("TWILIO_AUTH_TOKEN")
TWILIO_FROM_NUMBER = env_str("TWILIO_FROM_NUMBER")
DEEPGRAM_API_BASE_URL = env_str("DEEPGRAM_API_BASE_URL", "https://api.deepgram.com").rstrip("/")
DEEPGRAM_API_KEY = env_secret("DEEPGRAM_API_KEY")
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL", "https://api.openai.com/v1").rstrip("/")
OPENAI_API_KEYS = env_list("OPENAI_API_KEYS") or [
    key for key in [env_secret("OPENAI_API_KEY")] if key
]
OPENAI_KEY_ROTATION_STRATEGY = env_choice(
    "OPENAI_KEY_ROTATION_STRATEGY", ("round_robin", "random", "least_used"), "round_robin"
)
OPENAI_MODEL = env_str("OPENAI_MODEL", "gpt-4.1-mini")
UWC_BASE_URL = env_str("UWC_BASE_URL").rstrip("/")
UWC_STAGING_BASE_URL = env_str("UWC_STAGING_BASE_URL").rstrip("/")
USE_UWC_STAGING = env_bool("USE_UWC_STAGING", False)
UWC_API_KEY = env_secret("UWC_API_KEY")
UWC_JWT_SECRET = env_secret("UWC_JWT_SECRET")
UWC_HMAC_SECRET = env_secret("UWC_HMAC_SECRET")
UWC_VERSION = env_str("UWC_VERSION", "v1")
BLAND_BASE_URL = env_str("BLAND_BASE_URL", "https://api.bland.ai").rstrip("/")
BLAND_API_KEY = env_secret("BLAND_API_KEY")
BLAND_WEBHOOK_SECRET = env_secret("BLAND_WEBHOOK_SECRET")
GOOGLE_MAPS_BASE_URL = env_str("GOOGLE_MAPS_BASE_URL", "https://maps.googleapis.com").rstrip("/")
GOOGLE_MAPS_API_KEY = env_secret("GOOGLE_MAPS_API_KEY")
CLERK_ISSUER = env_str("CLERK_ISSUER").rstrip("/")
CLERK_FRONTEND_ORIGIN = env_str("CLERK_FRONTEND_ORIGIN")
CLERK_API_URL = env_str("CLERK_API_URL", "https://api.clerk.com/v1").rstrip("/")
CLERK_SECRET_KEY = env_secret("CLERK_SECRET_KEY")
CLERK_WEBHOOK_SECRET = env_secret("CLERK_WEBHOOK_SECRET")

# Seconds. Every provider call has an explicit timeout; tests shorten them.
PROVIDER_TIMEOUTS = {
    "callrail": 20.0,
    "twilio": 15.0,
    "deepgram": 300.0,
    "openai": 120.0,
    "shunya": 30.0,
    "bland": 30.0,
    "google_maps": 10.0,
    "clerk": 5.0,
}

SANDBOX_URL = env_str("SANDBOX_URL").rstrip("/")
SANDBOX = env_bool("SANDBOX", False) or bool(SANDBOX_URL)
if SANDBOX:
    from integrations.sandbox.config import DEFAULT_URL, sandbox_settings

    SANDBOX_URL = SANDBOX_URL or DEFAULT_URL
    for _name, _value in sandbox_settings(SANDBOX_URL).items():
        # Base URLs always follow the sandbox; credentials only fill in what is unset.
        if _name.endswith(("_URL", "_ISSUER")) or not globals().get(_name):
            globals()[_name] = _value

# At-rest encryption of tenant secrets (MultiFernet): comma-separated Fernet keys, newest
# first, so a key can be rotated without re-encrypting everything at once.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEY")
if not FIELD_ENCRYPTION_KEYS:
    if not DEVELOPMENT:
        raise ImproperlyConfigured(
            f"FIELD_ENCRYPTION_KEY must be set when ENVIRONMENT={ENVIRONMENT}."
        )
    # Development only: a key derived from the (placeholder) SECRET_KEY.
    import base64
    import hashlib

    FIELD_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()
    ]
for _key in FIELD_ENCRYPTION_KEYS:
    try:
        Fernet(_key)
    except ValueError:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY must list Fernet keys (see docs/env.md)."
        ) from None

# Region assumed for phone numbers written without a country code.
DEFAULT_PHONE_REGION = env_str("DEFAULT_PHONE_REGION", "US")

# --- API -------------------------------------------------------------------------------

ENABLE_RATE_LIMITING = env_bool("ENABLE_RATE_LIMITING", True)
RATE_LIMIT_USER = env_rate("RATE_LIMIT_USER", "60/minute")
RATE_LIMIT_TENANT = env_rate("RATE_LIMIT_TENANT", "600/minute")
# Messaging (docs/messaging.md): manual sends per company, on top of the API limits.
RATE_LIMIT_SMS_SEND = env_rate("RATE_LIMIT_SMS_SEND", "120/minute")
IDEMPOTENCY_TTL_DAYS = env_int("IDEMPOTENCY_TTL_DAYS", 90, minimum=1)

REST_FRAMEWORK = {
    # Clerk first: its challenge makes a bad bearer token a 401 (docs/auth.md).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "otto.auth.ClerkJWTAuthentication",
        "otto.auth.TenantSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["otto.permissions.IsTenantMember"],
    "DEFAULT_PAGINATION_CLASS": "otto.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "otto.errors.api_exception_handler",
    # Both read ENABLE_RATE_LIMITING and the rates per request (otto/throttling.py).
    "DEFAULT_THROTTLE_CLASSES": [
        "otto.throttling.UserRateThrottle",
        "otto.throttling.TenantRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {"user": RATE_LIMIT_USER, "tenant": RATE_LIMIT_TENANT},
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Otto API",
    "DESCRIPTION": "Calls, leads, appointments and follow-ups for home-services teams.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Swagger UI served from our own static files: no CDN at run time.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Request and response shapes apart: a read-only field is not offered as input, a
    # write-only secret is not promised in a response.
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "status" or "type"; each choice set gets one stable name.
    "ENUM_NAME_OVERRIDES": {
        "LeadStatusEnum": "appointments.models.Lead.Status",
        "AppointmentStatusEnum": "appointments.models.Appointment.Status",
        "TaskStatusEnum": "appointments.models.Task.Status",
        "TaskTypeEnum": "appointments.models.Task.Type",
        "KeySignalTypeEnum": "appointments.models.KeySignal.Type",
        "ConsentChannelEnum": "messaging.models.ConsentEvent.Channel",
        "FollowUpChannelEnum": "messaging.models.FollowUp.Channel",
    },
    # Bodies are documented as JSON only: nested fields (business_hours, lists of numbers)
    # have no form encoding, so documenting forms promised shapes the API refuses.
    "PARSER_WHITELIST": ["rest_framework.parsers.JSONParser"],
    # The error responses each operation can answer, in the shared shape (otto/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "otto.schema.document_errors",
    ],
}

# --- security --------------------------------------------------------------------------

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Proxies (IPs or CIDRs) whose X-Forwarded-For is believed for the client address the audit
# log records (otto.audit.client_ip); from anyone else the header is ignored.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES")
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"TRUSTED_PROXIES: {_proxy!r} is not an IP address or CIDR network."
        ) from None
SECURE_SSL_REDIRECT = False  # TLS ends at the platform's edge; health checks speak HTTP
SESSION_COOKIE_SECURE = not DEVELOPMENT
CSRF_COOKIE_SECURE = not DEVELOPMENT
SECURE_HSTS_SECONDS = 0 if DEVELOPMENT else 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEVELOPMENT
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "otto.errors.csrf_failure"
SILENCED_SYSTEM_CHECKS = [
    # The platform terminates TLS and redirects; see SECURE_SSL_REDIRECT above.
    "security.W008",
    # HSTS preload binds the whole domain for months and cannot be undone quickly: the
    # domain's owner opts in at the edge, not this app.
    "security.W021",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- observability ---------------------------------------------------------------------

LOG_LEVEL = env_choice("LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), "INFO")
OBS_REDACT_PII = env_bool("OBS_REDACT_PII", True)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "otto.logging.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "otto.logging.OttoJsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s %(request_id)s",
            "redact_pii": OBS_REDACT_PII,
        }
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Replace Django's own console handler so each line is written once, as JSON.
        "django": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
        "django-q": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
        # Django already reports unhandled request errors through its own logger.
        "django.request": {"level": "ERROR"},
    },
}

SENTRY_DSN = env_secret("SENTRY_DSN")
# Bearer token GET /metrics requires; unset, the endpoint answers 404 (docs/operations.md).
METRICS_TOKEN = env_secret("METRICS_TOKEN")
# prometheus-client reads PROMETHEUS_MULTIPROC_DIR itself; every process of a host (web
# workers, qcluster workers) writes its counts there. It must exist before the first metric.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR")
if PROMETHEUS_MULTIPROC_DIR:
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
SENTRY_TRACES_SAMPLE_RATE = env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0, maximum=1.0)

if SENTRY_DSN:
    from otto.observability import init_sentry

    init_sentry(SENTRY_DSN, ENVIRONMENT, SENTRY_TRACES_SAMPLE_RATE)
