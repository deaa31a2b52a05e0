"""Delivering files to entitled buyers: copies, links, download records, receipts.

Every download attempt, served or refused, is a ``Download`` row and a ledger event committed together.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core import signing
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.db import IntegrityError, transaction
from django.utils import timezone

from exchange.delivery.models import Entitlement
from exchange.downloads.constants import FORMATS
from exchange.downloads.models import Delivery, Download, Fingerprint
from exchange.downloads.selectors import accessible_versions, downloads_left, starts_new_copy
from exchange.ledger.services import build_receipt, record_event
from marketplace.accounts.models import User
from marketplace.catalog.models import FileRole, VersionFile
from marketplace.certification.models import Certificate
from marketplace.certification.selectors import latest_certificate
from marketplace.certification.signing import format_issued_at
from marketplace.core.errors import JsonableError
from marketplace.core.storage import StoredFileMissing, content_name, fetch
from marketplace.generators.models import SampleDraw

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

LINK_SALT = "synthex.downloads.link"
RECEIPT_SCHEMA = "synthex.delivery-receipt/v1"


class DeliveryError(JsonableError):
    """A refused delivery step: a machine-readable ``code``, a plain ``message`` and the HTTP ``status``, in
    ``JsonableError``'s order."""


@dataclass(frozen=True)
class Link:
    """A signed download link: the URL path's token and when it stops working (aware UTC)."""

    token: str
    expires_at: datetime


@dataclass(frozen=True)
class LinkClaims:
    delivery_id: str
    buyer_id: int
    expires_at: datetime


def link_seconds() -> int:
    """How long a link works, in seconds (setting ``SYNTHEX_DOWNLOAD_LINK_SECONDS``, default 15 minutes)."""
    return int(settings.SYNTHEX_DOWNLOAD_LINK_SECONDS)


def presigned_seconds() -> int:
    """How long an S3 presigned URL handed out after the checks works (``SYNTHEX_DOWNLOAD_PRESIGN_SECONDS``)."""
    return int(settings.SYNTHEX_DOWNLOAD_PRESIGN_SECONDS)


def storage() -> Storage:
    return storages["default"]


def is_streamed(store: Storage) -> bool:
    """True for the filesystem backend (the platform streams), False for object stores (presigned redirect)."""
    return isinstance(store, FileSystemStorage)


def fingerprint_for(entitlement: Entitlement) -> Fingerprint:
    """The entitlement's fingerprint, created with a fresh random secret on first use."""
    existing = Fingerprint.objects.filter(entitlement=entitlement).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return Fingerprint.objects.create(
                id=f"fp_{secrets.token_hex(10)}",
                entitlement=entitlement,
                secret_hex=secrets.token_hex(32),
                created_at=timezone.now(),
            )
    except IntegrityError:
        return Fingerprint.objects.get(entitlement=entitlement)


def deliverable_file(entitlement: Entitlement, file_id: int | None) -> VersionFile:
    """The synthetic file to deliver: ``file_id`` when given (it must belong to an accessible version), else
    the first synthetic file of the entitlement's own version. Raises DeliveryError."""
    if not entitlement.is_active:
        raise DeliveryError("revoked", "This entitlement was revoked (refunded); downloads are closed.", 403)
    files = VersionFile.objects.filter(
        version__in=accessible_versions(entitlement), role=FileRole.SYNTHETIC
    ).select_related("version")
    if file_id is None:
        chosen = files.filter(version=entitlement.version).order_by("table_name").first()
    else:
        chosen = files.filter(pk=file_id).first()
    if chosen is None:
        raise DeliveryError("file_not_found", "No such file under this entitlement.", 404)
    return chosen


def deliverable_draw(entitlement: Entitlement, draw_id: str) -> SampleDraw:
    """The entitlement's succeeded draw ``draw_id``. Raises DeliveryError: ``revoked`` (403),
    ``draw_not_found`` (404, also for another entitlement's draw) or ``draw_not_ready`` (409)."""
    if not entitlement.is_active:
        raise DeliveryError("revoked", "This entitlement was revoked (refunded); downloads are closed.", 403)
    draw = SampleDraw.objects.filter(
        pk=draw_id, entitlement_id=entitlement.id, buyer_id=entitlement.buyer_id
    ).first()
    if draw is None:
        raise DeliveryError("draw_not_found", "No such draw under this entitlement.", 404)
    if draw.status != SampleDraw.Status.SUCCEEDED or not draw.storage_name:
        raise DeliveryError("draw_not_ready", "This draw has no file (yet).", 409)
    return draw


@dataclass(frozen=True)
class _Source:
    """What a copy is made from: a stored table (storage alias and name, its SHA-256, format and profile
    dtypes), the model row it belongs to, and the certified version whose certificate the receipt names."""

    label: str
    storage_alias: str
    storage_name: str
    sha256: str
    format: str
    dtypes: dict[str, str]
    version_file: VersionFile | None
    draw: SampleDraw | None


def _file_source(version_file: VersionFile) -> _Source:
    return _Source(
        label=f"version file {version_file.pk}",
        storage_alias=version_file.storage_alias,
        storage_name=version_file.storage_name,
        sha256=version_file.sha256,
        format=version_file.format,
        dtypes=_dtypes(version_file),
        version_file=version_file,
        draw=None,
    )


def _draw_source(draw: SampleDraw) -> _Source:
    # Draws are written to the default storage as Parquet, which carries its own column types.
    return _Source(
        label=f"draw {draw.id}",
        storage_alias="default",
        storage_name=draw.storage_name,
        sha256=draw.sha256,
        format="parquet",
        dtypes={},
        version_file=None,
        draw=draw,
    )


def _local_source(source: _Source, scratch: Path) -> Path:
    """The source file at a local path: the stored file itself on a filesystem storage, else a copy."""
    try:
        return fetch(source.storage_alias, source.storage_name, scratch / "source", in_place=True)
    except StoredFileMissing:
        logger.error(
            "ALERT: stored file missing: %s (%s) at %r", source.label, source.sha256, source.storage_name
        )
        raise DeliveryError(
            "file_missing",
            "The file is missing from storage; the platform has been alerted. Try again later.",
            503,
        ) from None


def _dtypes(version_file: VersionFile) -> dict[str, str]:
    columns = (version_file.profile or {}).get("columns", [])
    return {column["name"]: column["dtype"] for column in columns if "name" in column and "dtype" in column}


def _transformation(delivery: Delivery) -> dict[str, Any]:
    """What making the copy did: its format and fingerprint, and the rows the fingerprint left out (a copy
    never changes a value; it is a keyed uniform subset of the source's rows)."""
    source_rows = int((delivery.plan or {}).get("rows", delivery.rows))
    return {
        "format": delivery.format,
        "fingerprint": delivery.fingerprint_id,
        "method": "row-subset",
        "source_rows": source_rows,
        "rows_omitted": source_rows - delivery.rows,
        "statement": (
            "Every value is as certified; the copy leaves out a keyed pseudo-random "
            f"{source_rows - delivery.rows} of the {source_rows} rows (its fingerprint). Synthetic rows are "
            "interchangeable draws, so the certificate's figures hold on this uniform subset."
        ),
    }


def _receipt_document(delivery: Delivery, certificate: Certificate | None) -> dict[str, Any]:
    if delivery.draw_id is not None:
        return {
            "schema": RECEIPT_SCHEMA,
            "delivery": delivery.id,
            "entitlement": delivery.entitlement_id,
            "draw": delivery.draw_id,
            "draw_sha256": delivery.source_sha256,
            "delivered_sha256": delivery.sha256,
            "transformation": _transformation(delivery),
            "rows": delivery.rows,
            "size_bytes": delivery.size_bytes,
            "issued_at": format_issued_at(delivery.created_at),
        }
    return {
        "schema": RECEIPT_SCHEMA,
        "delivery": delivery.id,
        "entitlement": delivery.entitlement_id,
        "certificate": certificate.id if certificate else None,
        "certified_sha256": delivery.source_sha256,
        "delivered_sha256": delivery.sha256,
        "transformation": _transformation(delivery),
        "rows": delivery.rows,
        "size_bytes": delivery.size_bytes,
        "issued_at": format_issued_at(delivery.created_at),
    }


def prepare_delivery(entitlement: Entitlement, version_file: VersionFile, fmt: str) -> Delivery:
    """The buyer's marked copy of ``version_file`` in ``fmt``, converted on first request and cached by
    (source SHA-256, format, fingerprint). A new copy gets a ``delivery.issued`` ledger event and a signed
    receipt binding its SHA-256 to the certified file's. Raises DeliveryError (bad format, missing file)."""
    return _prepare(entitlement, _file_source(version_file), fmt)


def prepare_draw_delivery(entitlement: Entitlement, draw: SampleDraw, fmt: str) -> Delivery:
    """The buyer's marked copy of a succeeded generator ``draw`` in ``fmt``, made, cached and logged like
    :func:`prepare_delivery`; its signed receipt binds the copy's SHA-256 to the draw file's (``draw_sha256``).
    Raises DeliveryError (another entitlement's or an unfinished draw, bad format, missing file)."""
    if draw.entitlement_id != entitlement.id or draw.status != SampleDraw.Status.SUCCEEDED:
        raise DeliveryError("draw_not_found", "No such draw under this entitlement.", 404)
    from exchange.downloads import sets

    if sets.is_entity_set_draw(draw):
        return sets.prepare_draw_set_delivery(entitlement, draw, fmt)
    return _prepare(entitlement, _draw_source(draw), fmt)


def _prepare(entitlement: Entitlement, source_file: _Source, fmt: str) -> Delivery:
    # pyarrow and pandas load only where copies are made, so the serving processes stay small.
    from exchange.downloads import fingerprint as fp
    from exchange.downloads import formats

    if fmt not in FORMATS:
        raise DeliveryError("invalid_format", f"Unknown format {fmt!r}; use csv, parquet or jsonl.", 400)
    fingerprint = fingerprint_for(entitlement)
    lookup = {
        "source_sha256": source_file.sha256,
        "format": fmt,
        "fingerprint": fingerprint,
        "version_file": source_file.version_file,
        "draw": source_file.draw,
    }
    cached = Delivery.objects.filter(**lookup).first()
    if cached is not None and storage().exists(cached.storage_name):
        return cached
    scratch_root = Path(settings.VAR_DIR) / "tmp"
    with tempfile.TemporaryDirectory(dir=scratch_root) as scratch_dir:
        scratch = Path(scratch_dir)
        source = _local_source(source_file, scratch)
        dtypes = source_file.dtypes
        plan = (
            fp.FingerprintPlan.from_dict(cached.plan)
            if cached
            else formats.plan_file(source, source_file.format, dtypes)
        )
        target = scratch / f"copy.{fmt}"
        converted = formats.convert(
            source,
            source_file.format,
            target,
            fmt,
            plan=plan,
            key=fingerprint.key,
            dtypes=dtypes,
            # A draw holds spare rows: the buyer's copy is cut back to the rows they asked for.
            max_rows=source_file.draw.rows if source_file.draw is not None else None,
        )
        name = content_name("deliveries", source_file.sha256, fmt, variant=fingerprint.id)
        if cached is not None:
            if converted.sha256 != cached.sha256:
                logger.error("ALERT: rebuilt copy %s differs from its receipt", cached.id)
                raise DeliveryError("file_missing", "The cached copy could not be rebuilt identically.", 503)
            with target.open("rb") as handle:
                stored = storage().save(name, File(handle))
            Delivery.objects.filter(pk=cached.pk).update(storage_name=stored, blake3=converted.blake3)
            cached.storage_name, cached.blake3 = stored, converted.blake3
            return cached
        with target.open("rb") as handle:
            stored = storage().save(name, File(handle))
    certificate = (
        latest_certificate(source_file.version_file.version_id)
        if source_file.version_file is not None
        else None
    )
    # A draw's hash is logged as draw_sha256 (not as a "draw" ref): the draw's own trail stays
    # quota.consumed then its downloads, and the hash still ties this copy to the draw.
    source_ref = (
        {"certified_sha256": source_file.sha256}
        if source_file.draw is None
        else {"draw_sha256": source_file.sha256}
    )
    try:
        with transaction.atomic():
            delivery = Delivery(
                id=f"dlv_{secrets.token_hex(10)}",
                entitlement=entitlement,
                sha256=converted.sha256,
                blake3=converted.blake3,
                size_bytes=converted.size_bytes,
                rows=converted.rows,
                storage_name=stored,
                plan=plan.to_dict(),
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
                    "fingerprint": fingerprint.id,
                    "format": fmt,
                    **source_ref,
                    "delivered_sha256": converted.sha256,
                },
            )
            delivery.ledger_index = event.leaf_id
            delivery.receipt = build_receipt(
                receipt=_receipt_document(delivery, certificate), leaf_indexes=[event.leaf_id]
            )
            delivery.save(force_insert=True)
    except IntegrityError:
        storage().delete(stored)
        return Delivery.objects.get(**lookup)
    return delivery


def issue_link(delivery: Delivery, buyer: User, now: datetime | None = None) -> Link:
    """A signed token naming the delivery, the buyer and the expiry (``link_seconds()`` from now)."""
    expires_at = (now or timezone.now()) + timedelta(seconds=link_seconds())
    token = signing.dumps(
        {"d": delivery.id, "b": buyer.pk, "e": int(expires_at.timestamp())}, salt=LINK_SALT, compress=False
    )
    return Link(token=token, expires_at=expires_at.replace(microsecond=0))


def read_link(token: str, now: datetime | None = None) -> LinkClaims:
    """The claims of a link token. Raises DeliveryError ``forged_link`` (bad signature or shape) or
    ``expired_link`` (past its expiry)."""
    try:
        claims = signing.loads(token, salt=LINK_SALT)
        delivery_id, buyer_id, expires = str(claims["d"]), int(claims["b"]), int(claims["e"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise DeliveryError("forged_link", "This download link is not valid.", 403) from None
    expires_at = datetime.fromtimestamp(expires, tz=UTC)
    if (now or timezone.now()) >= expires_at:
        raise DeliveryError("expired_link", "This download link has expired; ask for a new one.", 410)
    return LinkClaims(delivery_id, buyer_id, expires_at)


def record_download(
    *,
    outcome: str,
    reason: str = "",
    delivery: Delivery | None = None,
    user: User | None = None,
    range_start: int | None = None,
    range_end: int | None = None,
    idempotency_key: str | None = None,
    starts_copy: bool = False,
) -> Download:
    """Write a download attempt and its ledger event (``download`` or ``download.refused``) atomically.

    Refs hold ids and hashes only: download, delivery, entitlement, the draw (for a generator draw's copy),
    buyer (user id), delivered SHA-256, byte range, and the refusal reason.
    """
    download_id = f"dl_{secrets.token_hex(10)}"
    refs = {"download": download_id}
    if delivery is not None:
        refs.update(delivery=delivery.id, entitlement=delivery.entitlement_id, sha256=delivery.sha256)
        if delivery.draw_id is not None:
            refs["draw"] = delivery.draw_id
    if user is not None:
        refs["user"] = str(user.pk)
    if range_start is not None:
        refs["range"] = f"{range_start}-{range_end}"
    if reason:
        refs["reason"] = reason
    kind = "download" if outcome == Download.Outcome.SERVED else "download.refused"
    with transaction.atomic():
        if idempotency_key is not None:
            existing = Download.objects.filter(pk=idempotency_key).first()
            if existing is not None:
                return existing
            download_id = idempotency_key
            refs["download"] = download_id
        event = record_event(idempotency_key=f"{kind}:{download_id}", kind=kind, refs=refs)
        return Download.objects.create(
            id=download_id,
            outcome=outcome,
            reason=reason,
            delivery=delivery,
            user=user,
            range_start=range_start,
            range_end=range_end,
            starts_copy=starts_copy,
            ledger_index=event.leaf_id,
            created_at=timezone.now(),
        )


def start_download(
    delivery: Delivery, *, user: User | None, range_start: int | None, range_end: int | None
) -> Download:
    """Record a served download of ``delivery`` once every check holds, under the entitlement's row lock.

    The entitlement row is locked (``SELECT … FOR UPDATE``; SQLite's IMMEDIATE transaction takes the
    database's write lock) while it is checked active, the license's limit is checked (ranged reads count,
    see :func:`starts_new_copy`) and the ``download`` row and ledger event are written. A refund takes the
    same lock to check "no download yet" and revoke the entitlement before calling Stripe, so a download
    and a refund are serialized: either the download is recorded first and the buyer's refund is refused,
    or the entitlement is revoked first and the download is refused. Raises DeliveryError ``revoked`` (403)
    or ``limit_reached`` (403), having written nothing.
    """
    with transaction.atomic():
        entitlement = Entitlement.objects.select_for_update().get(pk=delivery.entitlement_id)
        if not entitlement.is_active:
            raise DeliveryError(
                "revoked", "This entitlement was revoked (refunded); downloads are closed.", 403
            )
        new_copy = starts_new_copy(delivery, range_start)
        source = delivery.draw if delivery.draw_id is not None else delivery.version_file
        if new_copy and source is not None and downloads_left(entitlement, source) == 0:
            raise DeliveryError(
                "limit_reached", "The license's download limit for this file is reached.", 403
            )
        return record_download(
            outcome=Download.Outcome.SERVED,
            delivery=delivery,
            user=user,
            range_start=range_start,
            range_end=range_end,
            starts_copy=new_copy,
        )
