"""Production settings: PostgreSQL, Redis, S3, signing key from the environment; refuses to start without them.

Required: ``SECRET_KEY`` (50+ random characters), ``ALLOWED_HOSTS``, ``DATABASE_URL`` (postgres://),
``CELERY_BROKER_URL`` (redis:// or amqp://), ``SYNTHEX_S3_BUCKET``, ``SYNTHEX_SIGNING_KEY_PEM``. Every host
(web, workers, beat) runs with the same values; nothing is kept on a host's disk but temporary files.
See docs/operations.md.
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from marketplace.settings.base import *  # noqa: F403
from marketplace.settings.base import (
    CELERY_BROKER_URL,
    DATABASES,
    STORAGES,
    SYNTHEX_CSP,
    SYNTHEX_SDV_LICENCE,
    SYNTHEX_SIGNING_KEY_PEM,
)
from marketplace.settings.env import env_bool, env_int, env_list, env_str

SECRET_KEY = env_str("SECRET_KEY", required=True)
if SECRET_KEY.startswith("synthex-development") or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
    raise ImproperlyConfigured("SECRET_KEY must be a random string of at least 50 characters.")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is required in production (comma-separated host names).")
DEBUG = False

# PostgreSQL through psycopg 3: the ledger's guards are PostgreSQL triggers, and several hosts share it.
env_str("DATABASE_URL", required=True)
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must be a postgres:// URL in production.")
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 60, minimum=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env_int("DB_CONNECT_TIMEOUT", 5, minimum=1))

# Celery on a networked broker (the embedded filesystem broker only reaches one host's workers).
env_str("CELERY_BROKER_URL", required=True)
if not CELERY_BROKER_URL.startswith(("redis://", "rediss://", "amqp://", "amqps://")):
    raise ImproperlyConfigured("CELERY_BROKER_URL must be a redis:// or amqp:// URL in production.")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else None
)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers an unacknowledged (acks_late) message after the visibility timeout; it must exceed the
# longest hard time limit (certification: 1800 s), or a long task would run twice while still running.
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 7200, minimum=60)}
    if CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
    else {}
)
# Public pages are cached for anonymous visitors and invalidated by a version key that any host may bump:
# the cache must be shared by every web and worker host, so it lives in Redis.
_CACHE_URL = env_str("SYNTHEX_CACHE_URL") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else ""
)
if not _CACHE_URL:
    raise ImproperlyConfigured("Set SYNTHEX_CACHE_URL (redis://…) for the page cache shared by all hosts.")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _CACHE_URL},
    "pages": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _CACHE_URL},
    "tokens": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": _CACHE_URL,
        "KEY_PREFIX": "tokens",
    },
}

CELERY_WORKER_MAX_MEMORY_PER_CHILD = env_int(
    "CELERY_WORKER_MAX_MEMORY_PER_CHILD_KB", 4_000_000, minimum=100_000
)

# Files on S3 (product files under files/, reference data under reference/); static files from WhiteNoise.
if not env_str("SYNTHEX_S3_BUCKET"):
    raise ImproperlyConfigured(
        "SYNTHEX_S3_BUCKET is required in production (files are shared by every host)."
    )
STORAGES["staticfiles"] = {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(STATIC_ROOT)))  # noqa: F405

# The signing key comes from the secret store: a key made on one host's disk would differ per host.
if not SYNTHEX_SIGNING_KEY_PEM:
    raise ImproperlyConfigured(
        "SYNTHEX_SIGNING_KEY_PEM is required in production (the Ed25519 private key, PEM)."
    )

# HTTPS behind a proxy that sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
# The load balancer's probes and Prometheus talk plain HTTP to the web port.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Stripe.js (the card form on the order page) is served by Stripe and opens its own frames and calls.
SYNTHEX_CSP = {
    **SYNTHEX_CSP,
    "script-src": [*SYNTHEX_CSP["script-src"], "https://js.stripe.com"],
    "frame-src": ["https://js.stripe.com", "https://hooks.stripe.com"],
    "connect-src": [*SYNTHEX_CSP["connect-src"], "https://api.stripe.com"],
}

# drf-spectacular's deploy check reports OpenAPI schema gaps (views without serializers), not deployment
# risks; `manage.py spectacular --validate` shows them during development.
SPECTACULAR_SETTINGS = {**SPECTACULAR_SETTINGS, "ENABLE_DJANGO_DEPLOY_CHECK": False}  # noqa: F405

# Hosted generators: SDV's Business Source License 1.1 excludes offering it to third parties as a service, so
# production hosts the permissive engines only, unless the operator names an SDV commercial licence.
SYNTHEX_HOSTED_ENGINES = env_list(
    "SYNTHEX_HOSTED_ENGINES",
    ["synthex_tree", "synthex_mst", *(["sdv"] if SYNTHEX_SDV_LICENCE else [])],
)
if "sdv" in SYNTHEX_HOSTED_ENGINES and not SYNTHEX_SDV_LICENCE:
    raise ImproperlyConfigured(
        "SYNTHEX_HOSTED_ENGINES includes sdv (Business Source License 1.1): set SYNTHEX_SDV_LICENCE to the "
        "reference of your SDV commercial licence, or host the permissive engines only."
    )

# One JSON object per log line, for the log shipper.
LOG_FORMAT = env_str("LOG_FORMAT", "json")
LOGGING = {  # noqa: F405
    **LOGGING,  # noqa: F405
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
}
