"""Whole-page caching of public pages for anonymous visitors, invalidated the moment the catalog changes.

Anonymous catalog and product pages are the same for everyone, and they are most of the traffic. Each
cached page is keyed by the request's path and query and by a *catalog version* token; every write that
changes what those pages show calls ``bump_catalog_version()``, so no one ever sees a stale page (the
timeout only bounds the cache's size). Requests with any cookie (a session, messages, CSRF) and responses
that set cookies are never cached, so nothing personal is ever stored or served from the cache. The catalog
search API's body is the same for every caller too: it is cached under the same token for anonymous and
signed-in callers alike (:func:`cached_api_response`).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse

_VERSION_KEY = "catalog:version"


def _cache() -> Any:
    return caches["pages"]


def bump_catalog_version() -> None:
    """Make every cached public page stale (call after any change to products, versions or grades)."""
    _cache().set(_VERSION_KEY, secrets.token_hex(8), None)


def _version() -> str:
    version = _cache().get(_VERSION_KEY)
    if version is None:
        version = secrets.token_hex(8)
        _cache().add(_VERSION_KEY, version, None)
        version = _cache().get(_VERSION_KEY, version)
    return str(version)


def anonymous_page_cache(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Serve ``view`` from the page cache for anonymous, cookie-less GET requests."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "GET" or request.COOKIES or request.user.is_authenticated:
            return view(request, *args, **kwargs)
        digest = hashlib.sha256(request.get_full_path().encode()).hexdigest()
        key = f"page:{_version()}:{digest}"
        cached = _cache().get(key)
        if cached is not None:
            status, content_type, body = cached
            response = HttpResponse(body, status=status, content_type=content_type)
            response["X-Synthex-Cache"] = "hit"
            return response
        response = view(request, *args, **kwargs)
        if response.status_code == 200 and not response.cookies and not getattr(response, "streaming", False):
            _cache().set(
                key, (200, response["Content-Type"], response.content), settings.SYNTHEX_PAGE_CACHE_SECONDS
            )
            response["X-Synthex-Cache"] = "miss"
        return response

    return wrapped


def cached_api_response(request: HttpRequest, build: Callable[[], HttpResponse]) -> HttpResponse:
    """A read API's GET body from the page cache, else ``build()``'s response, stored when it is a 200 JSON
    body that sets no cookie.

    Only for bodies that are the same for every caller: the view calls this after its framework has
    authenticated the caller (a bad token is refused before the cache is read), so a signed-in CLI and an
    anonymous visitor share one entry. Same invalidation as :func:`anonymous_page_cache` (the catalog version
    token); the key is the host (absolute links in the body) and the path with its query.
    """
    digest = hashlib.sha256(f"{request.get_host()} {request.get_full_path()}".encode()).hexdigest()
    key = f"api:{_version()}:{digest}"
    cached = _cache().get(key)
    if cached is not None:
        status, content_type, body = cached
        response = HttpResponse(body, status=status, content_type=content_type)
        response["X-Synthex-Cache"] = "hit"
        return response
    response = build()
    if (
        response.status_code == 200
        and response.get("Content-Type", "").startswith("application/json")
        and not response.cookies
    ):
        _cache().set(
            key, (200, response["Content-Type"], response.content), settings.SYNTHEX_PAGE_CACHE_SECONDS
        )
        response["X-Synthex-Cache"] = "miss"
    return response
