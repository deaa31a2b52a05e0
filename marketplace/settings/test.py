"""Settings for the test suite: a throw-away var dir per run, fast hashing, tasks run eagerly unless a
test starts a real worker."""

import os
import tempfile

os.environ.setdefault("SYNTHEX_VAR_DIR", tempfile.mkdtemp(prefix="synthex-test-"))
# Under pytest-xdist every worker gets a var dir of its own (the controller's is inherited through the
# environment); processes a test starts inherit the worker's, so they share its files as they should.
_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker and os.environ.get("SYNTHEX_TEST_VAR_WORKER") != _worker:
    os.environ["SYNTHEX_VAR_DIR"] = tempfile.mkdtemp(prefix=f"synthex-test-{_worker}-")
    os.environ["SYNTHEX_TEST_VAR_WORKER"] = _worker
os.environ.setdefault("DEBUG", "0")

from marketplace.settings.base import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "default"},
    "pages": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "pages"},
    "tokens": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tokens"},
}
# Token lookups are read from the database every time (tests change users through the ORM); tests of the
# token cache turn it on.
SYNTHEX_TOKEN_CACHE_SECONDS = 0
# The shadow-model attack refits a synthesizer dozens of times; tests that want it turn it on.
SYNTHEX_SHADOW_BUDGET_SECONDS = 0
