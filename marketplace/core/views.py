from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import cache_control

from marketplace.certification import keys


@cache_control(public=True, max_age=300)
def well_known_keys(request: HttpRequest) -> JsonResponse:
    """Every public key Synthex has signed with (retired ones included) — see DESIGN.md."""
    return JsonResponse(keys.keys_document())


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # any database failure means not ready
        return JsonResponse({"status": "unavailable", "database": str(error)}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})
