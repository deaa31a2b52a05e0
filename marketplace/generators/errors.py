"""The error of a refused generator operation (pure Python: the SDV fitting module raises it too)."""

from __future__ import annotations

from marketplace.core.errors import JsonableError


class GeneratorError(JsonableError):
    """A refused generator operation: ``code`` a short slug, ``message`` a sentence for the user."""
