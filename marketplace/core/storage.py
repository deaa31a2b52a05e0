"""The one door to stored files: content-addressed names, saving a file once, fetching it to a local path with
its SHA-256 checked.

Files are named by their content (``{prefix}/{sha256[:2]}/{sha256}.{extension}``) so an identical file is
stored once and reused. Callers name the storage by its alias (``default`` for public objects and copies,
``reference`` for private tables and models) and never touch paths of the store themselves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages

CHUNK_BYTES = 1024 * 1024

#: A source that copies itself into the store (an upload the client sent straight to the object store):
#: called with the storage and the name, returns the stored name.
StoreCopy = Callable[[Storage, str], str]


class StoredFileMissing(FileNotFoundError):
    """The stored file is not in its storage (deleted or never written)."""


class StoredFileChanged(Exception):
    """The stored file no longer has the SHA-256 recorded for it; it was not used."""


@dataclass(frozen=True)
class Saved:
    """Where a file was saved: ``name`` the stored name, ``is_new`` True when this call wrote it (so a caller
    whose transaction fails deletes only what it wrote)."""

    name: str
    is_new: bool


def content_name(prefix: str, sha256: str, extension: str, *, variant: str = "") -> str:
    """The content-addressed name of a file with SHA-256 ``sha256``: ``{prefix}/ab/abcd….{extension}``, or for
    a ``variant`` made from that content (a buyer's fingerprinted copy) ``{prefix}/ab/abcd…/{variant}.{extension}``."""
    stem = f"{sha256}/{variant}" if variant else sha256
    return f"{prefix}/{sha256[:2]}/{stem}.{extension}"


def sha256_file(path: Path) -> str:
    """The SHA-256 (hex) of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def store_once(alias: str, name: str, source: Path | File | StoreCopy) -> Saved:
    """Save ``source`` (a local path, a Django file, or a :data:`StoreCopy`) as ``name`` in storage ``alias``
    unless a file of that name is there (names are content-addressed, so it is the same file).

    A Django file is saved as it is: an uploaded file lets the filesystem storage move its temporary file
    into place instead of copying it, and S3 streams it in a multipart upload."""
    storage = storages[alias]
    if storage.exists(name):
        return Saved(name, is_new=False)
    if isinstance(source, Path):
        with open(source, "rb") as handle:
            return Saved(storage.save(name, File(handle, name=source.name)), is_new=True)
    if callable(source):
        return Saved(source(storage, name), is_new=True)
    source.seek(0)
    return Saved(storage.save(name, source), is_new=True)


def save_once(alias: str, name: str, source: Path | File) -> str:
    """:func:`store_once` for callers that need only the stored name."""
    return store_once(alias, name, source).name


def copy_hashed(source: BinaryIO, target: Path) -> tuple[str, int]:
    """Copy ``source`` into a new file ``target``; return the SHA-256 (hex) and the size in bytes copied."""
    with open(target, "xb") as sink:
        return _copy(source, sink)


def _copy(source: BinaryIO, sink: BinaryIO) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: source.read(CHUNK_BYTES), b""):
        digest.update(chunk)
        sink.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def fetch(
    alias: str, name: str, target: Path, expected_sha256: str | None = None, *, in_place: bool = False
) -> Path:
    """A local path holding the stored file ``name`` of storage ``alias``: copied to ``target``, or, with
    ``in_place`` on a filesystem storage, the stored file itself (read only, never hashed).

    Raises :class:`StoredFileMissing` when the file is not there, and :class:`StoredFileChanged` when the copy
    does not have ``expected_sha256`` (the copy is left at ``target`` for the caller's scratch folder to drop)."""
    storage = storages[alias]
    if not storage.exists(name):
        raise StoredFileMissing(name)
    if in_place and isinstance(storage, FileSystemStorage):
        return Path(storage.path(name))
    with storage.open(name, "rb") as source, open(target, "wb") as sink:
        sha256, _ = _copy(cast(BinaryIO, source), sink)
    if expected_sha256 is not None and sha256 != expected_sha256:
        raise StoredFileChanged(name)
    return target
