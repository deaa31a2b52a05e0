"""The product's own 404/500 pages, under DEBUG (``make run``) too, and ``/favicon.ico`` (issue 17 #11)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory

from marketplace.core.error_pages import server_error

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("debug", [True, False])
def test_an_unknown_page_is_the_products_404_without_the_url_list(
    client: Any, settings: Any, debug: bool
) -> None:
    settings.DEBUG = debug
    response = client.get("/no-such-page/")
    page = response.content.decode()
    assert response.status_code == 404
    assert "Page not found" in page and "/no-such-page/" in page
    assert 'href="/"' in page  # the site's own navigation
    assert "URLconf" not in page and "DEBUG = True" not in page and "api/v1/" not in page.split("<main>")[1]


def test_a_view_raising_http404_under_debug_is_the_products_404(client: Any, settings: Any) -> None:
    settings.DEBUG = True
    response = client.get("/products/no-such-product/")
    page = response.content.decode()
    assert response.status_code == 404
    assert "Page not found" in page and "Raised by" not in page and "DEBUG = True" not in page


@pytest.mark.parametrize("debug", [True, False])
def test_an_unknown_api_path_is_a_json_404(client: Any, settings: Any, debug: bool) -> None:
    settings.DEBUG = debug
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_the_500_page_is_the_products_own() -> None:
    response = server_error(RequestFactory().get("/products/x/"))
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()
    assert server_error(RequestFactory().get("/api/v1/products/")).content == (
        b'{"detail": "Server error.", "code": "server_error"}'
    )


def test_favicon_is_served(client: Any) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO header
