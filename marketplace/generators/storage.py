"""Generator files in storage: the model (private, ``reference`` storage, named by its SHA-256) and draws.

Every stored model is checked against its recorded SHA-256 when it is fetched for use.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

from django.core.files import File
from django.core.files.storage import storages

from marketplace.generators.errors import GeneratorError

CHUNK_BYTES = 1024 * 1024


def sha256_file(path: Path) -> str:
    """The SHA-256 (hex) of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_once(alias: str, name: str, path: Path) -> str:
    """Save the file at ``path`` as ``name`` in storage ``alias`` unless a file of that name is there (names
    are content-addressed); return the stored name."""
    storage = storages[alias]
    if storage.exists(name):
        return name
    with open(path, "rb") as handle:
        return storage.save(name, File(handle, name=path.name))


def model_name(organization_id: int, sha256: str, suffix: str) -> str:
    """The content-addressed name of an organization's generator model in the ``reference`` storage."""
    return f"org-{organization_id}/generators/{sha256[:2]}/{sha256}.{suffix}"


def fetch(alias: str, name: str, target: Path, expected_sha256: str | None = None) -> Path:
    """Copy a stored file to ``target``; refuse (``integrity``) when it no longer has ``expected_sha256``."""
    digest = hashlib.sha256()
    with storages[alias].open(name, "rb") as source, open(target, "wb") as sink:
        for chunk in iter(lambda: source.read(CHUNK_BYTES), b""):
            digest.update(chunk)
            sink.write(chunk)
    if expected_sha256 is not None and digest.hexdigest() != expected_sha256:
        raise GeneratorError(
            "integrity", "The stored generator file no longer matches its recorded SHA-256; it was not used."
        )
    return target


def copy_hashed(source: BinaryIO, target: Path) -> tuple[str, int]:
    """Copy ``source`` into a new file ``target``; return the SHA-256 (hex) and the size in bytes copied."""
    digest = hashlib.sha256()
    size = 0
    with open(target, "xb") as sink:
        for chunk in iter(lambda: source.read(CHUNK_BYTES), b""):
            digest.update(chunk)
            sink.write(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
