"""Resumable chunked uploads: large files arrive as raw chunk bodies, hashed on the way, in order.

The web page's multipart upload is fine for everyday files; scripts and the CLI use these sessions, which
survive a killed process (resume from ``received_bytes``) and avoid multipart parsing (raw bodies stream
to disk at close to disk speed). A session's bytes live in one ``.part`` file under the upload temp dir
until the upload is attached to a version, which moves the file into storage.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import mmap
import os
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from marketplace.accounts.models import User
from marketplace.catalog import ingest, services
from marketplace.catalog.ingest import IngestError
from marketplace.catalog.models import Upload
from marketplace.catalog.services import CatalogError

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 32 * 1024 * 1024
MIN_CHUNK_SIZE = 256 * 1024
MAX_CHUNK_SIZE = 64 * 1024 * 1024
READ_SIZE = 1024 * 1024
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

# The whole file's SHA-256, kept running in the process that received the chunks so far: chunk i+1 usually
# reaches the process that took chunk i (one client, one keep-alive connection). ``complete`` uses it when
# it covers every chunk and hashes the file again otherwise, so the cache only ever saves a re-read.
_RUNNING: OrderedDict[str, tuple[int, Any]] = OrderedDict()
_RUNNING_MAX = 256


def _folder() -> Path:
    folder = Path(settings.FILE_UPLOAD_TEMP_DIR) / "sessions"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def part_path(upload: Upload) -> Path:
    return _folder() / f"{upload.id}.part"


def start_upload(
    *, owner: User, filename: str, size: int, sha256: str = "", chunk_size: int | None = None
) -> Upload:
    """Open a session for one file of ``size`` bytes; ``sha256`` (hex), when given, is checked at the end."""
    name = os.path.basename(filename or "").strip()
    if not name or len(name) > 255:
        raise CatalogError("bad_filename", "Give the file's name (at most 255 characters).")
    if not isinstance(size, int) or size <= 0:
        raise CatalogError("empty_file", f"{name} is empty: nothing to upload.")
    if size > settings.SYNTHEX_MAX_UPLOAD_BYTES:
        raise CatalogError(
            "too_large",
            f"{name} is larger than the upload limit of {settings.SYNTHEX_MAX_UPLOAD_BYTES:,} bytes.",
            413,
        )
    chunk = chunk_size or DEFAULT_CHUNK_SIZE
    if not MIN_CHUNK_SIZE <= chunk <= MAX_CHUNK_SIZE:
        raise CatalogError(
            "bad_chunk_size", f"chunk_size must be between {MIN_CHUNK_SIZE:,} and {MAX_CHUNK_SIZE:,} bytes."
        )
    expected = (sha256 or "").lower()
    if expected and not _HEX64.match(expected):
        raise CatalogError("bad_sha256", "sha256 must be 64 hexadecimal digits.")
    upload = Upload.objects.create(
        id=f"upl_{secrets.token_hex(12)}",
        owner=owner,
        filename=name,
        size=size,
        chunk_size=chunk,
        expected_sha256=expected,
    )
    part_path(upload).touch()
    return upload


def chunk_count(upload: Upload) -> int:
    return -(-upload.size // upload.chunk_size)


def receive_chunk(
    upload: Upload,
    *,
    index: int,
    length: int,
    readinto: Callable[[memoryview], int],
    chunk_sha256: str = "",
) -> Upload:
    """Append chunk ``index`` (its bytes come from ``readinto``); a re-sent chunk is compared, not
    rewritten.

    Refuses, without changing anything: a chunk out of order, of the wrong length, cut short, whose
    SHA-256 differs from ``chunk_sha256`` (when the client sends one), or that differs from the copy
    already received. ``chunk_sha256`` of the session lists the checked hashes ("" where none was sent).
    """
    if upload.status != Upload.Status.OPEN:
        raise CatalogError("upload_closed", "This upload is already complete.", 409)
    count = chunk_count(upload)
    if not 0 <= index < count:
        raise CatalogError(
            "bad_chunk", f"Chunk {index} does not exist: this file has chunks 0 to {count - 1}."
        )
    expected_length = min(upload.chunk_size, upload.size - index * upload.chunk_size)
    if length != expected_length:
        raise CatalogError("bad_chunk", f"Chunk {index} must be {expected_length:,} bytes, not {length:,}.")
    received = len(upload.chunk_sha256)
    if index > received:
        raise CatalogError("chunk_out_of_order", f"Send chunk {received} next (chunks arrive in order).", 409)
    expected = chunk_sha256.lower()
    if expected and not _HEX64.match(expected):
        raise CatalogError("bad_sha256", "X-Chunk-SHA256 must be 64 hexadecimal digits.")
    # The chunk's own SHA-256 is computed only to check the one the client sent: the whole file's running
    # SHA-256 (the version's content address) is needed anyway, and a second hash of every byte cost more
    # than the disk write. A re-sent chunk is compared with the stored bytes instead.
    digest = hashlib.sha256() if expected else None
    cached = _RUNNING.pop(upload.id, None)
    running = (
        cached[1].copy() if cached and cached[0] == index else (hashlib.sha256() if index == 0 else None)
    )
    # One writer per upload at a time: an exclusive lock on the part file (not the database, which other
    # requests need) is held while the body streams in, so the bytes are written once, straight into place.
    with part_path(upload).open("r+b") as part:
        fcntl.flock(part.fileno(), fcntl.LOCK_EX)
        upload.refresh_from_db()
        hashes = list(upload.chunk_sha256)
        is_new = index == len(hashes)
        if index > len(hashes):
            raise CatalogError(
                "chunk_out_of_order", f"Send chunk {len(hashes)} next (chunks arrive in order).", 409
            )
        feeds = [item for item in (digest, running if is_new else None) if item is not None]
        try:
            same = _stream_chunk(part, index * upload.chunk_size, is_new, readinto, length, feeds)
        except _CutOff as cut:
            _rewind(part, upload, index, is_new)
            raise CatalogError(
                "incomplete_upload", f"Chunk {index} was cut off after {cut.received:,} of {length:,} bytes."
            ) from None
        if digest is not None and digest.hexdigest() != expected:
            _rewind(part, upload, index, is_new)
            raise CatalogError(
                "chunk_corrupted", f"Chunk {index} arrived with SHA-256 {digest.hexdigest()}, not {expected}."
            )
        if not is_new:
            if cached is not None:
                _RUNNING[upload.id] = cached
            if not same or (expected and hashes[index] and hashes[index] != expected):
                raise CatalogError(
                    "chunk_mismatch", f"Chunk {index} differs from the copy already received.", 409
                )
            return upload
        if running is not None:
            _RUNNING[upload.id] = (index + 1, running)
            while len(_RUNNING) > _RUNNING_MAX:
                _RUNNING.popitem(last=False)
        upload.chunk_sha256 = [*hashes, expected]
        upload.received_bytes = index * upload.chunk_size + length
        upload.save(update_fields=["chunk_sha256", "received_bytes", "updated_at"])
        return upload


class _CutOff(Exception):
    def __init__(self, received: int) -> None:
        super().__init__(received)
        self.received = received


def _stream_chunk(
    part: BinaryIO,
    offset: int,
    is_new: bool,
    readinto: Callable[[memoryview], int],
    length: int,
    digests: list[Any],
) -> bool:
    """Take ``length`` bytes from ``readinto``: write them at ``offset`` of ``part`` (a new chunk) or
    compare them with the bytes stored there (a re-sent one, returning whether all matched), feeding
    ``digests``.

    The socket is read into a ring of buffers that one thread writes to disk and another hashes, while
    this thread receives the next block: socket reads, ``os.pwrite`` and hashlib all release the GIL, so
    the three overlap on separate cores instead of adding up. A buffer is reused once both are done with
    it, so nothing is copied and memory stays at ``_SLOTS`` x ``READ_SIZE`` per chunk being received.
    """
    descriptor = part.fileno()
    received = 0
    same = True
    with _ring() as ring:
        pending: list[list[Future[Any]]] = [[] for _ in ring]

        def settle(slot: int) -> None:
            futures, pending[slot] = pending[slot], []
            for future in futures:
                future.result()

        disk = _BlockWriter(part) if is_new else None
        writer = ThreadPoolExecutor(1, thread_name_prefix="chunk-write")
        hasher = ThreadPoolExecutor(1, thread_name_prefix="chunk-hash")
        try:
            slot = 0
            while received < length:
                settle(slot)
                view = ring[slot][: min(READ_SIZE, length - received)]
                filled = 0
                while filled < len(view):  # whole blocks: a handoff per socket read costs more than it saves
                    count = readinto(view[filled:])
                    if not count:
                        raise _CutOff(received + filled)
                    filled += count
                if disk is not None:
                    pending[slot].append(writer.submit(disk.write, view, offset + received))
                elif same:
                    same = os.pread(descriptor, filled, offset + received) == view
                pending[slot].extend(hasher.submit(digest.update, view) for digest in digests)
                received += filled
                slot = (slot + 1) % len(ring)
            for index in range(len(ring)):
                settle(index)
        finally:
            writer.shutdown(cancel_futures=True)
            hasher.shutdown(cancel_futures=True)
            if disk is not None:
                disk.close()
    return same


class _BlockWriter:
    """Writes a chunk's blocks into the part file, around the page cache where it can (``O_DIRECT``).

    The bytes are not read again until the upload is attached (and then once, streaming), so caching them
    only costs: a buffered write copies every byte into the page cache (0.15-0.3 s of CPU per GB here,
    on the cores that also receive and hash) and leaves it all to be flushed later. A direct write hands
    the aligned buffer to the device. Blocks that are not aligned (a file's tail, an odd chunk size) and
    file systems without ``O_DIRECT`` (tmpfs) take the buffered path; the kernel keeps the two coherent.
    """

    ALIGN = 4096

    def __init__(self, part: BinaryIO) -> None:
        self._buffered = part.fileno()
        self._direct: int | None = None
        flag = getattr(os, "O_DIRECT", 0)
        if flag:
            try:
                self._direct = os.open(part.name, os.O_WRONLY | flag)
            except OSError:
                self._direct = None

    def write(self, view: memoryview, offset: int) -> None:
        if self._direct is not None and not (offset | len(view)) % self.ALIGN:
            try:
                _write_at(self._direct, view, offset)
                return
            except OSError as error:  # alignment the device refuses: stay buffered from here on
                if error.errno != errno.EINVAL:
                    raise
                self.close()
        _write_at(self._buffered, view, offset)

    def close(self) -> None:
        if self._direct is not None:
            os.close(self._direct)
            self._direct = None


def _write_at(descriptor: int, view: memoryview, offset: int) -> None:
    while view:
        written = os.pwrite(descriptor, view, offset)
        view, offset = view[written:], offset + written


_SLOTS = 8
_IDLE_RINGS_KEPT = 2
_idle_rings: list[list[memoryview]] = []
_idle_rings_lock = threading.Lock()


@contextmanager
def _ring() -> Iterator[list[memoryview]]:
    """Receive buffers for one chunk: page-aligned anonymous maps, as direct writes require. A few are kept
    for the next chunks (fresh ones cost a page fault per 4 KiB, 0.1 s per GB), not one per thread."""
    with _idle_rings_lock:
        ring = _idle_rings.pop() if _idle_rings else None
    if ring is None:
        ring = [memoryview(mmap.mmap(-1, READ_SIZE)) for _ in range(_SLOTS)]
    try:
        yield ring
    finally:
        with _idle_rings_lock:
            if len(_idle_rings) < _IDLE_RINGS_KEPT:
                _idle_rings.append(ring)


def _rewind(part: BinaryIO, upload: Upload, index: int, is_new: bool) -> None:
    """Drop the bytes of a refused new chunk so the part file holds exactly the accepted chunks."""
    if is_new:
        part.truncate(index * upload.chunk_size)


def complete_upload(upload: Upload) -> Upload:
    """Check that every byte arrived and the whole file's SHA-256; the upload can then be attached."""
    if upload.status != Upload.Status.OPEN:
        return upload
    if upload.received_bytes != upload.size:
        raise CatalogError(
            "incomplete_upload",
            f"Only {upload.received_bytes:,} of {upload.size:,} bytes arrived; send chunk {len(upload.chunk_sha256)} next.",
        )
    cached = _RUNNING.pop(upload.id, None)
    if cached and cached[0] == len(upload.chunk_sha256):
        actual = cached[1].hexdigest()
    else:
        digest = hashlib.sha256()
        with part_path(upload).open("rb") as handle:
            while block := handle.read(READ_SIZE):
                digest.update(block)
        actual = digest.hexdigest()
    if upload.expected_sha256 and actual != upload.expected_sha256:
        abort_upload(upload)
        raise CatalogError(
            "checksum_mismatch",
            f"The file arrived with SHA-256 {actual}, not {upload.expected_sha256}; start again.",
        )
    completed = Upload.objects.filter(pk=upload.pk, status=Upload.Status.OPEN).update(
        status=Upload.Status.COMPLETE, sha256=actual, updated_at=timezone.now()
    )
    if completed:
        queue_validation(upload.id)
    upload.refresh_from_db()
    return upload


def queue_validation(upload_id: str) -> None:
    """Have a worker validate the complete upload once this transaction commits (off the request path:
    a 1 GB CSV takes about 10 s to parse and profile)."""
    from marketplace.catalog.tasks import validate_upload_task

    transaction.on_commit(lambda: validate_upload_task.delay(upload_id))


# A check still "running" after this long was lost with its worker (the task's hard limit is shorter).
STALE_CHECK = timedelta(minutes=40)


def validate_upload(upload_id: str) -> bool:
    """Parse and profile a complete upload as a table, keeping the outcome on the upload; True if this call
    did it. The worker's task and a request that cannot wait both call this: a conditional UPDATE lets one
    of them claim the upload (a check lost with its worker is claimed again after ``STALE_CHECK``)."""
    now = timezone.now()
    claimable = Q(validation=Upload.Validation.PENDING) | Q(
        validation=Upload.Validation.RUNNING, updated_at__lt=now - STALE_CHECK
    )
    claimed = Upload.objects.filter(claimable, pk=upload_id, status=Upload.Status.COMPLETE).update(
        validation=Upload.Validation.RUNNING, validation_progress=0, updated_at=now
    )
    if not claimed:
        return False
    upload = Upload.objects.get(pk=upload_id)
    reported = [0]

    def progress(fraction: float) -> None:
        percent = min(99, int(fraction * 100))
        if percent >= reported[0] + 5:
            reported[0] = percent
            Upload.objects.filter(pk=upload_id).update(validation_progress=percent, updated_at=timezone.now())

    outcome: dict[str, Any]
    try:
        fmt, profile = services.inspect_table(str(part_path(upload)), upload.filename, upload.size, progress)
    except IngestError as error:
        outcome = {
            "validation": Upload.Validation.INVALID,
            "error_code": error.code,
            "error": f"{upload.filename}: {error.message}",
        }
    except Exception:
        logger.exception("validating upload %s failed", upload_id)
        outcome = {
            "validation": Upload.Validation.INVALID,
            "error_code": "validation_failed",
            "error": f"{upload.filename} could not be checked (a server error); upload it again.",
        }
    else:
        outcome = {"validation": Upload.Validation.VALID, "format": fmt, "profile": profile.to_dict()}
    Upload.objects.filter(pk=upload_id).update(validation_progress=100, updated_at=timezone.now(), **outcome)
    return True


def abort_upload(upload: Upload) -> None:
    _RUNNING.pop(upload.id, None)
    part_path(upload).unlink(missing_ok=True)
    upload.delete()


def sweep_abandoned_uploads() -> int:
    """Delete upload sessions, with their bytes, that nobody touched for ``SYNTHEX_UPLOAD_SESSION_HOURS``
    and that no version holds (a client killed for good, a page closed mid-upload); returns how many."""
    cutoff = timezone.now() - timedelta(hours=settings.SYNTHEX_UPLOAD_SESSION_HOURS)
    stale = Upload.objects.filter(updated_at__lt=cutoff).exclude(status=Upload.Status.ATTACHED)
    count = 0
    for upload in stale.iterator():
        try:
            part = part_path(upload).open("rb")
        except FileNotFoundError:
            abort_upload(upload)
            count += 1
            continue
        with part:
            try:  # a chunk arriving right now holds the lock: leave that session alone
                fcntl.flock(part.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            if Upload.objects.filter(pk=upload.pk, updated_at__lt=cutoff).exists():
                abort_upload(upload)
                count += 1
    return count


class SessionUploadedFile(UploadedFile):
    """A completed upload session presented as an uploaded file, so versions are made by the same service."""

    def __init__(self, upload: Upload) -> None:
        path = part_path(upload)
        super().__init__(path.open("rb"), upload.filename, "application/octet-stream", upload.size, None)
        self.sha256 = upload.sha256
        self.session = upload
        self._path = path
        # The validation's (format, profile), so attaching does not parse the file again.
        self.validated = (
            (upload.format, ingest.TableProfile.from_dict(upload.profile))
            if upload.validation == Upload.Validation.VALID and upload.profile
            else None
        )

    def temporary_file_path(self) -> str:
        return str(self._path)

    def close(self) -> None:
        try:
            super().close()
        except FileNotFoundError:
            pass


def completed_uploads(owner: User, ids: list[str]) -> list[SessionUploadedFile]:
    """Resolve upload ids of ``owner`` that are complete, valid and not yet attached.

    An upload no worker has checked yet is checked here, in the request (without a worker running, or
    when the client did not wait); one a worker is checking is refused with 409 ``upload_validating``,
    and one found invalid with its validation error.
    """
    found = {u.id: u for u in Upload.objects.filter(pk__in=ids, owner=owner)}
    files = []
    for upload_id in ids:
        upload = found.get(upload_id)
        if upload is None:
            raise CatalogError("unknown_upload", f"No upload {upload_id!r} of yours.", 404)
        if upload.status != Upload.Status.COMPLETE:
            raise CatalogError(
                "upload_not_complete", f"Upload {upload_id} is {upload.get_status_display().lower()}.", 409
            )
        if upload.validation in (Upload.Validation.PENDING, Upload.Validation.RUNNING):
            validate_upload(upload_id)  # claims it only if pending, or running but lost with its worker
            upload.refresh_from_db()
        if upload.validation == Upload.Validation.RUNNING:
            raise CatalogError(
                "upload_validating",
                f"Upload {upload_id} ({upload.filename}) is still being checked "
                f"({upload.validation_progress}% done): attach it once GET /api/v1/uploads/{upload_id}/ "
                "says its validation is valid.",
                409,
            )
        if upload.validation == Upload.Validation.INVALID:
            raise CatalogError(
                upload.error_code, upload.error, services.ingest_error_status(upload.error_code)
            )
        files.append(SessionUploadedFile(upload))
    return files


def mark_attached(files: list[SessionUploadedFile]) -> None:
    for item in files:
        Upload.objects.filter(pk=item.session.pk).update(status=Upload.Status.ATTACHED)
        Path(item.temporary_file_path()).unlink(missing_ok=True)
