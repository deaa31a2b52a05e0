"""API token checks answered from the token cache (issue 17 #10): no query after the first read, and a
revoked, rotated or deactivated token refused on the very next request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.admin.sites import site
from django.core.cache import caches
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token, TokenProxy
from rest_framework.test import APIClient

from marketplace.accounts import services
from marketplace.accounts.authentication import _cache_key
from marketplace.accounts.models import User

pytestmark = pytest.mark.django_db

URL = "/api/v1/products/"


@pytest.fixture(autouse=True)
def _token_cache(settings: Any) -> None:
    settings.SYNTHEX_TOKEN_CACHE_SECONDS = 60
    caches["tokens"].clear()


def _client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def _status_and_queries(key: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as captured:
        status = _client(key).get(URL).status_code
    return status, len(captured.captured_queries)


def test_a_token_is_read_from_the_database_once(buyer: Any) -> None:
    key = services.api_token_for(buyer)
    _client(key).get(URL)  # fills the page cache and the token cache
    assert _status_and_queries(key) == (200, 0)
    cached = caches["tokens"].get(_cache_key(key))
    assert (cached.key, cached.user.pk, "password" in cached.user.__dict__) == (key, buyer.pk, False)


def _revoke(user: User) -> None:
    services.revoke_api_token(user)


def _rotate(user: User) -> None:
    services.rotate_api_token(user)


def _deactivate(user: User) -> None:
    services.deactivate_user(user)


def _admin_deactivate(user: User) -> None:
    request = RequestFactory().post("/")
    user.is_active = False
    site._registry[User].save_model(request, user, None, True)


def _admin_delete_token(user: User) -> None:
    site._registry[TokenProxy].delete_model(RequestFactory().post("/"), Token.objects.get(user=user))


def _admin_delete_user(user: User) -> None:
    site._registry[User].delete_model(RequestFactory().post("/"), user)


@pytest.mark.parametrize(
    "revoke", [_revoke, _rotate, _deactivate, _admin_deactivate, _admin_delete_token, _admin_delete_user]
)
def test_a_revoked_token_is_refused_on_the_next_request(revoke: Callable[[User], None], buyer: Any) -> None:
    key = services.api_token_for(buyer)
    assert _status_and_queries(key)[0] == 200
    assert _status_and_queries(key) == (200, 0)  # now answered from the cache
    revoke(buyer)
    response = _client(key).get(URL)
    assert response.status_code == 401
    assert _client(key).get(URL).status_code == 401  # a refusal is never cached as a success


def test_a_rotated_key_works_at_once_and_the_old_one_does_not(buyer: Any) -> None:
    old = services.api_token_for(buyer)
    assert _client(old).get(URL).status_code == 200
    new = services.rotate_api_token(buyer)
    assert new != old
    assert (_client(old).get(URL).status_code, _client(new).get(URL).status_code) == (401, 200)
    assert list(Token.objects.filter(user=buyer).values_list("key", flat=True)) == [new]


def test_a_request_racing_a_revocation_cannot_cache_the_revoked_token(buyer: Any) -> None:
    key = services.api_token_for(buyer)
    token = Token.objects.select_related("user").get(key=key)  # read just before the revocation...
    services.revoke_api_token(buyer)
    caches["tokens"].add(_cache_key(key), token, 60)  # ...stored just after it
    assert _client(key).get(URL).status_code == 401
