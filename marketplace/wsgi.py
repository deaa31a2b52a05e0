"""The web process's entry point (gunicorn ``marketplace.wsgi``)."""

import os
import sys

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")

if all(database["ENGINE"] != "django.db.backends.postgresql" for database in settings.DATABASES.values()):
    # DRF imports django.contrib.postgres just in case (rest_framework.compat), which loads psycopg and its
    # bundled libpq: 10 MB in every web worker of a SQLite deployment, which never uses them. Marking the
    # drivers absent makes that import fail the way DRF expects when they are not installed.
    sys.modules.setdefault("psycopg", None)  # type: ignore[arg-type]
    sys.modules.setdefault("psycopg2", None)  # type: ignore[arg-type]

application = get_wsgi_application()
