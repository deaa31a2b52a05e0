"""Content-Security-Policy header on every response.

The policy comes from ``settings.SYNTHEX_CSP`` (directive -> list of sources); pages keep all script in
static files, so ``script-src`` never needs ``'unsafe-inline'``. A response that already carries a
Content-Security-Policy (a view that needs a narrower one) is left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def header_value(policy: Mapping[str, Sequence[str]]) -> str:
    """The policy as a header value: directives in the mapping's order, ``; ``-separated."""
    return "; ".join(f"{name} {' '.join(sources)}".strip() for name, sources in policy.items())


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.value = header_value(settings.SYNTHEX_CSP)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.value
        return response
