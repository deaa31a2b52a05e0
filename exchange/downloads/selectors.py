"""Reads for downloads: which versions an entitlement reaches, how many full copies a license leaves, whether
a request starts a new copy, and which fingerprints a leaked table traces to. Writes are in ``services``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings

from exchange.delivery.models import Entitlement
from exchange.downloads.models import Delivery, Download
from marketplace.catalog.licenses import LICENSES
from marketplace.catalog.models import ProductVersion, VersionFile, VersionStatus
from marketplace.generators.models import SampleDraw

if TYPE_CHECKING:
    from exchange.downloads.fingerprint import TraceScore

# Licenses whose updates are limited in time (license text: "Versions published within 12 months").
UPDATE_WINDOW_DAYS = {"standard": 365}


def download_limit(license_code: str) -> int | None:
    """Full downloads allowed per file under a license (``SYNTHEX_DOWNLOAD_LIMITS``), None when unlimited."""
    limit = dict(settings.SYNTHEX_DOWNLOAD_LIMITS).get(license_code)
    return None if limit is None else int(limit)


def accessible_versions(entitlement: Entitlement) -> list[ProductVersion]:
    """The versions an entitlement may download, newest first: its own, and later certified versions of the
    product when its license includes updates (within the license's window, if any)."""
    own = entitlement.version
    versions = [own]
    license_ = LICENSES.get(entitlement.license_code)
    if license_ is not None and license_.includes_updates:
        later = ProductVersion.objects.filter(
            product_id=own.product_id, number__gt=own.number, status=VersionStatus.CERTIFIED
        )
        window = UPDATE_WINDOW_DAYS.get(entitlement.license_code)
        if window is not None:
            later = later.filter(certified_at__lte=entitlement.granted_at + timedelta(days=window))
        versions.extend(later)
    return sorted(versions, key=lambda version: version.number, reverse=True)


def newer_versions(entitlement: Entitlement) -> list[ProductVersion]:
    """Certified versions of the product newer than the entitlement's, whether or not included."""
    return list(
        ProductVersion.objects.filter(
            product_id=entitlement.version.product_id,
            number__gt=entitlement.version.number,
            status=VersionStatus.CERTIFIED,
        ).order_by("-number")
    )


def full_downloads(delivery_ids: list[str]) -> int:
    """Served downloads that count as a copy (``starts_copy``): see :func:`starts_new_copy`."""
    return Download.objects.filter(
        delivery_id__in=delivery_ids, outcome=Download.Outcome.SERVED, starts_copy=True
    ).count()


def starts_new_copy(delivery: Delivery, range_start: int | None) -> bool:
    """Whether a request for ``delivery`` from byte ``range_start`` (None: unranged) begins a new copy.

    A resume moves forward: it starts after every start already served for the current copy (the one begun
    by the latest counted request). The first request, and any request starting at or before such a start
    (``bytes=0-`` again, ``bytes=1-`` twice), is a new copy and counts toward the license's limit, whatever
    link it comes through: a ranged read never escapes the count, and ``synthex download`` resuming an
    interrupted copy (even with a fresh link) does not count twice.
    """
    served = Download.objects.filter(delivery=delivery, outcome=Download.Outcome.SERVED)
    current = served.filter(starts_copy=True).order_by("-created_at", "-ledger_index").first()
    if current is None:
        return True
    starts = served.filter(created_at__gte=current.created_at).values_list("range_start", flat=True)
    furthest = max((start or 0 for start in starts), default=0)
    return (range_start or 0) <= furthest


def downloads_left(entitlement: Entitlement, source: VersionFile | SampleDraw) -> int | None:
    """Full downloads left for one file or draw under the entitlement's license (all formats together), or
    None when the license sets no limit."""
    limit = download_limit(entitlement.license_code)
    if limit is None:
        return None
    deliveries = Delivery.objects.filter(entitlement=entitlement)
    if isinstance(source, SampleDraw):
        deliveries = deliveries.filter(draw=source)
    else:
        deliveries = deliveries.filter(version_file=source)
    ids = list(deliveries.values_list("id", flat=True))
    return max(0, limit - full_downloads(ids))


@dataclass(frozen=True)
class Suspect:
    """A fingerprint that scored against a leaked file, with the entitlement it belongs to."""

    fingerprint_id: str
    entitlement_id: str
    score: TraceScore
    accused: bool


def trace_table(table: Any) -> tuple[list[Suspect], int]:
    """Score every fingerprint that has delivered a copy whose columns the table holds (by name; order,
    row order, row subset and file format do not matter). Returns the suspects sorted by z (highest
    first) and how many candidates were tried; ``accused`` follows :func:`fingerprint.accuse`."""
    from exchange.downloads import fingerprint as fp

    names = set(table.column_names)
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for delivery in Delivery.objects.select_related("fingerprint").order_by("created_at"):
        plan = fp.FingerprintPlan.from_dict(delivery.plan)
        if not {column.name for column in plan.columns} <= names:
            continue
        groups.setdefault(
            (delivery.fingerprint_id, delivery.source_sha256), {"plan": plan, "delivery": delivery}
        )
    observed: dict[str, Any] = {}
    candidates = []
    for (fingerprint_id, source), item in groups.items():
        if source not in observed:
            observed[source] = fp.observe(table, item["plan"])
        candidates.append(
            (fingerprint_id, item["delivery"], fp.score(observed[source], item["delivery"].fingerprint.key))
        )
    accused = set(fp.accuse([score for _, _, score in candidates]))
    suspects = [
        Suspect(fingerprint_id, delivery.entitlement_id, score, index in accused)
        for index, (fingerprint_id, delivery, score) in enumerate(candidates)
    ]
    return sorted(suspects, key=lambda suspect: suspect.score.z, reverse=True), len(candidates)
