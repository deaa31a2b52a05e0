"""The tables certification reads: stored version files fetched to a local folder and read, whole or as a
bounded uniform sample (``SYNTHEX_CERTIFY_MAX_ROWS``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings

from marketplace.catalog.models import VersionFile
from marketplace.core import storage

logger = logging.getLogger(__name__)


def fetch_file(item: VersionFile, folder: Path) -> Path:
    """Copy a stored file into ``folder`` (named by role, id and format) and return its path. Raises
    ``CertificationFailed`` when the copy does not have the SHA-256 recorded at upload (the stored file was
    swapped or damaged): certification never reads other bytes than the provider sent."""
    try:
        return storage.fetch(
            item.storage_alias,
            item.storage_name,
            folder / f"{item.role}-{item.pk}.{item.format}",
            item.sha256,
        )
    except storage.StoredFileChanged:
        # services imports this module: its error is imported when needed.
        from marketplace.certification.services import CertificationFailed

        logger.error("ALERT: stored %s file %s no longer matches its SHA-256", item.role, item.pk)
        raise CertificationFailed(changed_file_message(item)) from None


def changed_file_message(item: VersionFile) -> str:
    """The provider's message for a stored file whose bytes no longer have their recorded SHA-256."""
    return (
        f"The stored {item.role} file {item.original_filename or item.table_name} no longer matches the "
        "SHA-256 recorded at upload; it was not used. Contact the team."
    )


def load_table(
    path: Path, item: VersionFile, role: str, sampling: dict[str, dict[str, int]], seed: int
) -> Any:
    """Read a table whole, or, past ``SYNTHEX_CERTIFY_MAX_ROWS``, a bounded uniform sample of it (streamed,
    so a file larger than the worker's memory still certifies); samples are recorded for the certificate."""
    from marketplace.catalog.ingest import read_table, sample_table

    limit = settings.SYNTHEX_CERTIFY_MAX_ROWS
    if item.rows <= limit:
        return read_table(path, item.format)
    dtypes = {c["name"]: c["dtype"] for c in item.profile.get("columns", [])}
    frame, total = sample_table(path, item.format, max_rows=limit, seed=seed, dtypes=dtypes)
    sampling[role] = {"rows": total, "sampled_rows": len(frame)}
    return frame
