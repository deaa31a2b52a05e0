"""Settings shared by every Synthex environment. Everything configurable comes from the environment."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from marketplace.settings.env import env_bool, env_int, env_list, env_str
from marketplace.settings.instance import instance_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("SYNTHEX_VAR_DIR", str(BASE_DIR / "var"))).resolve()

# Every process (web, worker, commands, tests) needs these folders; creating them here is cheap and means
# no start-up order can leave one missing.
for _sub in (
    "tmp",
    "files",
    "reference",
    "staticfiles",
    "broker",
):
    (VAR_DIR / _sub).mkdir(parents=True, exist_ok=True)

# "pages": whole public pages for anonymous visitors (marketplace/core/page_cache.py). A file cache under
# the var dir is shared by every process of one instance; production points it at Redis.
CACHES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "pages": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": env_str("SYNTHEX_CACHE_URL")}
        if env_str("SYNTHEX_CACHE_URL")
        else {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache" / "pages"),
            "OPTIONS": {"MAX_ENTRIES": 5000},
        }
    ),
    # "tokens": API token lookups (marketplace/accounts/authentication.py), shared by every process like
    # "pages" so that revoking a token in one process reaches all of them.
    "tokens": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env_str("SYNTHEX_CACHE_URL"),
            "KEY_PREFIX": "tokens",
        }
        if env_str("SYNTHEX_CACHE_URL")
        else {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache" / "tokens"),
            "OPTIONS": {"MAX_ENTRIES": 5000},
        }
    ),
}
SYNTHEX_PAGE_CACHE_SECONDS = env_int("SYNTHEX_PAGE_CACHE_SECONDS", 300, minimum=1)
# How long a valid API token's lookup is reused without a query (0: every request reads the database).
SYNTHEX_TOKEN_CACHE_SECONDS = env_int("SYNTHEX_TOKEN_CACHE_SECONDS", 60, minimum=0)

# No public default: without SECRET_KEY in the environment each instance makes its own under its var dir.
SECRET_KEY = env_str("SECRET_KEY") or instance_secret_key(VAR_DIR)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
SITE_URL = env_str("SYNTHEX_SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "marketplace.core",
    "marketplace.accounts",
    "marketplace.catalog",
    "marketplace.certification",
    "marketplace.generators",
    "exchange.ledger",
    "exchange.delivery",
    "exchange.orders",
    "exchange.downloads",
]

MIDDLEWARE = [
    "marketplace.core.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "marketplace.core.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "marketplace.core.error_pages.NotFoundPageMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "marketplace.urls"
WSGI_APPLICATION = "marketplace.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "catalog:home"
LOGOUT_REDIRECT_URL = "catalog:home"

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
                "marketplace.core.context_processors.site",
            ],
        },
    },
]

_SQLITE_PATH = VAR_DIR / "db.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{_SQLITE_PATH}"), conn_max_age=env_int("DB_CONN_MAX_AGE", 0)
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + IMMEDIATE transactions: readers never block the writer, and two writers queue on the lock
    # instead of failing with "database is locked" in the middle of a transaction.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"

# Storage: public product files ("default") and private reference data ("reference") are kept apart;
# reference rows are only ever read by certification and by their owner.
S3_BUCKET = env_str("SYNTHEX_S3_BUCKET")
if S3_BUCKET:
    _s3_options = {
        "bucket_name": S3_BUCKET,
        "endpoint_url": env_str("SYNTHEX_S3_ENDPOINT_URL") or None,
        "access_key": env_str("AWS_ACCESS_KEY_ID") or None,
        "secret_key": env_str("AWS_SECRET_ACCESS_KEY") or None,
        "region_name": env_str("AWS_S3_REGION_NAME", "us-east-1"),
        "signature_version": "s3v4",
        "addressing_style": env_str("SYNTHEX_S3_ADDRESSING_STYLE", "path"),
        "file_overwrite": False,
        "querystring_auth": True,
        "querystring_expire": env_int("SYNTHEX_S3_URL_EXPIRE_SECONDS", 600, minimum=1),
    }
    _S3_ORIGIN = env_str("SYNTHEX_S3_ENDPOINT_URL") or (
        f"https://{S3_BUCKET}.s3.{_s3_options['region_name']}.amazonaws.com"
        if _s3_options["addressing_style"] == "virtual"
        else f"https://s3.{_s3_options['region_name']}.amazonaws.com"
    )
    STORAGES = {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {**_s3_options, "location": "files"},
        },
        "reference": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {**_s3_options, "location": "reference"},
        },
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    }
else:
    STORAGES = {
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": VAR_DIR / "files"},
        },
        "reference": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": VAR_DIR / "reference"},
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
MEDIA_ROOT = VAR_DIR / "files"

# Uploads go to disk in chunks (never whole into memory) and are hashed while they stream.
FILE_UPLOAD_TEMP_DIR = VAR_DIR / "tmp"
FILE_UPLOAD_MAX_MEMORY_SIZE = 0
FILE_UPLOAD_HANDLERS = ["marketplace.catalog.uploads.HashingUploadHandler"]
SYNTHEX_MAX_UPLOAD_BYTES = env_int("SYNTHEX_MAX_UPLOAD_BYTES", 2 * 1024**3, minimum=1)
# Upload sessions untouched this long and never attached are deleted with their bytes (hourly sweep).
SYNTHEX_UPLOAD_SESSION_HOURS = env_int("SYNTHEX_UPLOAD_SESSION_HOURS", 48, minimum=1)
# Per provider organization: unfinished (not yet attached) upload sessions and their declared bytes.
SYNTHEX_UPLOAD_MAX_OPEN_SESSIONS = env_int("SYNTHEX_UPLOAD_MAX_OPEN_SESSIONS", 20, minimum=1)
SYNTHEX_UPLOAD_MAX_OPEN_BYTES = env_int("SYNTHEX_UPLOAD_MAX_OPEN_BYTES", 20 * 1024**3, minimum=1)
# On S3, upload sessions send their parts straight to the store (presigned multipart part URLs).
SYNTHEX_UPLOAD_DIRECT_TO_STORE = env_bool("SYNTHEX_UPLOAD_DIRECT_TO_STORE", True)
SYNTHEX_UPLOAD_PART_URL_SECONDS = env_int("SYNTHEX_UPLOAD_PART_URL_SECONDS", 3600, minimum=60)
# Checking one uploaded table (parse, schema, statistics) stops with a clear error past this many seconds.
SYNTHEX_VALIDATION_SECONDS = env_int("SYNTHEX_VALIDATION_SECONDS", 900, minimum=1)
DATA_UPLOAD_MAX_NUMBER_FILES = 20

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Synthex <no-reply@synthex.local>")

# Download links and downloads per user (per IP when anonymous): "N/second|minute|hour|day".
SYNTHEX_DOWNLOAD_RATE = env_str("SYNTHEX_DOWNLOAD_RATE", "30/min")
if not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", SYNTHEX_DOWNLOAD_RATE):
    raise ImproperlyConfigured(
        "SYNTHEX_DOWNLOAD_RATE must look like 30/min (a count per second, minute, hour or day)."
    )

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "marketplace.accounts.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "marketplace.core.api.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"downloads": SYNTHEX_DOWNLOAD_RATE},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Synthex API",
    "DESCRIPTION": "Synthetic-data exchange: products, versions, certificates, orders, ledger.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Celery: an embedded broker by default (one SQLite file, no server to run; marketplace/core/broker.py says
# why it, not kombu's filesystem:// or sqla+ transports); Redis or RabbitMQ when CELERY_BROKER_URL says so.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", f"synthex+sqlite:///{VAR_DIR / 'broker' / 'broker.sqlite3'}")
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "polling_interval": 0.05,
        # A message taken by a process still alive after this long is delivered again: above every task's
        # hard time limit (fit: 3600 s), so a long task is never run twice while it still runs.
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 7200, minimum=60),
    }
    if CELERY_BROKER_URL.startswith("synthex+sqlite://")
    else {}
)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ROUTES = {
    "*.certify_*": {"queue": "certify"},
    "*.fit_*": {"queue": "fit"},
    "*.sample_*": {"queue": "sample"},
}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 1800, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 2100, minimum=1)

# Only tasks that are safe to run twice set acks_late=True themselves (a crash mid-task redelivers them);
# with it, a worker lost mid-task (OOM kill) also puts the message back instead of dropping it.
CELERY_TASK_ACKS_LATE = False
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_SEND_TASK_EVENTS = False
# Jobs (certify, fit, validate, sample) hold a lease renewed by a heartbeat every quarter of it; a job whose
# heartbeat is older than the lease lost its worker and is queued again by the sweep (every
# SYNTHEX_SWEEP_SECONDS), at most SYNTHEX_JOB_MAX_ATTEMPTS times in all (a job that kills its worker each time
# must end failed, not loop).
SYNTHEX_JOB_LEASE_SECONDS = env_int("SYNTHEX_JOB_LEASE_SECONDS", 120, minimum=4)
SYNTHEX_JOB_MAX_ATTEMPTS = env_int("SYNTHEX_JOB_MAX_ATTEMPTS", 3, minimum=1)
SYNTHEX_SWEEP_SECONDS = env_int("SYNTHEX_SWEEP_SECONDS", 60, minimum=1)

# Generator engines this deployment runs for others (hosted fitting and sampling): sdv (BSL 1.1: hosting it
# for third parties needs a commercial licence, named by SYNTHEX_SDV_LICENCE), synthex_tree, synthex_mst.
# Development hosts all three; production defaults to the permissive ones (settings/production.py).
SYNTHEX_GENERATOR_ENGINES = ("synthex_tree", "synthex_mst", "sdv")
SYNTHEX_SDV_LICENCE = env_str("SYNTHEX_SDV_LICENCE", "")
SYNTHEX_HOSTED_ENGINES = env_list("SYNTHEX_HOSTED_ENGINES", list(SYNTHEX_GENERATOR_ENGINES))
if unknown_engines := sorted(set(SYNTHEX_HOSTED_ENGINES) - set(SYNTHEX_GENERATOR_ENGINES)):
    raise ImproperlyConfigured(f"SYNTHEX_HOSTED_ENGINES names unknown engines: {', '.join(unknown_engines)}.")
# The largest ε one DP fit may spend; each product declares its own total on top.
SYNTHEX_DP_MAX_EPSILON = float(env_int("SYNTHEX_DP_MAX_EPSILON", 20, minimum=1))
SYNTHEX_EPSILON_LEDGER_HOOK = "exchange.ledger.privacy.record_privacy_event"
# The sandbox that runs uploaded generator files (marketplace.generators.sandbox.SandboxLimits has the same
# defaults): wall-clock and CPU seconds per run, address space, memory (cgroup), each file written, what the
# run leaves on disk, the tmpfs job folder, processes.
SYNTHEX_SANDBOX_WALL_SECONDS = env_int("SYNTHEX_SANDBOX_WALL_SECONDS", 900, minimum=1)
SYNTHEX_SANDBOX_CPU_SECONDS = env_int("SYNTHEX_SANDBOX_CPU_SECONDS", 1800, minimum=1)
SYNTHEX_SANDBOX_AS_BYTES = env_int("SYNTHEX_SANDBOX_AS_BYTES", 8 * 1024**3, minimum=1)
SYNTHEX_SANDBOX_MEMORY_BYTES = env_int("SYNTHEX_SANDBOX_MEMORY_BYTES", 4 * 1024**3, minimum=1)
SYNTHEX_SANDBOX_FILE_BYTES = env_int("SYNTHEX_SANDBOX_FILE_BYTES", 4 * 1024**3, minimum=1)
SYNTHEX_SANDBOX_DISK_BYTES = env_int("SYNTHEX_SANDBOX_DISK_BYTES", 4 * 1024**3, minimum=1)
SYNTHEX_SANDBOX_SCRATCH_BYTES = env_int("SYNTHEX_SANDBOX_SCRATCH_BYTES", 256 * 1024**2, minimum=1)
SYNTHEX_SANDBOX_PROCESSES = env_int("SYNTHEX_SANDBOX_PROCESSES", 64, minimum=1)

# Operations: /metrics (Bearer token, or loopback callers without one) and the Content-Security-Policy.
SYNTHEX_METRICS_TOKEN = env_str("SYNTHEX_METRICS_TOKEN")
# Pages keep all script in static files, so script-src has no 'unsafe-inline'. Style *attributes*
# (style="...") are allowed, style *elements* and foreign style sheets are not: templates set a few widths
# and margins inline, which can neither run code nor load anything (url() loads obey img-src/font-src).
SYNTHEX_CSP: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "style-src-attr": ["'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    # The upload page PUTs parts straight to the object store when files live on S3.
    "connect-src": ["'self'", *([_S3_ORIGIN] if S3_BUCKET else [])],
    "frame-src": ["'none'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}

# Ledger: the origin line of signed tree heads, and how often heads are published (entries / minutes).
SYNTHEX_LEDGER_ORIGIN = env_str("SYNTHEX_LEDGER_ORIGIN", "synthex.local/ledger")
SYNTHEX_LEDGER_HEAD_EVERY_ENTRIES = env_int("SYNTHEX_LEDGER_HEAD_EVERY_ENTRIES", 100, minimum=1)
SYNTHEX_LEDGER_HEAD_EVERY_MINUTES = env_int("SYNTHEX_LEDGER_HEAD_EVERY_MINUTES", 10, minimum=1)
# Downloads: signed links expire after this many seconds; S3 presigned URLs after the checks live shorter.
SYNTHEX_DOWNLOAD_LINK_SECONDS = env_int("SYNTHEX_DOWNLOAD_LINK_SECONDS", 900, minimum=1)
SYNTHEX_DOWNLOAD_PRESIGN_SECONDS = env_int("SYNTHEX_DOWNLOAD_PRESIGN_SECONDS", 60, minimum=1)
# Full downloads allowed per file under a license code, e.g. {"research": 5}; a license not named is unlimited.
SYNTHEX_DOWNLOAD_LIMITS: dict[str, int] = {}
# How certificate verification finds a buyer's delivered copy by its SHA-256 (marketplace.certification.delivered).
SYNTHEX_RECEIPT_FINDER = "exchange.downloads.verification.receipt_for_sha256"

# Tables with more rows are certified on a bounded uniform sample (stated in the certificate).
SYNTHEX_CERTIFY_MAX_ROWS = env_int("SYNTHEX_CERTIFY_MAX_ROWS", 200_000, minimum=1000)
# Wall-clock budget of the shadow-model attack run after a platform fit (0 turns it off).
SYNTHEX_SHADOW_BUDGET_SECONDS = env_int("SYNTHEX_SHADOW_BUDGET_SECONDS", 150, minimum=0)

SYNTHEX_DEMO_PASSWORD = env_str("SYNTHEX_DEMO_PASSWORD", "synthex-demo")
SYNTHEX_SIGNING_KEY_PEM = env_str("SYNTHEX_SIGNING_KEY_PEM")
SYNTHEX_KEYS_DIR = VAR_DIR / "keys"

# Payments: Stripe with STRIPE_SECRET_KEY; without it, local mode against localstripe at STRIPE_API_BASE.
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_PUBLISHABLE_KEY = env_str("STRIPE_PUBLISHABLE_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
STRIPE_API_BASE = env_str("STRIPE_API_BASE", "http://127.0.0.1:8420")
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env_int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", 300, minimum=1)
STRIPE_NETWORK_RETRIES = env_int("STRIPE_NETWORK_RETRIES", 2, minimum=0)
try:
    SYNTHEX_PLATFORM_FEE_RATE = Decimal(env_str("SYNTHEX_PLATFORM_FEE_RATE", "0.20"))
except InvalidOperation:
    raise ImproperlyConfigured("SYNTHEX_PLATFORM_FEE_RATE must be a decimal such as 0.20.") from None
if not (SYNTHEX_PLATFORM_FEE_RATE.is_finite() and 0 <= SYNTHEX_PLATFORM_FEE_RATE <= 1):
    raise ImproperlyConfigured("SYNTHEX_PLATFORM_FEE_RATE must lie between 0 and 1.")
SYNTHEX_REFUND_WINDOW_DAYS = env_int("SYNTHEX_REFUND_WINDOW_DAYS", 14, minimum=0)
SYNTHEX_PENDING_ORDER_HOURS = env_int("SYNTHEX_PENDING_ORDER_HOURS", 24, minimum=1)
SYNTHEX_PAYOUT_EVERY_DAYS = env_int("SYNTHEX_PAYOUT_EVERY_DAYS", 7, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "publish-tree-head": {
        "task": "exchange.ledger.tasks.publish_tree_head_task",
        "schedule": 60.0 * SYNTHEX_LEDGER_HEAD_EVERY_MINUTES,
    },
    "sweep-jobs": {
        "task": "marketplace.generators.tasks.sweep_jobs_task",
        "schedule": float(SYNTHEX_SWEEP_SECONDS),
    },
    "sweep-validations": {
        "task": "marketplace.catalog.tasks.sweep_validations_task",
        "schedule": float(SYNTHEX_SWEEP_SECONDS),
    },
    "sweep-draws": {
        "task": "marketplace.generators.tasks.sweep_draws_task",
        "schedule": float(SYNTHEX_SWEEP_SECONDS),
    },
    "sweep-uploads": {"task": "marketplace.catalog.tasks.sweep_uploads_task", "schedule": 3600.0},
    "repair-payment-invariants": {
        "task": "exchange.orders.tasks.repair_payment_invariants_task",
        "schedule": 300.0,
    },
    "run-payouts": {
        "task": "exchange.orders.tasks.run_payouts_task",
        "schedule": SYNTHEX_PAYOUT_EVERY_DAYS * 86400.0,
    },
}

LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured("LOG_FORMAT must be plain or json.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "marketplace.core.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # One line per request from MetricsMiddleware; gunicorn's access log says the same without timing.
        "synthex.request": {"level": env_str("REQUEST_LOG_LEVEL", "WARNING")},
        # SDV and its libraries log every fit and sample at INFO; keep worker logs readable.
        **{
            name: {"level": "WARNING"}
            for name in ("sdv", "copulas", "rdt", "ctgan", "SingleTableSynthesizer", "MultiTableSynthesizer")
        },
    },
}
