"""Streaming upload handling: every uploaded file goes to a temporary file on disk in 1 MiB chunks and is
SHA-256 hashed while it streams, so a 2 GB upload never sits in memory and is never read twice to hash.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Protocol, runtime_checkable

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.core.handlers.wsgi import LimitedStream

from marketplace.catalog.ingest import IngestError
from marketplace.core.errors import JsonableError


class HashedUploadedFile(TemporaryUploadedFile):
    """A temporary uploaded file that knows its SHA-256 (hex) and exact size."""

    sha256: str = ""


@runtime_checkable
class HashedFile(Protocol):
    """What version creation needs of an uploaded file, whichever way it arrived (multipart or session)."""

    name: str | None
    size: int | None
    sha256: str

    def temporary_file_path(self) -> str: ...

    def seek(self, offset: int, whence: int = 0) -> int: ...

    def close(self) -> None: ...


class HashingUploadHandler(FileUploadHandler):
    """Writes each file part to disk, hashing it on the way, and enforces ``SYNTHEX_MAX_UPLOAD_BYTES``.

    Problems are recorded on ``request.upload_error`` (an ``IngestError``) for the view to turn into a
    4xx: a file over the limit stops the upload at once; a body that ends before its Content-Length (a
    client cut off mid-stream) is detected when parsing completes.
    """

    chunk_size = 1024 * 1024

    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.file: HashedUploadedFile | None = None
        self.digest = hashlib.sha256()
        self.received = 0

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        os.makedirs(settings.FILE_UPLOAD_TEMP_DIR, exist_ok=True)
        self.file = HashedUploadedFile(
            self.file_name or "upload",
            self.content_type or "application/octet-stream",
            0,
            self.charset,
            self.content_type_extra,
        )
        self.digest = hashlib.sha256()
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if self.file is None:
            raise StopUpload(connection_reset=True)
        self.received += len(raw_data)
        limit = settings.SYNTHEX_MAX_UPLOAD_BYTES
        if self.received > limit:
            self.file.close()
            self._record(
                IngestError(
                    "too_large", f"{self.file_name} is larger than the upload limit of {limit:,} bytes."
                )
            )
            raise StopUpload(connection_reset=True)
        self.digest.update(raw_data)
        self.file.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> HashedUploadedFile | None:
        if self.file is None:
            return None
        self.file.seek(0)
        self.file.size = file_size
        self.file.sha256 = self.digest.hexdigest()
        return self.file

    def upload_complete(self) -> None:
        stream = getattr(self.request, "_stream", None)
        # Django's LimitedStream counts what it handed out; fewer bytes than Content-Length means the
        # client went away mid-body (the multipart parser itself treats the short body as complete).
        position = getattr(stream, "_pos", None)
        if isinstance(stream, LimitedStream) and position is not None and position < stream.limit:
            self._record(
                IngestError(
                    "incomplete_upload",
                    f"The upload ended after {position:,} of {stream.limit:,} bytes; nothing was saved. "
                    "Please send the file again.",
                )
            )

    def _record(self, error: IngestError) -> None:
        if self.request is not None and getattr(self.request, "upload_error", None) is None:
            setattr(self.request, "upload_error", error)  # noqa: B010 - HttpRequest has no such attribute to type


def upload_error(request: Any) -> IngestError | None:
    """The problem the upload handler met while receiving this request's files, if any."""
    return getattr(request, "upload_error", None)


def raise_upload_error(request: Any) -> None:
    """Raise the problem the upload handler met, if any, as the API answers it: 413 ``too_large`` (over the
    upload limit), 400 for every other code."""
    problem = upload_error(request)
    if problem is not None:
        raise JsonableError(problem.code, problem.message, 413 if problem.code == "too_large" else 400)


def local_upload(path: str | os.PathLike[str], *, name: str | None = None) -> HashedUploadedFile:
    """Wrap a local file as an uploaded file (copied to the upload temp dir, hashed on the way) so commands
    and the demo seeding go through exactly the same validation and storage path as browser uploads."""
    from marketplace.catalog.ingest import copy_stream

    os.makedirs(settings.FILE_UPLOAD_TEMP_DIR, exist_ok=True)
    filename = name or os.path.basename(os.fspath(path))
    upload = HashedUploadedFile(filename, "application/octet-stream", 0, None)
    try:
        with open(path, "rb") as source:
            sha256, size = copy_stream(
                iter(lambda: source.read(1024 * 1024), b""),
                upload,  # type: ignore[arg-type]  # a real binary file object, typed by Django as File
                max_bytes=settings.SYNTHEX_MAX_UPLOAD_BYTES,
            )
    except BaseException:
        upload.close()  # deletes the temporary copy at once, not whenever it is collected
        raise
    upload.flush()
    upload.seek(0)
    upload.size = size
    upload.sha256 = sha256
    return upload
