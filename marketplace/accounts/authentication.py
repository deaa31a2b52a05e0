"""API token authentication with the token → user lookup cached for a short time (issue 17 #10).

DRF's ``TokenAuthentication`` reads the token and its user from the database on every request: on
PostgreSQL under load that one query was most of a cached API read's cost. This class keeps the token (with
its user, password hash left out) in the ``tokens`` cache for ``SYNTHEX_TOKEN_CACHE_SECONDS`` after one
read. The cache is shared by every process of an instance (a file cache under the var dir, Redis in
production), so forgetting an entry in one process forgets it for all.

Every way a token stops being valid forgets it first: ``accounts.services`` (``revoke_api_token``,
``rotate_api_token``, ``deactivate_user``) and the admin (user saved or deleted, token deleted). Forgetting
writes a tombstone rather than deleting the entry, and a lookup only *adds* to the cache, so a request that
read the token from the database just before it was revoked cannot put it back: a revoked token is refused
from the next request on. The timeout bounds what a write outside those paths (a bulk queryset update)
could leave cached.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

_REVOKED = "revoked"


def _cache() -> Any:
    return caches["tokens"]


def _cache_key(key: str) -> str:
    # The cache never holds a usable key, only its digest.
    return "token:" + hashlib.sha256(key.encode()).hexdigest()


def forget_tokens(keys: Iterable[str]) -> None:
    """Make every process read these token keys from the database again (for the cache's timeout)."""
    digests = {_cache_key(key): _REVOKED for key in keys}
    if digests:
        _cache().set_many(digests, max(settings.SYNTHEX_TOKEN_CACHE_SECONDS, 1))


def forget_user_tokens(user_id: int) -> None:
    """Forget the cached lookups of every token of the user (before revoking, rotating or deactivating)."""
    forget_tokens(Token.objects.filter(user_id=user_id).values_list("key", flat=True))


class CachedTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>``, as DRF's, with a valid token's lookup cached (see the module)."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        seconds = settings.SYNTHEX_TOKEN_CACHE_SECONDS
        token = _cache().get(_cache_key(key)) if seconds else None
        if not isinstance(token, Token):
            try:
                token = Token.objects.select_related("user").defer("user__password").get(key=key)
            except Token.DoesNotExist:
                raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
            if seconds and token.user.is_active:
                _cache().add(_cache_key(key), token, seconds)
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return token.user, token
