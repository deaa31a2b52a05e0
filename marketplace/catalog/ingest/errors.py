"""The one error type of the ingest core: a machine code plus a sentence a user can act on."""

from __future__ import annotations

from typing import Any

# The codes the web layer maps to HTTP statuses: "too_large" is 413, every other one is 400.
ERROR_CODES = frozenset(
    {
        "empty_file",
        "format_mismatch",
        "unsupported_format",
        "disguised_binary",
        "ragged_rows",
        "undecodable",
        "nul_bytes",
        "line_too_long",
        "truncated_parquet",
        "broken_jsonl",
        "too_large",
        "incomplete_upload",
        "duplicate_columns",
        "empty_column_name",
        "no_rows",
        "bad_metadata",
        "unreadable",
        "cell_too_large",
        "nesting_too_deep",
        "too_many_columns",
        "validation_timeout",
    }
)


class IngestError(Exception):
    """A refused upload: ``code`` is a short slug from ``ERROR_CODES``, ``message`` a plain sentence.

    The message names the line, byte offset or column whenever it is known, and never includes a
    traceback or a library's internal wording.
    """

    def __init__(self, code: str, message: str) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown ingest error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        """The error as the API's error body: ``{"detail": message, "code": code}``."""
        return {"detail": self.message, "code": self.code}

    def __repr__(self) -> str:
        return f"IngestError({self.code!r}, {self.message!r})"
