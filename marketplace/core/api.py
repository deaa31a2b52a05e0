"""API conventions shared by every app: errors are JSON ``{"detail": ..., "code": ...}`` with a 4xx."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from marketplace.core.errors import JsonableError


class ApiError(exceptions.APIException):
    """An error with an explicit status, message and machine-readable code."""

    def __init__(
        self,
        detail: str,
        code: str,
        status_code: int = status.HTTP_400_BAD_REQUEST,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail=detail, code=code)
        self.status_code = status_code
        self.extra = extra or {}


def _first_code(detail: Any) -> str:
    if isinstance(detail, exceptions.ErrorDetail):
        return str(detail.code)
    if isinstance(detail, list) and detail:
        return _first_code(detail[0])
    if isinstance(detail, dict) and detail:
        return _first_code(next(iter(detail.values())))
    return "invalid"


def _flatten(detail: Any, prefix: str = "") -> list[str]:
    if isinstance(detail, dict):
        out: list[str] = []
        for key, value in detail.items():
            label = "" if key == "non_field_errors" else f"{prefix}{key}: "
            out.extend(_flatten(value, label))
        return out
    if isinstance(detail, list):
        return [m for item in detail for m in _flatten(item, prefix)]
    return [f"{prefix}{detail}"]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's ``EXCEPTION_HANDLER``: every refused call answers ``{"detail", "code", ...}`` with its 4xx."""
    if isinstance(exc, JsonableError):
        set_rollback()
        return Response({"detail": exc.message, "code": exc.code, **exc.extra}, status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    detail = exc.detail
    if isinstance(detail, (dict, list)):
        body: dict[str, Any] = {"detail": " ".join(_flatten(detail)), "code": _first_code(detail)}
        if isinstance(detail, dict):
            body["errors"] = detail
    else:
        body = {"detail": str(detail), "code": str(getattr(detail, "code", exc.default_code))}
    body.update(getattr(exc, "extra", None) or {})
    response.data = body
    return response
