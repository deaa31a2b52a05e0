"""Uploads straight to the object store: S3 multipart uploads whose parts the client PUTs to presigned URLs.

When the reference storage is S3 (django-storages), an upload session is an S3 multipart upload under
``<reference location>/incoming/<upload id>`` (the private side of the bucket: the file may be real
reference rows). The server creates it, presigns one ``upload_part`` URL per chunk (part ``index + 1``),
lists the parts the store holds (to resume), and completes it once every part arrived with its exact size.
A worker then reads the assembled object once, hashing it on the way, and validates it; attaching copies it
inside the store to its content-addressed name. The web process never carries the file's bytes.

This module is the one place that speaks S3's multipart API.
"""

from __future__ import annotations

import hashlib
from typing import Any, BinaryIO

from django.conf import settings
from django.core.files.storage import Storage, storages

from marketplace.catalog.models import Upload
from marketplace.catalog.services import CatalogError

# S3's own limits: every part but the last at least 5 MiB, at most 10,000 parts.
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000
READ_SIZE = 1024 * 1024


def _s3_storage_class() -> type | None:
    try:
        from storages.backends.s3 import S3Storage
    except ImportError:  # django-storages or boto3 not installed: filesystem only
        return None
    return S3Storage


def is_s3(storage: Storage) -> bool:
    """Whether ``storage`` is django-storages' S3 backend."""
    s3_class = _s3_storage_class()
    return s3_class is not None and isinstance(storage, s3_class)


def enabled() -> bool:
    """Whether new upload sessions go straight to the object store (files live on S3)."""
    return bool(settings.SYNTHEX_UPLOAD_DIRECT_TO_STORE) and is_s3(storages["reference"])


def _incoming() -> Any:
    return storages["reference"]


def _key(storage: Any, name: str) -> str:
    from storages.utils import clean_name, safe_join

    return str(safe_join(storage.location, clean_name(name)))


def _client(storage: Any) -> Any:
    return storage.connection.meta.client


def _unavailable(error: Exception) -> CatalogError:
    return CatalogError("store_unavailable", f"The file store did not answer ({type(error).__name__}).", 503)


def create(upload_id: str) -> tuple[str, str]:
    """Start the multipart upload of session ``upload_id``; returns (object key, S3 UploadId)."""
    from botocore.exceptions import BotoCoreError, ClientError

    storage = _incoming()
    key = _key(storage, f"incoming/{upload_id}")
    try:
        answer = _client(storage).create_multipart_upload(
            Bucket=storage.bucket_name, Key=key, ContentType="application/octet-stream"
        )
    except (BotoCoreError, ClientError) as error:
        raise _unavailable(error) from None
    return key, str(answer["UploadId"])


def part_urls(upload: Upload) -> list[str]:
    """A presigned PUT URL for every part of ``upload`` (part ``index + 1`` for chunk ``index``), valid
    for ``SYNTHEX_UPLOAD_PART_URL_SECONDS``; computed locally, no call to the store."""
    storage = _incoming()
    client = _client(storage)
    count = -(-upload.size // upload.chunk_size)
    return [
        client.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": storage.bucket_name,
                "Key": upload.object_key,
                "UploadId": upload.multipart_id,
                "PartNumber": index + 1,
            },
            ExpiresIn=settings.SYNTHEX_UPLOAD_PART_URL_SECONDS,
            HttpMethod="PUT",
        )
        for index in range(count)
    ]


def _listed_parts(upload: Upload) -> list[dict[str, Any]]:
    from botocore.exceptions import BotoCoreError, ClientError

    storage = _incoming()
    client = _client(storage)
    parts: list[dict[str, Any]] = []
    marker = 0
    try:
        while True:
            page = client.list_parts(
                Bucket=storage.bucket_name,
                Key=upload.object_key,
                UploadId=upload.multipart_id,
                PartNumberMarker=marker,
            )
            parts.extend(page.get("Parts", []))
            if not page.get("IsTruncated"):
                return parts
            marker = int(page["NextPartNumberMarker"])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchUpload":
            raise CatalogError(
                "upload_closed", "The store no longer holds this upload's parts.", 409
            ) from None
        raise _unavailable(error) from None
    except BotoCoreError as error:
        raise _unavailable(error) from None


def received_parts(upload: Upload) -> list[dict[str, Any]]:
    """The parts the store holds from part 1 on without a gap, each of its chunk's exact size:
    ``[{"PartNumber", "Size", "ETag"}]``. A part of the wrong size ends the run (the client sends it again)."""
    by_number = {int(part["PartNumber"]): part for part in _listed_parts(upload)}
    run = []
    count = -(-upload.size // upload.chunk_size)
    for index in range(count):
        part = by_number.get(index + 1)
        expected = min(upload.chunk_size, upload.size - index * upload.chunk_size)
        if part is None or int(part["Size"]) != expected:
            break
        run.append(part)
    return run


def part_md5(part: dict[str, Any]) -> str:
    """A part's MD5 (hex) as S3 reports it in its ETag, so a client can check its local chunk before resuming."""
    return str(part["ETag"]).strip('"')


def complete(upload: Upload) -> None:
    """Assemble the object from its parts; refuses (400 ``incomplete_upload``) while a part is missing."""
    from botocore.exceptions import BotoCoreError, ClientError

    parts = received_parts(upload)
    count = -(-upload.size // upload.chunk_size)
    if len(parts) != count:
        received = sum(int(part["Size"]) for part in parts)
        raise CatalogError(
            "incomplete_upload",
            f"Only {received:,} of {upload.size:,} bytes arrived; send part {len(parts) + 1} (chunk {len(parts)}) next.",
        )
    storage = _incoming()
    try:
        _client(storage).complete_multipart_upload(
            Bucket=storage.bucket_name,
            Key=upload.object_key,
            UploadId=upload.multipart_id,
            MultipartUpload={"Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]},
        )
    except (BotoCoreError, ClientError) as error:
        raise _unavailable(error) from None


def fetch(upload: Upload, sink: BinaryIO) -> tuple[str, int]:
    """Copy the assembled object into ``sink`` (a worker's temporary file); returns (SHA-256 hex, bytes)."""
    storage = _incoming()
    body = _client(storage).get_object(Bucket=storage.bucket_name, Key=upload.object_key)["Body"]
    digest = hashlib.sha256()
    size = 0
    try:
        for block in body.iter_chunks(READ_SIZE):
            sink.write(block)
            digest.update(block)
            size += len(block)
    finally:
        body.close()
    sink.flush()
    return digest.hexdigest(), size


def copy_into(upload: Upload, storage: Any, name: str) -> str:
    """Copy the assembled object, inside the store, to ``name`` of ``storage`` (an S3 storage); returns
    ``name``. boto3's managed copy takes parts server-side for objects over its multipart threshold."""
    source = _incoming()
    _client(storage).copy(
        {"Bucket": source.bucket_name, "Key": upload.object_key}, storage.bucket_name, _key(storage, name)
    )
    return name


def discard(upload: Upload) -> None:
    """Drop what the store holds for ``upload``: the unfinished multipart upload's parts, or the object."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not upload.object_key:
        return
    storage = _incoming()
    client = _client(storage)
    try:
        if upload.status == Upload.Status.OPEN and upload.multipart_id:
            client.abort_multipart_upload(
                Bucket=storage.bucket_name, Key=upload.object_key, UploadId=upload.multipart_id
            )
        else:
            client.delete_object(Bucket=storage.bucket_name, Key=upload.object_key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("NoSuchUpload", "NoSuchKey"):
            raise _unavailable(error) from None
    except BotoCoreError as error:
        raise _unavailable(error) from None
