"""The one error type of a refused operation, raised anywhere and turned into the API's JSON error body in one
place (``marketplace.core.api.exception_handler``, DRF's ``EXCEPTION_HANDLER``).

Pure Python: services and pure cores raise it without importing DRF or Django.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class JsonableError(Exception):
    """A refused operation: ``code`` a short machine-readable slug, ``message`` a sentence for the user,
    ``status`` the HTTP status the API answers with (4xx), ``extra`` machine-readable figures added to the
    body. The API answers ``{"detail": message, "code": code, **extra}``."""

    def __init__(
        self, code: str, message: str, status: int = 400, extra: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra: dict[str, Any] = dict(extra or {})
