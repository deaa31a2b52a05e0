from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.files.storage import storages
from django.db import connection
from django.http import FileResponse, HttpRequest, JsonResponse
from django.views.decorators.cache import cache_control, never_cache

from marketplace.certification import keys

logger = logging.getLogger(__name__)


@cache_control(public=True, max_age=300)
def well_known_keys(request: HttpRequest) -> JsonResponse:
    """Every public key Synthex has signed with (retired ones included) — see DESIGN.md."""
    return JsonResponse(keys.keys_document())


@cache_control(public=True, max_age=86400)
def favicon(request: HttpRequest) -> FileResponse:
    """``/favicon.ico``, which browsers ask for on every site whatever the page's ``<link rel="icon">``."""
    return FileResponse(
        (settings.BASE_DIR / "static" / "favicon.ico").open("rb"), content_type="image/x-icon"
    )


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers (no dependency is checked, so a restart loop never follows an outage)."""
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_broker() -> None:
    from marketplace.celery import app

    with app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1, timeout=2)


def _check_storage() -> None:
    for alias in ("default", "reference"):
        storages[alias].exists("readyz-probe")


CHECKS: dict[str, Callable[[], None]] = {
    "database": _check_database,
    "broker": _check_broker,
    "storage": _check_storage,
}


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 with ``{"status": "ok", "database": "ok", "broker": "ok", "storage": "ok"}`` when
    the database answers a query, the Celery broker accepts a connection and both storages answer a lookup;
    otherwise 503 naming each failing part ``"unavailable"`` (details go to the log, not to the caller)."""
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception:
            logger.warning("readiness check %s failed", name, exc_info=True)
            results[name] = "unavailable"
        else:
            results[name] = "ok"
    ready = all(value == "ok" for value in results.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", **results}, status=200 if ready else 503)
