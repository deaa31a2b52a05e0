"""Delivering a set of related tables as one copy (issue 20): every table of a relational version, or of a
draw from an HMA generator, in CSV, Parquet or JSON Lines, in one zip, with one signed receipt.

The buyer's fingerprint works on **entities**, not on rows: a keyed choice of entity-table rows (the same
keyed choice, with the same plan, that a copy of the entity table alone would make, so a leaked entity table
traces as any leaked table does) is left out *with every row below it*; lookup tables are delivered whole.
No value is changed and no child loses its parent: the copy is a set of whole entities of the certified set.
A draw made spare entities; its copy is cut back to the entity rows the buyer asked for.

The receipt binds the zip's SHA-256 to the source: for a version, its certificate and the *set digest* (the
SHA-256 of ``synthex.table-set/v1`` followed by one ``<table>\\t<sha256>`` line per certified table, in name
order); for a draw, the draw file's SHA-256. It lists every table's certified and delivered SHA-256 and rows.
"""

from __future__ import annotations

import hashlib
import io
import logging
import secrets
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction
from django.utils import timezone

from exchange.delivery.models import Entitlement
from exchange.downloads.constants import FORMATS
from exchange.downloads.models import Delivery
from exchange.downloads.selectors import accessible_versions
from exchange.downloads.services import (
    RECEIPT_SCHEMA,
    DeliveryError,
    fingerprint_for,
    storage,
)
from exchange.ledger.services import build_receipt, record_event
from marketplace.catalog.models import FileRole, ProductVersion, VersionFile
from marketplace.certification.selectors import latest_certificate
from marketplace.certification.signing import format_issued_at
from marketplace.core.storage import StoredFileMissing, content_name, fetch
from marketplace.generators.models import SampleDraw, Synthesizer

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

SET_DIGEST_HEADER = "synthex.table-set/v1\n"


@dataclass(frozen=True)
class _SetSource:
    """What a set copy is made from: its digest, the tables' metadata, where each table is stored, and the
    version or draw it belongs to (exactly one)."""

    sha256: str
    metadata: dict
    version: ProductVersion | None
    draw: SampleDraw | None
    tables: tuple[VersionFile, ...] = ()


def set_digest(tables: dict[str, str]) -> str:
    """The SHA-256 naming a set: over its tables' names and SHA-256s, in name order."""
    lines = "".join(f"{name}\t{sha}\n" for name, sha in sorted(tables.items()))
    return hashlib.sha256((SET_DIGEST_HEADER + lines).encode()).hexdigest()


def is_entity_set_draw(draw: SampleDraw) -> bool:
    return draw.generator.synthesizer == Synthesizer.HMA


def _is_relational(version: ProductVersion) -> bool:
    metadata = version.sdv_metadata
    return isinstance(metadata, dict) and isinstance(metadata.get("tables"), dict)


def deliverable_set(entitlement: Entitlement, number: int | None) -> ProductVersion:
    """The relational version ``number`` (default: the entitlement's own) the entitlement may download.
    Raises DeliveryError: ``revoked`` (403), ``version_not_found`` (404), ``not_a_table_set`` (400)."""
    if not entitlement.is_active:
        raise DeliveryError("revoked", "This entitlement was revoked (refunded); downloads are closed.", 403)
    if number is None:
        chosen: ProductVersion | None = entitlement.version
    else:
        chosen = next((v for v in accessible_versions(entitlement) if v.number == number), None)
    if chosen is None:
        raise DeliveryError(
            "version_not_found", f"Version {number} is not included in this entitlement.", 404
        )
    if not _is_relational(chosen):
        raise DeliveryError(
            "not_a_table_set",
            "This version is a single table: download its file (a set is several related tables).",
            400,
        )
    return chosen


def prepare_set_delivery(entitlement: Entitlement, version: ProductVersion, fmt: str) -> Delivery:
    """The buyer's fingerprinted copy of every synthetic table of relational ``version`` in ``fmt`` as one
    zip, made on first request and cached by (set digest, format, fingerprint); a new copy gets one
    ``delivery.issued`` ledger event and one signed receipt. Raises DeliveryError (bad format, missing file)."""
    files = tuple(
        version.files.filter(role=FileRole.SYNTHETIC, deleted_at__isnull=True).order_by("table_name")
    )
    source = _SetSource(
        sha256=set_digest({f.table_name: f.sha256 for f in files}),
        metadata=version.sdv_metadata,
        version=version,
        draw=None,
        tables=files,
    )
    return _prepare(entitlement, source, fmt)


def prepare_draw_set_delivery(entitlement: Entitlement, draw: SampleDraw, fmt: str) -> Delivery:
    """The buyer's fingerprinted copy of a succeeded HMA draw (a table set) in ``fmt`` as one zip, cut back
    to the entity rows asked for; made, cached, logged and receipted as :func:`prepare_set_delivery`."""
    if draw.entitlement_id != entitlement.id or draw.status != SampleDraw.Status.SUCCEEDED:
        raise DeliveryError("draw_not_found", "No such draw under this entitlement.", 404)
    source = _SetSource(sha256=draw.sha256, metadata=draw.generator.sdv_metadata, version=None, draw=draw)
    return _prepare(entitlement, source, fmt)


# -- reading a set ----------------------------------------------------------------------------------------------


def _copy_local(alias: str, name: str, target: Path) -> Path:
    try:
        return fetch(alias, name, target)
    except StoredFileMissing:
        logger.error("ALERT: stored set file missing at %r", name)
        raise DeliveryError(
            "file_missing",
            "A file of this set is missing from storage; the platform has been alerted. Try again later.",
            503,
        ) from None


def _read_tables(source: _SetSource, scratch: Path) -> dict[str, pa.Table]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from exchange.downloads import formats

    if source.draw is not None:
        archive_path = _copy_local("default", source.draw.storage_name, scratch / "draw.zip")
        with zipfile.ZipFile(archive_path) as archive:
            return {
                info.filename.removesuffix(".parquet"): pq.read_table(io.BytesIO(archive.read(info)))
                for info in archive.infolist()
            }
    tables = {}
    for item in source.tables:
        path = _copy_local(item.storage_alias, item.storage_name, scratch / f"{item.pk}.{item.format}")
        dtypes = {c["name"]: c["dtype"] for c in (item.profile or {}).get("columns", []) if "dtype" in c}
        tables[item.table_name] = pa.Table.from_batches(list(formats.read_batches(path, item.format, dtypes)))
    return tables


# -- marking a set ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Marked:
    tables: dict[str, pa.Table]
    entity_table: str
    plan: Any
    source_entities: int
    fingerprint_omitted: int


def _mark_set(tables: dict[str, pa.Table], metadata: dict, key: bytes, max_entities: int | None) -> _Marked:
    """Leave out the entities ``key`` omits (with every row below them), then keep at most ``max_entities``."""
    import numpy as np
    import pyarrow as pa

    from exchange.downloads import fingerprint as fp
    from marketplace.certification.engine.relational_schema import entity_ids, entity_table, parse_metadata

    schema = parse_metadata(metadata)
    key_columns = {
        name: [
            c
            for c in (
                schema.primary_keys[name],
                *(r.child_key for r in schema.relationships if r.child == name),
            )
            if c
        ]
        for name in tables
    }
    keys = {name: tables[name].select(columns).to_pandas() for name, columns in key_columns.items()}
    entity = entity_table(keys, schema)
    plan = fp.plan_table(tables[entity].to_batches())
    keep = ~fp.omitted(fp.anchors(tables[entity], plan), key, plan.omit_rate)
    omitted = int((~keep).sum())
    if max_entities is not None:
        keep &= np.cumsum(keep) <= max_entities
    marked = dict(tables)
    for name, positions in entity_ids(keys, schema, entity).items():
        marked[name] = tables[name].filter(pa.array(keep[positions]))
    return _Marked(marked, entity, plan, len(tables[entity]), omitted)


def _write_zip(marked: _Marked, fmt: str, scratch: Path) -> tuple[Path, list[dict[str, Any]]]:
    from exchange.downloads import formats

    target = scratch / f"set.{fmt}.zip"
    written = []
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(marked.tables):
            path = scratch / f"{name}.{fmt}"
            converted = formats.write_table(marked.tables[name], path, fmt)
            archive.write(path, arcname=f"{name}.{fmt}")
            written.append({"name": name, "delivered_sha256": converted.sha256, "rows": converted.rows})
    return target, written


def _sha256_and_blake3(path: Path) -> tuple[str, str]:
    import blake3

    digest, quick = hashlib.sha256(), blake3.blake3()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
            quick.update(chunk)
    return digest.hexdigest(), quick.hexdigest()


# -- the delivery -----------------------------------------------------------------------------------------------


def _prepare(entitlement: Entitlement, source: _SetSource, fmt: str) -> Delivery:
    if fmt not in FORMATS:
        raise DeliveryError("invalid_format", f"Unknown format {fmt!r}; use csv, parquet or jsonl.", 400)
    fingerprint = fingerprint_for(entitlement)
    lookup: dict[str, Any] = {
        "source_sha256": source.sha256,
        "format": fmt,
        "fingerprint": fingerprint,
        "version": source.version,
        "draw": source.draw,
        "is_table_set": True,
    }
    cached = Delivery.objects.filter(**lookup).first()
    if cached is not None and storage().exists(cached.storage_name):
        return cached
    scratch_root = Path(settings.VAR_DIR) / "tmp"
    scratch_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch_root) as scratch_dir:
        scratch = Path(scratch_dir)
        marked = _mark_set(
            _read_tables(source, scratch),
            source.metadata,
            fingerprint.key,
            source.draw.rows if source.draw is not None else None,
        )
        target, written = _write_zip(marked, fmt, scratch)
        sha256, quick = _sha256_and_blake3(target)
        name = content_name("deliveries", source.sha256, f"{fmt}.zip", variant=fingerprint.id)
        if cached is not None:
            if sha256 != cached.sha256:
                logger.error("ALERT: rebuilt set copy %s differs from its receipt", cached.id)
                raise DeliveryError("file_missing", "The cached copy could not be rebuilt identically.", 503)
            with target.open("rb") as handle:
                stored = storage().save(name, File(handle))
            Delivery.objects.filter(pk=cached.pk).update(storage_name=stored)
            cached.storage_name = stored
            return cached
        with target.open("rb") as handle:
            stored = storage().save(name, File(handle))
        size = target.stat().st_size
    tables = _table_lines(source, written)
    try:
        return _record(entitlement, source, fmt, lookup, marked, tables, sha256, quick, size, stored)
    except IntegrityError:
        storage().delete(stored)
        return Delivery.objects.get(**lookup)


def _table_lines(source: _SetSource, written: list[dict[str, Any]]) -> list[dict[str, Any]]:
    certified = {item.table_name: item.sha256 for item in source.tables}
    return [
        {"name": line["name"], "certified_sha256": certified.get(line["name"]), **line}
        if source.version is not None
        else line
        for line in written
    ]


def _record(
    entitlement: Entitlement,
    source: _SetSource,
    fmt: str,
    lookup: dict[str, Any],
    marked: _Marked,
    tables: list[dict[str, Any]],
    sha256: str,
    quick: str,
    size: int,
    stored: str,
) -> Delivery:
    """The delivery row, its ledger event and its signed receipt, in one transaction."""
    source_ref = (
        {"certified_sha256": source.sha256} if source.draw is None else {"draw_sha256": source.sha256}
    )
    rows = marked.tables[marked.entity_table].num_rows
    with transaction.atomic():
        delivery = Delivery(
            id=f"dlv_{secrets.token_hex(10)}",
            entitlement=entitlement,
            sha256=sha256,
            blake3=quick,
            size_bytes=size,
            rows=rows,
            storage_name=stored,
            plan=marked.plan.to_dict(),
            receipt={},
            ledger_index=0,
            created_at=timezone.now(),
            **lookup,
        )
        event = record_event(
            idempotency_key=f"delivery.issued:{delivery.id}",
            kind="delivery.issued",
            refs={
                "delivery": delivery.id,
                "entitlement": entitlement.id,
                "fingerprint": lookup["fingerprint"].id,
                "format": fmt,
                **source_ref,
                "delivered_sha256": sha256,
            },
        )
        delivery.ledger_index = event.leaf_id
        certificate = latest_certificate(source.version) if source.version is not None else None
        document: dict[str, Any] = {
            "schema": RECEIPT_SCHEMA,
            "delivery": delivery.id,
            "entitlement": entitlement.id,
            **(
                {"certificate": certificate.id if certificate else None}
                if source.draw is None
                else {"draw": source.draw.id}
            ),
            **source_ref,
            "delivered_sha256": sha256,
            "tables": tables,
            "transformation": _transformation(fmt, marked, rows),
            "rows": rows,
            "size_bytes": size,
            "issued_at": format_issued_at(delivery.created_at),
        }
        delivery.receipt = build_receipt(receipt=document, leaf_indexes=[event.leaf_id])
        delivery.save(force_insert=True)
    return delivery


def _transformation(fmt: str, marked: _Marked, rows: int) -> dict[str, Any]:
    return {
        "format": fmt,
        "container": "zip",
        "method": "entity-subset",
        "entity_table": marked.entity_table,
        "source_entities": marked.source_entities,
        "entities_omitted": marked.fingerprint_omitted,
        "entities_delivered": rows,
        "statement": (
            "Every value is as certified; the copy leaves out a keyed pseudo-random few of the "
            f"{marked.source_entities} {marked.entity_table} rows (its fingerprint), each with every row below "
            "it, and keeps lookup tables whole: every child keeps its parent. A draw's copy is then cut back "
            "to the entity rows asked for."
        ),
    }
