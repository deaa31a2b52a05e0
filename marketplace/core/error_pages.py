"""The product's own 404 and 500 pages (HTML for pages, JSON ``{"detail", "code"}`` under ``/api/``).

Django shows its technical 404 page (every URL pattern, the settings' names) whenever ``DEBUG`` is on, which
is how ``make run`` serves the demo. :class:`NotFoundPageMiddleware` keeps that page off for 404s even then:
a path no URL matches, or an ``Http404`` a view raises, gets the same page as in production. Technical 500
pages under ``DEBUG`` stay (they are for the developer at the console); without ``DEBUG`` the 500 handler
below serves ``500.html``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template import loader


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler404``: a page with the catalog's navigation, or a JSON error under ``/api/``."""
    if _is_api(request):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return HttpResponse(loader.render_to_string("404.html", {"path": request.path}, request), status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: rendered without a request context (the error may come from a context processor)."""
    if _is_api(request):
        return JsonResponse({"detail": "Server error.", "code": "server_error"}, status=500)
    return HttpResponse(loader.get_template("500.html").render(), status=500)


class NotFoundPageMiddleware:
    """Under ``DEBUG``, serve :func:`page_not_found` instead of Django's technical 404 page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # No resolver match: no URL pattern matched, so the 404 is Django's (technical under DEBUG).
        if (
            settings.DEBUG
            and response.status_code == 404
            and getattr(request, "resolver_match", None) is None
        ):
            return page_not_found(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if settings.DEBUG and isinstance(exception, Http404):
            return page_not_found(request, exception)
        return None
