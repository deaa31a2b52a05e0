"""Writes for the catalog: products, licenses, versions and their files.

A version is made in two steps, as a provider would in the browser: ``create_version`` receives and
validates the uploads (stored, hashed, profiled, SDV metadata detected) as a *draft*;
``certification.submission.submit_version`` records the provider's confirmed or corrected metadata
(``lock_draft``, ``mark_submitted`` here) and sends it to certification. The API does both in one call
unless asked to keep the draft. Catalog never imports certification: certification reads catalog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files import File
from django.core.files.storage import storages
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify

from marketplace.accounts.models import Organization, User
from marketplace.catalog import ingest
from marketplace.catalog.ingest import IngestError, apply_metadata_overrides, sniff_format
from marketplace.catalog.licenses import LICENSES
from marketplace.catalog.markdown import render_markdown
from marketplace.catalog.models import (
    FileRole,
    Product,
    ProductLicense,
    ProductVersion,
    VersionFile,
    VersionStatus,
)
from marketplace.catalog.profiles import stored_reference_profile
from marketplace.catalog.summary import refresh_product_summary
from marketplace.catalog.uploads import HashedFile
from marketplace.core import storage
from marketplace.core.errors import JsonableError
from marketplace.core.memory import release_freed_memory

logger = logging.getLogger(__name__)

MAX_TAGS = 12
SNIFF_BYTES = 64 * 1024


class CatalogError(JsonableError):
    """A refused catalog operation: ``code`` is a short slug, ``message`` a sentence for the user; ``extra``
    holds machine-readable figures for the API error body (e.g. the baseline overlap shares)."""


@dataclass(frozen=True)
class LicensePrice:
    code: str
    price_minor: int
    currency: str


def ensure_can_manage(user: User, product: Product) -> None:
    """Only members of the product's organization (and staff) may change it or upload to it."""
    if not (user.is_authenticated and (user.is_staff or user.is_member_of(product.organization))):
        raise PermissionDenied("Only members of the provider organization can change this product.")


def _clean_tags(tags: Iterable[str]) -> list[str]:
    cleaned: list[str] = []
    for tag in tags:
        value = slugify(str(tag))[:40]
        if value and value not in cleaned:
            cleaned.append(value)
    if len(cleaned) > MAX_TAGS:
        raise CatalogError("too_many_tags", f"A product can have at most {MAX_TAGS} tags.")
    return cleaned


def _validate_licenses(licenses: Sequence[LicensePrice]) -> None:
    if not licenses:
        raise CatalogError("no_license", "Offer the product under at least one license.")
    seen: set[str] = set()
    for item in licenses:
        if item.code not in LICENSES:
            raise CatalogError(
                "unknown_license", f"Unknown license {item.code!r}; choose from {', '.join(LICENSES)}."
            )
        if item.code in seen:
            raise CatalogError("duplicate_license", f"License {item.code!r} is listed twice.")
        seen.add(item.code)
        if (
            not isinstance(item.price_minor, int)
            or isinstance(item.price_minor, bool)
            or item.price_minor < 0
        ):
            raise CatalogError("bad_price", "Prices are whole numbers of minor units (cents), zero or more.")
        if item.price_minor > 10**12:
            raise CatalogError("bad_price", "That price is too large.")
        if len(item.currency) != 3 or not item.currency.isalpha() or not item.currency.isupper():
            raise CatalogError(
                "bad_currency", f"{item.currency!r} is not an ISO 4217 currency code like USD."
            )
    if len({item.currency for item in licenses}) > 1:
        raise CatalogError("mixed_currency", "All licenses of one product must use the same currency.")


@transaction.atomic
def create_product(
    *,
    user: User,
    organization: Organization,
    title: str,
    summary: str,
    domain: str,
    kind: str = "dataset",
    description_md: str = "",
    tags: Iterable[str] = (),
    licenses: Sequence[LicensePrice],
    slug: str = "",
) -> Product:
    """Create a product owned by ``organization``; the user must be one of its members and it a provider."""
    if not organization.is_provider:
        raise CatalogError("not_a_provider", f"{organization.name} is not a provider organization.")
    if not user.is_member_of(organization):
        raise PermissionDenied("You are not a member of this organization.")
    _validate_licenses(licenses)
    slug = slugify(slug or title)[:80]
    if not slug:
        raise CatalogError("bad_slug", "The title must contain letters or digits to make a web address.")
    if Product.objects.filter(slug=slug).exists():
        raise CatalogError(
            "slug_taken", f"The address {slug!r} is taken; choose another title or slug.", status=409
        )
    try:
        with transaction.atomic():
            product = Product.objects.create(
                organization=organization,
                slug=slug,
                title=title.strip(),
                summary=summary.strip(),
                description_md=description_md,
                description_html=render_markdown(description_md),
                domain=domain,
                kind=kind,
                tags=_clean_tags(tags),
                created_by=user,
            )
    except IntegrityError:
        raise CatalogError(
            "slug_taken", f"The address {slug!r} is taken; choose another title or slug.", status=409
        ) from None
    ProductLicense.objects.bulk_create(
        ProductLicense(product=product, code=item.code, price_minor=item.price_minor, currency=item.currency)
        for item in licenses
    )
    refresh_product_summary(product)
    return product


@transaction.atomic
def update_product(
    product: Product,
    *,
    user: User,
    title: str | None = None,
    summary: str | None = None,
    description_md: str | None = None,
    domain: str | None = None,
    tags: Iterable[str] | None = None,
    licenses: Sequence[LicensePrice] | None = None,
    is_listed: bool | None = None,
) -> Product:
    """Change a product's listing. Prices change for future orders only (orders freeze their price).

    Moderation belongs to staff: a product staff unlisted (``unlisted_by_staff_at``) is listed again by
    staff only; its provider asking for it gets :class:`CatalogError` ``unlisted_by_staff`` (403) and
    nothing changes. Staff listing or unlisting a product sets or clears that mark.
    """
    ensure_can_manage(user, product)
    if is_listed and product.unlisted_by_staff_at is not None and not user.is_staff:
        raise CatalogError(
            "unlisted_by_staff",
            "Staff unlisted this product (moderation); only staff can list it again. Contact support.",
            403,
        )
    _apply_listing_text(product, title=title, summary=summary, description_md=description_md, domain=domain)
    if tags is not None:
        product.tags = _clean_tags(tags)
    if is_listed is not None:
        product.is_listed = is_listed
        if user.is_staff:
            product.unlisted_by_staff_at = None if is_listed else timezone.now()
    product.save()
    if licenses is not None:
        _replace_licenses(product, licenses)
    refresh_product_summary(product)
    return product


def _apply_listing_text(
    product: Product,
    *,
    title: str | None,
    summary: str | None,
    description_md: str | None,
    domain: str | None,
) -> None:
    """Set the given text fields on ``product`` (unsaved); None leaves a field as it is."""
    if title is not None:
        product.title = title.strip()
    if summary is not None:
        product.summary = summary.strip()
    if description_md is not None:
        product.description_md = description_md
        product.description_html = render_markdown(description_md)
    if domain is not None:
        product.domain = domain


def _replace_licenses(product: Product, licenses: Sequence[LicensePrice]) -> None:
    """Make ``licenses`` the product's whole price list (checked first; prices in minor units)."""
    _validate_licenses(licenses)
    product.licenses.exclude(code__in=[item.code for item in licenses]).delete()
    for item in licenses:
        ProductLicense.objects.update_or_create(
            product=product,
            code=item.code,
            defaults={"price_minor": item.price_minor, "currency": item.currency},
        )


@dataclass
class ReceivedTable:
    """An uploaded table file checked and profiled (``receive_table``), not yet stored."""

    role: str
    upload: HashedFile
    fmt: str
    profile: ingest.TableProfile
    table_name: str


def _table_name(filename: str) -> str:
    stem = filename.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return slugify(stem).replace("-", "_")[:100] or "table"


# Profiling a file this large leaves tens of MB of freed heap in the process: hand it back afterwards.
RELEASE_MEMORY_AFTER_BYTES = 64 << 20


def inspect_table(
    path: str,
    name: str,
    size: int,
    progress: Callable[[float], None] | None = None,
    *,
    max_seconds: float | None = None,
) -> tuple[str, ingest.TableProfile]:
    """Recognize the format of the table file at ``path`` (uploaded as ``name``) and validate and profile
    it: (format, profile). Raises ``IngestError`` for a file that is not a clean table, or whose checking
    takes over ``max_seconds`` (default ``SYNTHEX_VALIDATION_SECONDS``)."""
    if size == 0:
        raise IngestError("empty_file", f"{name} is empty.")
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    fmt = sniff_format(head, name)
    try:
        profile = ingest.profile_table(
            path,
            fmt,
            progress=progress,
            max_seconds=settings.SYNTHEX_VALIDATION_SECONDS if max_seconds is None else max_seconds,
        )
    finally:
        if size >= RELEASE_MEMORY_AFTER_BYTES:
            release_freed_memory()
    return fmt, profile


def ingest_error_status(code: str) -> int:
    """The HTTP status of a refused file: 413 over the size limit, 503 when the server failed to check it
    (``validation_failed``: not the file's fault, uploading it again may work), 400 otherwise."""
    return {"too_large": 413, "validation_failed": 503}.get(code, 400)


def receive_table(role: str, upload: HashedFile) -> ReceivedTable:
    """The upload as a ``role`` table: its format and profile (a completed upload session's from its
    worker's check, otherwise checked now). Raises ``IngestError`` for a file that is not a clean table."""
    # A completed upload session was already validated by a worker (upload_sessions.validate_upload).
    validated = getattr(upload, "validated", None)
    if validated is None:
        validated = inspect_table(upload.temporary_file_path(), upload.name or "", upload.size or 0)
    fmt, profile = validated
    return ReceivedTable(
        role=role, upload=upload, fmt=fmt, profile=profile, table_name=_table_name(upload.name or "")
    )


def _column_names(profile: ingest.TableProfile) -> list[str]:
    return [column.name for column in profile.columns]


def _check_reference_matches(received: list[ReceivedTable]) -> None:
    synthetic = [r for r in received if r.role == FileRole.SYNTHETIC]
    reference = [r for r in received if r.role != FileRole.SYNTHETIC]
    if not reference:
        return
    if len(synthetic) != 1:
        raise CatalogError(
            "reference_needs_one_table",
            "Reference train/holdout files can only accompany a single synthetic table.",
        )
    if any(r.role == FileRole.HOLDOUT for r in reference) and not any(
        r.role == FileRole.TRAIN for r in reference
    ):
        raise CatalogError("holdout_without_train", "A holdout file needs the train file it was split from.")
    expected = set(_column_names(synthetic[0].profile))
    for item in reference:
        got = set(_column_names(item.profile))
        if got != expected:
            missing = sorted(expected - got)
            extra = sorted(got - expected)
            raise CatalogError(
                "reference_columns_differ",
                f"The {item.role} file's columns differ from the synthetic table's"
                + (f"; missing: {', '.join(missing)}" if missing else "")
                + (f"; extra: {', '.join(extra)}" if extra else "")
                + ".",
            )


def _stored_name(role: str, organization_id: int, sha256: str, fmt: str) -> tuple[str, str]:
    """(storage alias, content-addressed name) of a version file: synthetic tables are public objects,
    reference tables (train, holdout) sit in the private storage under their organization."""
    if role == FileRole.SYNTHETIC:
        return "default", storage.content_name("objects", sha256, fmt)
    return "reference", storage.content_name(f"org-{organization_id}", sha256, fmt)


def _version_file(
    version: ProductVersion,
    *,
    role: str,
    table_name: str,
    original_filename: str,
    fmt: str,
    storage_name: str,
    sha256: str,
    size_bytes: int,
    profile: ingest.TableProfile,
) -> VersionFile:
    """An unsaved version file; a reference file keeps no preview rows (``stored_reference_profile``)."""
    return VersionFile(
        version=version,
        role=role,
        table_name=table_name,
        original_filename=original_filename[:255],
        format=fmt,
        storage_name=storage_name,
        sha256=sha256,
        size_bytes=size_bytes,
        rows=profile.rows,
        column_count=len(profile.columns),
        profile=(
            profile.to_dict() if role == FileRole.SYNTHETIC else stored_reference_profile(profile.to_dict())
        ),
    )


def store_table(item: ReceivedTable, organization: Organization) -> tuple[str, bool]:
    """Save a received table into the right storage under a content-addressed name; return (name, newly_written)."""
    alias, name = _stored_name(item.role, organization.pk, item.upload.sha256, item.fmt)
    # An upload the client sent straight to the object store is copied there by the store.
    copy_into: storage.StoreCopy | None = getattr(item.upload, "copy_into", None)
    saved = storage.store_once(alias, name, copy_into or cast(File, item.upload))
    return saved.name, saved.is_new


def create_next_version(product: Product, *, user: User, **fields: Any) -> ProductVersion:
    """Create ``product``'s next version (its number one above the highest) with the model ``fields``.

    Call inside a transaction: the product row stays locked until it ends, so two creations never take
    the same number."""
    locked = Product.objects.select_for_update().get(pk=product.pk)
    number = (locked.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    return ProductVersion.objects.create(product=locked, number=number, created_by=user, **fields)


def add_table_file(
    version: ProductVersion, *, role: str, path: Path, fmt: str, table_name: str, original_filename: str
) -> VersionFile:
    """Profile, hash and store the table file at ``path`` (format ``fmt``) as a ``role`` file of ``version``,
    under the same content-addressed name and profile rules as uploaded files. The caller's transaction
    owns the row; the stored object is written at once (a later identical file reuses it)."""
    profile = ingest.profile_table(path, fmt)
    sha256 = storage.sha256_file(path)
    name = storage.save_once(*_stored_name(role, version.product.organization_id, sha256, fmt), path)
    item = _version_file(
        version,
        role=role,
        table_name=table_name,
        original_filename=original_filename,
        fmt=fmt,
        storage_name=name,
        sha256=sha256,
        size_bytes=path.stat().st_size,
        profile=profile,
    )
    item.save()
    return item


def receive_uploads(uploads: Sequence[tuple[str, HashedFile]]) -> list[ReceivedTable]:
    """Each ``(role, upload)`` received (``receive_table``); a bad file is a ``CatalogError`` naming it."""
    received: list[ReceivedTable] = []
    for role, upload in uploads:
        try:
            received.append(receive_table(role, upload))
        except IngestError as error:
            raise CatalogError(
                error.code, f"{upload.name}: {error.message}", status=ingest_error_status(error.code)
            ) from None
    return received


def create_version(
    product: Product,
    *,
    user: User,
    synthetic: Sequence[HashedFile],
    train: HashedFile | None = None,
    holdout: HashedFile | None = None,
    target_column: str = "",
    changelog: str = "",
) -> ProductVersion:
    """Validate, store and profile the uploaded tables as a new draft version of ``product``.

    All-or-nothing: on any bad file the error names it and no file, version or row is left behind.
    """
    ensure_can_manage(user, product)
    if not synthetic:
        raise CatalogError(
            "no_synthetic_file", "Upload at least one synthetic table (CSV, Parquet or JSON Lines)."
        )
    uploads = [(FileRole.SYNTHETIC, f) for f in synthetic]
    uploads += [(FileRole.TRAIN, train)] if train else []
    uploads += [(FileRole.HOLDOUT, holdout)] if holdout else []
    received = receive_uploads(uploads)
    names = [r.table_name for r in received if r.role == FileRole.SYNTHETIC]
    if len(set(names)) != len(names):
        raise CatalogError("duplicate_table_name", "Two synthetic files have the same name; rename one.")
    _check_reference_matches(received)
    synthetic_columns = _column_names(received[0].profile)
    if target_column and target_column not in synthetic_columns:
        raise CatalogError(
            "unknown_target", f"The target column {target_column!r} is not in the synthetic table."
        )

    written: list[tuple[str, str]] = []
    try:
        stored = []
        for item in received:
            name, is_new = store_table(item, product.organization)
            if is_new:
                written.append(("default" if item.role == FileRole.SYNTHETIC else "reference", name))
            stored.append((item, name))
        with transaction.atomic():
            version = create_next_version(
                product,
                user=user,
                target_column=target_column,
                changelog=changelog,
                sdv_metadata=received[0].profile.sdv_metadata,
            )
            VersionFile.objects.bulk_create(
                _version_file(
                    version,
                    role=item.role,
                    table_name=item.table_name if item.role == FileRole.SYNTHETIC else item.role,
                    original_filename=item.upload.name or "",
                    fmt=item.fmt,
                    storage_name=name,
                    sha256=item.upload.sha256,
                    size_bytes=item.upload.size or 0,
                    profile=item.profile,
                )
                for item, name in stored
            )
    except BaseException:
        for alias, name in written:
            storages[alias].delete(name)
        raise
    finally:
        # The storage may have moved a temporary file into place: close our handles now, while Django's
        # close() still tolerates the missing path, rather than leave it to garbage collection.
        for item in received:
            item.upload.close()
    return version


def lock_draft(
    version: ProductVersion,
    *,
    user: User,
    sdtype_overrides: dict[str, str] | None = None,
    target_column: str | None = None,
) -> ProductVersion:
    """The draft's row, locked until the caller's transaction ends, with the provider's metadata corrections
    (sdtypes, target column) applied but not saved. Raises ``CatalogError``: ``not_a_draft`` (409) when it was
    submitted already, ``unknown_target`` or the ingest code (400) for a bad correction.

    The first step of ``certification.submission.submit_version``; ``mark_submitted`` is its catalog end."""
    ensure_can_manage(user, version.product)
    version = ProductVersion.objects.select_for_update().get(pk=version.pk)
    if version.status != VersionStatus.DRAFT:
        raise CatalogError("not_a_draft", f"Version {version.number} was already submitted.", status=409)
    if sdtype_overrides:
        try:
            version.sdv_metadata = apply_metadata_overrides(version.sdv_metadata, sdtype_overrides)
        except IngestError as error:
            raise CatalogError(error.code, error.message) from None
    if target_column is not None:
        columns = list(version.sdv_metadata.get("columns", {}))
        if target_column and target_column not in columns:
            raise CatalogError(
                "unknown_target", f"The target column {target_column!r} is not in the synthetic table."
            )
        version.target_column = target_column
    return version


def mark_submitted(version: ProductVersion) -> ProductVersion:
    """Save the locked draft (``lock_draft``) as submitted now and refresh its product's summary."""
    version.status = VersionStatus.SUBMITTED
    version.submitted_at = timezone.now()
    version.save()
    refresh_product_summary(version.product)
    return version


@transaction.atomic
def delete_draft(version: ProductVersion, *, user: User) -> None:
    """Discard a draft version and the files only it referenced."""
    ensure_can_manage(user, version.product)
    if version.status != VersionStatus.DRAFT:
        raise CatalogError("not_a_draft", "Only draft versions can be discarded.", status=409)
    files = list(version.files.all())
    version.delete()
    for item in files:
        if not VersionFile.objects.filter(storage_name=item.storage_name, role=item.role).exists():
            transaction.on_commit(partial(storages[item.storage_alias].delete, item.storage_name))


@transaction.atomic
def delete_reference_data(version: ProductVersion, *, user: User) -> int:
    """Delete a version's private reference files (the provider's right). Certificates keep aggregates only."""
    ensure_can_manage(user, version.product)
    count = 0
    for item in version.files.filter(role__in=[FileRole.TRAIN, FileRole.HOLDOUT], deleted_at__isnull=True):
        item.deleted_at = timezone.now()
        item.save(update_fields=["deleted_at"])
        if not VersionFile.objects.filter(storage_name=item.storage_name, deleted_at__isnull=True).exists():
            transaction.on_commit(partial(storages["reference"].delete, item.storage_name))
        count += 1
    return count
