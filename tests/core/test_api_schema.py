"""Every operation of the OpenAPI schema is fully described (issue 17 #9): a response schema for its success,
and a request body for every POST/PUT/PATCH unless it is on the explicit list of writes that take none
(marked ``request=None`` in their ``@extend_schema``)."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db

WRITES = {"post", "put", "patch"}
# Writes that truly take no body, each marked `request=None` in its view's @extend_schema.
NO_REQUEST_BODY: set[tuple[str, str]] = set()


def _operations(client: Any) -> list[tuple[str, str, dict[str, Any]]]:
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    return [
        (method, path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in {"get", "delete", *WRITES}
    ]


def _has_success_schema(operation: dict[str, Any]) -> bool:
    successes = {code: body for code, body in operation["responses"].items() if code.startswith("2")}
    if set(successes) == {"204"}:
        return True  # "No Content" is a full description
    return any(
        "schema" in media for body in successes.values() for media in (body.get("content") or {}).values()
    )


def test_every_operation_has_a_response_schema(client: Any) -> None:
    operations = _operations(client)
    assert len(operations) >= 40
    missing = [f"{method.upper()} {path}" for method, path, op in operations if not _has_success_schema(op)]
    assert missing == []


def test_every_write_has_a_request_body_or_is_listed_as_taking_none(client: Any) -> None:
    without = {
        (method, path)
        for method, path, op in _operations(client)
        if method in WRITES and "schema" not in str((op.get("requestBody") or {}).get("content"))
    }
    assert without == NO_REQUEST_BODY
