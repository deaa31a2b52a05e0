"""Streaming copies that hash and count bytes as they pass, in constant memory."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import BinaryIO

from marketplace.catalog.ingest.errors import IngestError


def _size_words(size: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


class HashingWriter:
    """Wraps a binary sink: ``write`` forwards each chunk and updates the SHA-256 digest and byte count.

    Raises ``IngestError("too_large")`` before forwarding the chunk that would take the total past
    ``max_bytes``, so the sink never holds more than ``max_bytes`` bytes.
    """

    def __init__(self, sink: BinaryIO, *, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self._sink = sink
        self._digest = hashlib.sha256()
        self.max_bytes = max_bytes
        self.size = 0

    def write(self, chunk: bytes) -> int:
        """Forward ``chunk``; returns its length in bytes."""
        if self.size + len(chunk) > self.max_bytes:
            raise IngestError(
                "too_large",
                f"The file is larger than the upload limit of {_size_words(self.max_bytes)}.",
            )
        self._sink.write(chunk)
        self._digest.update(chunk)
        self.size += len(chunk)
        return len(chunk)

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the bytes written so far."""
        return self._digest.hexdigest()


def copy_stream(
    chunks: Iterable[bytes],
    sink: BinaryIO,
    *,
    max_bytes: int,
    expected_size: int | None = None,
) -> tuple[str, int]:
    """Copy ``chunks`` into ``sink``; returns ``(sha256 hex, size in bytes)``.

    Memory is bounded by the largest chunk. Raises ``IngestError("too_large")`` past ``max_bytes`` and,
    when ``expected_size`` is given (e.g. the upload's declared length) and fewer or more bytes arrived,
    ``IngestError("incomplete_upload")``. On error the sink holds a prefix; the caller deletes it.
    """
    writer = HashingWriter(sink, max_bytes=max_bytes)
    for chunk in chunks:
        if chunk:
            writer.write(chunk)
    if expected_size is not None and writer.size != expected_size:
        raise IngestError(
            "incomplete_upload",
            f"The upload was cut off: {writer.size} of {expected_size} bytes arrived. Please upload it again.",
        )
    return writer.sha256, writer.size
