"""Generator files in storage through the one storage door (:mod:`marketplace.core.storage`): the model
(private, ``reference`` storage, named by its SHA-256) and draws.

Every stored model is checked against its recorded SHA-256 when it is fetched for use; a changed file is the
generator refusal ``integrity``.
"""

from __future__ import annotations

from pathlib import Path

from marketplace.core import storage
from marketplace.core.storage import copy_hashed, save_once, sha256_file
from marketplace.generators.errors import GeneratorError

__all__ = ["copy_hashed", "fetch", "model_name", "save_once", "sha256_file"]


def model_name(organization_id: int, sha256: str, suffix: str) -> str:
    """The content-addressed name of an organization's generator model in the ``reference`` storage."""
    return storage.content_name(f"org-{organization_id}/generators", sha256, suffix)


def fetch(alias: str, name: str, target: Path, expected_sha256: str | None = None) -> Path:
    """Copy a stored file to ``target``; refuse (``integrity``) when it no longer has ``expected_sha256``."""
    try:
        return storage.fetch(alias, name, target, expected_sha256)
    except storage.StoredFileChanged:
        raise GeneratorError(
            "integrity", "The stored generator file no longer matches its recorded SHA-256; it was not used."
        ) from None
