"""Versions made of several related tables (issue 20): SDV multi-table metadata, checked at the edge.

A relational version has one synthetic file per table and, as private reference data, one train file (and
optionally one holdout file) per table; each ``VersionFile.table_name`` is the table's name (from the
file name) in every role. ``ProductVersion.sdv_metadata`` holds SDV multi-table metadata (``tables``,
``relationships``): detected with ``sdv.metadata.Metadata.detect_from_dataframes`` when the provider sends
none, confirmed or corrected by the provider before certification. Every set is checked by the engine's
``relational_schema`` (keys, orphans, cycles, missing tables) before anything is stored: a refusal is a
``CatalogError`` (400) whose ``extra["problems"]`` names table, column and count, and leaves nothing behind.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.core.files.storage import storages
from django.db import transaction
from django.db.models import Max

from marketplace.accounts.models import User
from marketplace.catalog import ingest
from marketplace.catalog.models import FileRole, Product, ProductVersion, VersionFile, VersionStatus
from marketplace.catalog.profiles import stored_reference_profile
from marketplace.catalog.services import (
    CatalogError,
    ReceivedTable,
    ensure_can_manage,
    receive_uploads,
    store_table,
)
from marketplace.catalog.uploads import HashedFile
from marketplace.core import storage

if TYPE_CHECKING:
    import pandas as pd

    from marketplace.certification.engine.relational_schema import RelationalError

ROLES = (FileRole.SYNTHETIC, FileRole.TRAIN, FileRole.HOLDOUT)


def is_relational_metadata(metadata: object) -> bool:
    """Whether ``metadata`` is SDV multi-table metadata (a ``tables`` mapping) rather than one table's."""
    return isinstance(metadata, dict) and isinstance(metadata.get("tables"), dict)


def is_relational(version: ProductVersion) -> bool:
    return is_relational_metadata(version.sdv_metadata)


def parse_metadata_text(value: object) -> dict | None:
    """Metadata sent as JSON text or as an object; None when absent. Raises CatalogError when unreadable."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise CatalogError("bad_metadata", "The metadata is not valid JSON.") from None
    if not isinstance(value, dict):
        raise CatalogError("bad_metadata", "The metadata must be a JSON object (SDV multi-table metadata).")
    return value


def detect_metadata(tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """SDV 2.0's multi-table metadata for ``tables`` (sdtypes, primary keys, foreign keys by name)."""
    from sdv.metadata import Metadata

    detected = Metadata.detect_from_dataframes({name: frame for name, frame in tables.items()}).to_dict()
    return {"tables": detected.get("tables", {}), "relationships": detected.get("relationships", [])}


def _refusal(error: RelationalError) -> CatalogError:
    return CatalogError(error.code, str(error), extra={"problems": error.problems})


def check_sets(metadata: dict, sets: dict[str, dict[str, pd.DataFrame]]) -> None:
    """Check each set (``synthetic``, ``train``, ``holdout``) against the metadata; CatalogError naming
    table, column and count for any problem."""
    # The engine (numpy, pandas, scikit-learn) is loaded only when a set is checked, never by the web
    # process's URL configuration.
    from marketplace.certification.engine.relational_schema import (
        RelationalError,
        parse_metadata,
        validate_tables,
    )

    try:
        schema = parse_metadata(metadata)
        for label, tables in sets.items():
            validate_tables(tables, schema, label)
    except RelationalError as error:
        raise _refusal(error) from None


def _received(role: str, files: Sequence[HashedFile]) -> list[ReceivedTable]:
    received = receive_uploads([(role, upload) for upload in files])
    names = [item.table_name for item in received]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise CatalogError(
            "duplicate_table_name", f"Two {role} files are both the table {repeated[0]!r}; rename one."
        )
    return received


def _frames(received: list[ReceivedTable]) -> dict[str, pd.DataFrame]:
    return {
        item.table_name: ingest.read_table(item.upload.temporary_file_path(), item.fmt) for item in received
    }


def _same_tables(by_role: dict[str, list[ReceivedTable]]) -> None:
    expected = sorted(item.table_name for item in by_role[FileRole.SYNTHETIC])
    for role in (FileRole.TRAIN, FileRole.HOLDOUT):
        got = sorted(item.table_name for item in by_role[role])
        if by_role[role] and got != expected:
            missing = sorted(set(expected) - set(got))
            extra = sorted(set(got) - set(expected))
            raise CatalogError(
                "reference_tables_differ",
                f"The {role} files must be the tables {', '.join(expected)}"
                + (f"; missing: {', '.join(missing)}" if missing else "")
                + (f"; extra: {', '.join(extra)}" if extra else "")
                + ".",
                extra={"problems": [{"code": "missing_table", "table": name} for name in missing]},
            )


def create_relational_version(
    product: Product,
    *,
    user: User,
    synthetic: Sequence[HashedFile],
    train: Sequence[HashedFile],
    holdout: Sequence[HashedFile] = (),
    metadata: dict | None = None,
    changelog: str = "",
) -> ProductVersion:
    """A draft version holding a set of related tables and its reference sets (train, optional holdout).

    Without ``metadata`` it is detected from the synthetic tables. All-or-nothing: any refused file or
    set raises CatalogError (naming table, column and count) and leaves no file, version or row behind.
    """
    ensure_can_manage(user, product)
    if len(synthetic) < 2:
        raise CatalogError("too_few_tables", "A relational version needs at least two synthetic tables.")
    if not train:
        raise CatalogError("reference_required", "Upload the real train tables (one file per table).")
    by_role: dict[str, list[ReceivedTable]] = {
        FileRole.SYNTHETIC: _received(FileRole.SYNTHETIC, synthetic),
        FileRole.TRAIN: _received(FileRole.TRAIN, train),
        FileRole.HOLDOUT: _received(FileRole.HOLDOUT, holdout),
    }
    try:
        _same_tables(by_role)
        sets = {str(role): _frames(items) for role, items in by_role.items() if items}
        if metadata is None:
            metadata = detect_metadata(sets["synthetic"])
        check_sets(metadata, sets)
        return _save(product, user, by_role, metadata, changelog)
    finally:
        for items in by_role.values():
            for item in items:
                item.upload.close()


def _save(
    product: Product, user: User, by_role: dict[str, list[ReceivedTable]], metadata: dict, changelog: str
) -> ProductVersion:
    written: list[tuple[str, str]] = []
    try:
        stored = []
        for items in by_role.values():
            for item in items:
                name, is_new = store_table(item, product.organization)
                if is_new:
                    written.append(("default" if item.role == FileRole.SYNTHETIC else "reference", name))
                stored.append((item, name))
        with transaction.atomic():
            locked = Product.objects.select_for_update().get(pk=product.pk)
            version = ProductVersion.objects.create(
                product=locked,
                number=(locked.versions.aggregate(n=Max("number"))["n"] or 0) + 1,
                created_by=user,
                changelog=changelog,
                sdv_metadata=metadata,
            )
            VersionFile.objects.bulk_create(
                VersionFile(
                    version=version,
                    role=item.role,
                    table_name=item.table_name,
                    original_filename=(item.upload.name or "")[:255],
                    format=item.fmt,
                    storage_name=name,
                    sha256=item.upload.sha256,
                    size_bytes=item.upload.size or 0,
                    rows=item.profile.rows,
                    column_count=len(item.profile.columns),
                    profile=(
                        item.profile.to_dict()
                        if item.role == FileRole.SYNTHETIC
                        else stored_reference_profile(item.profile.to_dict())
                    ),
                )
                for item, name in stored
            )
    except BaseException:
        for alias, name in written:
            storages[alias].delete(name)
        raise
    return version


def load_sets(version: ProductVersion, folder: str) -> dict[str, dict[str, pd.DataFrame]]:
    """The version's tables by role (``synthetic``, ``train``, ``holdout`` when present) and table name.
    Raises ``storage.StoredFileChanged`` when a stored table no longer has the SHA-256 recorded at upload."""
    from pathlib import Path

    sets: dict[str, dict[str, pd.DataFrame]] = {}
    for item in version.files.filter(deleted_at__isnull=True).order_by("role", "table_name"):
        path = storage.fetch(
            item.storage_alias,
            item.storage_name,
            Path(folder) / f"{item.role}-{item.table_name}.{item.format}",
            item.sha256,
        )
        sets.setdefault(item.role, {})[item.table_name] = ingest.read_table(path, item.format)
    return sets


def confirm_metadata(version: ProductVersion, metadata: dict, *, user: User) -> ProductVersion:
    """Replace a draft's detected metadata with the provider's corrected one, after checking every stored
    set against it (CatalogError naming table, column and count; the draft is left unchanged)."""
    import tempfile

    ensure_can_manage(user, version.product)
    if version.status != VersionStatus.DRAFT:
        raise CatalogError("not_a_draft", f"Version {version.number} was already submitted.", status=409)
    if not is_relational_metadata(metadata):
        raise CatalogError(
            "bad_metadata", "The metadata needs a 'tables' mapping (SDV multi-table metadata)."
        )
    with tempfile.TemporaryDirectory(prefix="synthex-relational-") as folder:
        try:
            sets = load_sets(version, folder)
        except storage.StoredFileChanged:
            raise CatalogError(
                "integrity", "A stored table no longer matches its recorded SHA-256; it was not used.", 409
            ) from None
        check_sets(metadata, sets)
    ProductVersion.objects.filter(pk=version.pk, status=VersionStatus.DRAFT).update(sdv_metadata=metadata)
    version.refresh_from_db()
    return version
