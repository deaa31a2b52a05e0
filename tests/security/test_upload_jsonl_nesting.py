"""Issue 18 #10: a JSON Lines file nested 100,000 deep answered 500 (RecursionError, with a debug
traceback), and 503 "upload it again" through upload sessions. It is a clear 400 naming the limit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from marketplace.catalog.ingest.sources import MAX_JSON_DEPTH
from marketplace.catalog.models import ProductVersion, Upload

pytestmark = pytest.mark.django_db


def nested(depth: int) -> bytes:
    """Two JSON Lines rows; the second nests ``depth`` levels (the row object is level 1)."""
    inner = "[" * (depth - 1) + "1" + "]" * (depth - 1)
    return b'{"a": 1}\n' + f'{{"a": {inner}}}\n'.encode()


@pytest.mark.parametrize("depth", [100_000, MAX_JSON_DEPTH + 1], ids=["far-too-deep", "just-over"])
def test_deep_nesting_in_one_request_is_a_400_naming_the_limit(
    provider: Any,
    api_client_for: Callable[[Any], Any],
    product_factory: Callable[..., Any],
    depth: int,
    tmp_path: Any,
) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_bytes(nested(depth))
    product = product_factory(provider, "Deep")
    with path.open("rb") as handle:
        response = api_client_for(provider).post(
            f"/api/v1/products/{product.slug}/versions/", {"synthetic": handle}, format="multipart"
        )
    assert response.status_code == 400, response.content[:300]
    assert response.json()["code"] == "nesting_too_deep"
    assert f"more than {MAX_JSON_DEPTH} levels deep" in response.json()["detail"]
    assert response.json()["detail"].startswith("deep.jsonl: Line 2 of ")
    assert ProductVersion.objects.count() == 0


def test_deep_nesting_through_an_upload_session_is_a_400_not_a_503(
    provider: Any, api_client_for: Callable[[Any], Any], product_factory: Callable[..., Any]
) -> None:
    payload = nested(100_000)
    client = api_client_for(provider)
    product = product_factory(provider, "Deep session")
    started = client.post("/api/v1/uploads/", {"filename": "deep.jsonl", "size": len(payload)}, format="json")
    upload_id = started.json()["id"]
    client.generic(
        "PUT", f"/api/v1/uploads/{upload_id}/chunks/0/", payload, content_type="application/octet-stream"
    )
    client.post(f"/api/v1/uploads/{upload_id}/complete/")
    attach = client.post(
        f"/api/v1/products/{product.slug}/versions/", {"synthetic": [upload_id]}, format="json"
    )
    assert (attach.status_code, attach.json()["code"]) == (400, "nesting_too_deep")
    assert str(MAX_JSON_DEPTH) in attach.json()["detail"]
    assert Upload.objects.get(pk=upload_id).validation == "invalid"


def test_nesting_up_to_the_limit_is_accepted(
    provider: Any, api_client_for: Callable[[Any], Any], product_factory: Callable[..., Any], tmp_path: Any
) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_bytes(nested(MAX_JSON_DEPTH))
    product = product_factory(provider, "Deep enough")
    with path.open("rb") as handle:
        response = api_client_for(provider).post(
            f"/api/v1/products/{product.slug}/versions/",
            {"synthetic": handle, "submit": "false"},
            format="multipart",
        )
    assert response.status_code == 201, response.content[:300]
