"""Resumable uploads: large files arrive in chunks, hashed on the way, and are validated by a worker.

Scripts, the CLI and the upload page use these sessions, which survive a killed process (resume from
``next_chunk``). Two transports, chosen when the session opens:

- **server** (files on the local file system, the embedded default): each chunk is a raw request body,
  read through Django's request stream and written with ordinary buffered writes into one ``.part`` file
  under the upload temp dir, the whole file's SHA-256 computed on the way;
- **s3** (files on S3): the client PUTs each chunk straight to the store with a presigned multipart part
  URL (``direct_uploads``); the server completes the multipart upload and a worker hashes and validates
  the object. The web process never carries the bytes.

Only members of a provider organization open sessions, and each organization has a quota of open
(not yet attached) sessions and of their declared bytes.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import logging
import os
import re
import secrets
from collections import OrderedDict
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from marketplace.accounts.models import Organization, User
from marketplace.catalog import direct_uploads, ingest, profiles, services
from marketplace.catalog.ingest import IngestError
from marketplace.catalog.models import Product, Upload
from marketplace.catalog.selectors import can_manage
from marketplace.catalog.services import CatalogError
from marketplace.core import leases

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 32 * 1024 * 1024
MIN_CHUNK_SIZE = 256 * 1024
MAX_CHUNK_SIZE = 64 * 1024 * 1024
READ_SIZE = 1024 * 1024
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
OPEN_STATUSES = (Upload.Status.OPEN, Upload.Status.COMPLETE)

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


def upload_organization(user: User, *, organization: str = "", product: str = "") -> Organization:
    """The provider organization a new session of ``user`` counts against: the one named (by slug), the
    organization of the named product (which the user must be able to manage), or the user's only one.
    Raises 403 ``not_a_provider`` for anyone outside a provider organization."""
    if product:
        found = Product.objects.select_related("organization").filter(slug=product).first()
        if found is None or not can_manage(user, found):
            raise CatalogError("unknown_product", f"No product {product!r} of yours.", 404)
        if not found.organization.is_provider:
            raise CatalogError("not_a_provider", f"{found.organization.name} is not a provider.", 403)
        return found.organization
    providers = user.provider_organizations()
    if organization:
        chosen = providers.filter(slug=organization).first()
        if chosen is None:
            raise CatalogError(
                "not_a_provider", f"You are not a member of a provider organization {organization!r}.", 403
            )
        return chosen
    choices = list(providers[:2])
    if not choices:
        raise CatalogError("not_a_provider", "Only members of a provider organization can upload files.", 403)
    if len(choices) > 1:
        raise CatalogError(
            "ambiguous_organization", "You belong to several providers; say which with 'organization'."
        )
    return choices[0]


def _check_quota(organization: Organization, size: int) -> None:
    """Refuse a new session past the organization's quota of open sessions (429) or bytes (413)."""
    open_sessions = Upload.objects.filter(organization=organization, status__in=OPEN_STATUSES)
    count = open_sessions.count()
    limit = settings.SYNTHEX_UPLOAD_MAX_OPEN_SESSIONS
    if count >= limit:
        raise CatalogError(
            "too_many_uploads",
            f"{organization.name} already has {count} unfinished uploads (the limit is {limit}): "
            "finish, attach or delete some first.",
            429,
        )
    declared = open_sessions.aggregate(total=Sum("size"))["total"] or 0
    budget = settings.SYNTHEX_UPLOAD_MAX_OPEN_BYTES
    if declared + size > budget:
        raise CatalogError(
            "upload_quota_exceeded",
            f"{organization.name}'s unfinished uploads would hold {declared + size:,} bytes, over its "
            f"quota of {budget:,}: finish, attach or delete some first.",
            413,
        )


def start_upload(
    *,
    owner: User,
    organization: Organization,
    filename: str,
    size: int,
    sha256: str = "",
    chunk_size: int | None = None,
) -> Upload:
    """Open a session for one file of ``size`` bytes counted against ``organization``'s quota (the
    caller checked that ``owner`` may upload for it); ``sha256`` (hex), when given, is checked at the end."""
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
    direct = direct_uploads.enabled()
    chunk = chunk_size or DEFAULT_CHUNK_SIZE
    low = max(MIN_CHUNK_SIZE, direct_uploads.MIN_PART_SIZE) if direct else MIN_CHUNK_SIZE
    if not low <= chunk <= MAX_CHUNK_SIZE:
        raise CatalogError(
            "bad_chunk_size", f"chunk_size must be between {low:,} and {MAX_CHUNK_SIZE:,} bytes."
        )
    if direct and -(-size // chunk) > direct_uploads.MAX_PARTS:
        raise CatalogError(
            "bad_chunk_size", f"Use a chunk_size of at least {-(-size // direct_uploads.MAX_PARTS):,}."
        )
    expected = (sha256 or "").lower()
    if expected and not _HEX64.match(expected):
        raise CatalogError("bad_sha256", "sha256 must be 64 hexadecimal digits.")
    upload_id = f"upl_{secrets.token_hex(12)}"
    with transaction.atomic():
        # The organization's row lock makes quota check and insert one step for concurrent starts.
        Organization.objects.select_for_update().filter(pk=organization.pk).first()
        _check_quota(organization, size)
        upload = Upload.objects.create(
            id=upload_id,
            owner=owner,
            organization=organization,
            filename=name,
            size=size,
            chunk_size=chunk,
            expected_sha256=expected,
            transport=Upload.Transport.S3 if direct else Upload.Transport.SERVER,
        )
    if direct:
        try:
            upload.object_key, upload.multipart_id = direct_uploads.create(upload.id)
        except CatalogError:
            upload.delete()
            raise
        upload.save(update_fields=["object_key", "multipart_id"])
    else:
        part_path(upload).touch()
    return upload


def chunk_count(upload: Upload) -> int:
    return -(-upload.size // upload.chunk_size)


class Readable(Protocol):
    """A request body: Django's ``HttpRequest`` (its ``read`` is the WSGI input, limited to Content-Length)."""

    def read(self, size: int = -1) -> bytes: ...


def receive_chunk(
    upload: Upload,
    *,
    index: int,
    length: int,
    body: Readable,
    chunk_sha256: str = "",
) -> Upload:
    """Append chunk ``index``, read from ``body`` in ``READ_SIZE`` blocks; a re-sent chunk is compared, not
    rewritten.

    Refuses, without changing anything: a chunk out of order, of the wrong length, cut short, whose
    SHA-256 differs from ``chunk_sha256`` (when the client sends one), or that differs from the copy
    already received. ``chunk_sha256`` of the session lists the checked hashes ("" where none was sent).
    """
    expected = _checked_chunk_request(upload, index, length, chunk_sha256)
    digest = hashlib.sha256() if expected else None
    cached = _RUNNING.pop(upload.id, None)
    running = (
        cached[1].copy() if cached and cached[0] == index else (hashlib.sha256() if index == 0 else None)
    )
    # One writer per upload at a time: an exclusive lock on the part file (not the database, which other
    # requests need) is held while the body streams in.
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
            same = _copy_chunk(part, index * upload.chunk_size, is_new, body, length, feeds)
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
        _remember_running_hash(upload.id, index, running)
        upload.chunk_sha256 = [*hashes, expected]
        upload.received_bytes = index * upload.chunk_size + length
        upload.save(update_fields=["chunk_sha256", "received_bytes", "updated_at"])
        return upload


def _checked_chunk_request(upload: Upload, index: int, length: int, chunk_sha256: str) -> str:
    """Refuse a chunk this session cannot take (another transport, closed, no such index, wrong length, out
    of order, a malformed hash); returns the client's chunk SHA-256 in lower case ("" when none was sent)."""
    if upload.transport != Upload.Transport.SERVER:
        raise CatalogError(
            "direct_upload", "This upload goes straight to the object store: PUT its parts to part_urls.", 409
        )
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
    return expected


def _remember_running_hash(upload_id: str, index: int, running: Any) -> None:
    """Keep the whole file's hash up to chunk ``index`` for the next chunk (the oldest are dropped past
    ``_RUNNING_MAX`` uploads); nothing to keep when it was not known."""
    if running is None:
        return
    _RUNNING[upload_id] = (index + 1, running)
    while len(_RUNNING) > _RUNNING_MAX:
        _RUNNING.popitem(last=False)


class _CutOff(Exception):
    def __init__(self, received: int) -> None:
        super().__init__(received)
        self.received = received


def _copy_chunk(
    part: BinaryIO, offset: int, is_new: bool, body: Readable, length: int, digests: list[Any]
) -> bool:
    """Take ``length`` bytes from ``body``: write them at ``offset`` of ``part`` (a new chunk) or compare
    them with the bytes stored there (a re-sent one, returning whether all matched), feeding ``digests``.
    Plain buffered reads and writes, one ``READ_SIZE`` block in memory at a time."""
    part.seek(offset)
    received = 0
    same = True
    while received < length:
        try:
            block = body.read(min(READ_SIZE, length - received))
        except OSError:  # the client went away (Django's UnreadablePostError is an OSError)
            block = b""
        if not block:
            raise _CutOff(received)
        if is_new:
            part.write(block)
        elif same:
            same = part.read(len(block)) == block
        for digest in digests:
            digest.update(block)
        received += len(block)
    if is_new:
        part.flush()
    return same


def _rewind(part: BinaryIO, upload: Upload, index: int, is_new: bool) -> None:
    """Drop the bytes of a refused new chunk so the part file holds exactly the accepted chunks."""
    if is_new:
        part.truncate(index * upload.chunk_size)


def complete_upload(upload: Upload, *, sha256: str = "") -> Upload:
    """Check that every byte arrived (and, on the server transport, the whole file's SHA-256); a worker
    then validates the file. ``sha256`` (hex), when given, is the client's hash of the whole file, checked
    like the one given at the start. On the S3 transport the store assembles the parts and the worker
    hashes the object; ``sha256`` is known once it has."""
    if upload.status != Upload.Status.OPEN:
        return upload
    expected = (sha256 or "").lower() or upload.expected_sha256
    if expected and not _HEX64.match(expected):
        raise CatalogError("bad_sha256", "sha256 must be 64 hexadecimal digits.")
    if upload.expected_sha256 and expected != upload.expected_sha256:
        raise CatalogError("checksum_mismatch", "sha256 differs from the one given when the upload started.")
    if upload.transport == Upload.Transport.S3:
        direct_uploads.complete(upload)
        actual = ""
    else:
        actual = _server_side_sha256(upload)
        if expected and actual != expected:
            abort_upload(upload)
            raise CatalogError(
                "checksum_mismatch", f"The file arrived with SHA-256 {actual}, not {expected}; start again."
            )
    completed = Upload.objects.filter(pk=upload.pk, status=Upload.Status.OPEN).update(
        status=Upload.Status.COMPLETE,
        sha256=actual,
        expected_sha256=expected,
        received_bytes=upload.size,
        updated_at=timezone.now(),
    )
    if completed:
        queue_validation(upload.id)
    upload.refresh_from_db()
    return upload


def _server_side_sha256(upload: Upload) -> str:
    if upload.received_bytes != upload.size:
        raise CatalogError(
            "incomplete_upload",
            f"Only {upload.received_bytes:,} of {upload.size:,} bytes arrived; send chunk {len(upload.chunk_sha256)} next.",
        )
    cached = _RUNNING.pop(upload.id, None)
    if cached and cached[0] == len(upload.chunk_sha256):
        return str(cached[1].hexdigest())
    digest = hashlib.sha256()
    with part_path(upload).open("rb") as handle:
        while block := handle.read(READ_SIZE):
            digest.update(block)
    return digest.hexdigest()


def queue_validation(upload_id: str) -> None:
    """Have a worker validate the complete upload once this transaction commits (off the request path:
    a 1 GB CSV takes about 10 s to parse and profile)."""
    from marketplace.catalog.tasks import validate_upload_task

    transaction.on_commit(lambda: validate_upload_task.delay(upload_id))


# A check still "running" whose heartbeat (``updated_at``, written every quarter lease while a worker checks)
# is older than the lease was lost with its worker; catalog/sweep.py sends it again.


def validate_upload(upload_id: str) -> bool:
    """Parse and profile a complete upload as a table, keeping the outcome on the upload; True if this call
    did it. The worker's task and a request that cannot wait both call this: a conditional UPDATE lets one
    of them claim the upload (a check lost with its worker is claimed again once its heartbeat is stale)."""
    now = timezone.now()
    claimable = Q(validation=Upload.Validation.PENDING) | Q(
        validation=Upload.Validation.RUNNING, updated_at__lt=leases.stale_before(now)
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

    running = Upload.objects.filter(pk=upload_id, validation=Upload.Validation.RUNNING)
    try:
        with leases.heartbeat(lambda: bool(running.update(updated_at=timezone.now()))):
            outcome = _check(upload, progress)
    finally:
        if upload.transport == Upload.Transport.S3:  # the worker's local copy, whatever happened
            part_path(upload).unlink(missing_ok=True)
    Upload.objects.filter(pk=upload_id).update(validation_progress=100, updated_at=timezone.now(), **outcome)
    return True


def _check(upload: Upload, progress: Any) -> dict[str, Any]:
    """The validation's outcome as the upload's new field values."""
    try:
        hashed = {}
        if upload.transport == Upload.Transport.S3:
            with part_path(upload).open("wb") as local:
                sha256, size = direct_uploads.fetch(upload, local)
            if size != upload.size or (upload.expected_sha256 and sha256 != upload.expected_sha256):
                return {
                    "validation": Upload.Validation.INVALID,
                    "error_code": "checksum_mismatch",
                    "error": f"{upload.filename} arrived as {size:,} bytes with SHA-256 {sha256}, not the "
                    "file announced; upload it again.",
                    "sha256": sha256,
                }
            hashed = {"sha256": sha256}
        fmt, profile = services.inspect_table(
            str(part_path(upload)),
            upload.filename,
            upload.size,
            progress,
            max_seconds=settings.SYNTHEX_VALIDATION_SECONDS,
        )
    except IngestError as error:
        return {
            "validation": Upload.Validation.INVALID,
            "error_code": error.code,
            "error": f"{upload.filename}: {error.message}",
            **hashed,
        }
    except Exception:
        logger.exception("validating upload %s failed", upload.id)
        return {
            "validation": Upload.Validation.INVALID,
            "error_code": "validation_failed",
            "error": f"{upload.filename} could not be checked (a server error); upload it again.",
        }
    return {"validation": Upload.Validation.VALID, "format": fmt, "profile": profile.to_dict(), **hashed}


def abort_upload(upload: Upload) -> None:
    """Delete the session with its bytes (the part file, or what the store holds)."""
    _RUNNING.pop(upload.id, None)
    if upload.transport == Upload.Transport.S3:
        direct_uploads.discard(upload)
    part_path(upload).unlink(missing_ok=True)
    upload.delete()


def sweep_abandoned_uploads() -> int:
    """Delete upload sessions, with their bytes, that nobody touched for ``SYNTHEX_UPLOAD_SESSION_HOURS``
    and that no version holds (a client killed for good, a page closed mid-upload), and request temp files
    as old (a worker killed mid-request leaves its multipart temp file); returns how many sessions."""
    cutoff = timezone.now() - timedelta(hours=settings.SYNTHEX_UPLOAD_SESSION_HOURS)
    stale = Upload.objects.filter(updated_at__lt=cutoff).exclude(status=Upload.Status.ATTACHED)
    count = 0
    for upload in stale.iterator():
        if upload.transport == Upload.Transport.S3:
            abort_upload(upload)
            count += 1
            continue
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
    _sweep_request_temp_files(cutoff.timestamp())
    return count


def _sweep_request_temp_files(before: float) -> None:
    folder = Path(settings.FILE_UPLOAD_TEMP_DIR)
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        try:
            if entry.is_file() and not entry.is_symlink() and entry.stat().st_mtime < before:
                entry.unlink()
        except OSError:
            continue


class SessionUploadedFile(UploadedFile):
    """A completed, validated upload session presented as an uploaded file, so versions are made by the
    same service. On the S3 transport there is no local file: ``copy_into`` copies the object inside the
    store instead."""

    def __init__(self, upload: Upload) -> None:
        path = part_path(upload)
        is_local = upload.transport == Upload.Transport.SERVER
        super().__init__(
            path.open("rb") if is_local else io.BytesIO(),  # on S3 the bytes stay in the store
            upload.filename,
            "application/octet-stream",
            upload.size,
            None,
        )
        self.sha256 = upload.sha256
        self.session = upload
        self._path = path
        # The validation's (format, profile), so attaching does not parse the file again.
        self.validated = (
            (upload.format, ingest.TableProfile.from_dict(upload.profile))
            if upload.validation == Upload.Validation.VALID and upload.profile
            else None
        )
        if not is_local:
            self.copy_into = self._copy_into

    def _copy_into(self, storage: Any, name: str) -> str:
        if not direct_uploads.is_s3(storage):
            raise CatalogError(
                "store_mismatch", "Direct uploads need the files on the same object store.", 500
            )
        return direct_uploads.copy_into(self.session, storage, name)

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
    when the client did not wait), within the same bounds as the worker's check; except on the S3
    transport, whose bytes the web process never reads. One a worker is checking is refused with 409
    ``upload_validating``, and one found invalid with its validation error.
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
            if upload.transport == Upload.Transport.SERVER:
                validate_upload(upload_id)  # claims it only if pending, or running but lost with its worker
            upload.refresh_from_db()
        if upload.validation in (Upload.Validation.PENDING, Upload.Validation.RUNNING):
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
    """The sessions now belong to a version: drop their bytes (moved or copied into storage) and keep only
    the table's shape on the session (no rows: the file may be real reference data)."""
    for item in files:
        upload = item.session
        Upload.objects.filter(pk=upload.pk).update(
            status=Upload.Status.ATTACHED,
            profile=profiles.shape_only(upload.profile) if upload.profile else None,
        )
        if upload.transport == Upload.Transport.SERVER:
            Path(item.temporary_file_path()).unlink(missing_ok=True)
            continue
        try:
            direct_uploads.discard(upload)  # a complete session: deletes the object, copied by now
        except CatalogError:
            logger.warning("could not delete the attached upload %s from the store", upload.pk)
