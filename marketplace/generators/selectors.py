"""Reads for generator products: quotas and rows reserved under an entitlement, the public description, and
the published evaluation sample that buyers' conditions are checked against."""

from __future__ import annotations

from typing import Any

from django.core.files.storage import storages
from django.db.models import Sum

from marketplace.catalog.models import FileRole, VersionFile
from marketplace.generators.models import GeneratorModel, SampleDraw

DEFAULT_ROW_QUOTAS = {"research": 10_000, "standard": 100_000, "commercial": 1_000_000}


def quota_for(generator: GeneratorModel, license_code: str) -> int:
    """The rows one entitlement under ``license_code`` may draw from ``generator``."""
    return int(generator.row_quotas.get(license_code, DEFAULT_ROW_QUOTAS.get(license_code, 0)))


def reserved_rows(entitlement_id: str) -> int:
    """Rows drawn or being drawn under an entitlement (failed draws count for nothing)."""
    total = SampleDraw.objects.filter(
        entitlement_id=entitlement_id,
        status__in=[SampleDraw.Status.QUEUED, SampleDraw.Status.RUNNING, SampleDraw.Status.SUCCEEDED],
    ).aggregate(rows=Sum("rows"))["rows"]
    return int(total or 0)


def describe(generator: GeneratorModel) -> dict[str, Any]:
    """The public description of a generator (no reference data, no seed)."""
    return {
        "kind": generator.kind,
        "synthesizer": generator.synthesizer,
        "status": generator.status,
        "sha256": generator.sha256,
        "columns": list(generator.sdv_metadata.get("columns", {})),
        "constraints": generator.constraints,
        "parameters": generator.parameters,
        "holdout_fraction": generator.holdout_fraction
        if generator.kind == GeneratorModel.Kind.FITTED
        else None,
        "training_rows": generator.training_rows,
        "loss_values": generator.loss_values,
        "scan": generator.scan,
        "row_quotas": generator.row_quotas,
        "error": generator.error,
    }


def public_sample(generator: GeneratorModel) -> VersionFile | None:
    """The generator's evaluation sample (synthetic, published with its certificate), if it has one."""
    published = generator.version.files.filter(role=FileRole.SYNTHETIC, deleted_at__isnull=True)
    return published.order_by("pk").first()


def sample_values(sample: VersionFile, name: str) -> set[str]:
    """The distinct values of column ``name`` of the published sample, as text (read from its Parquet)."""
    import pyarrow.parquet as pq

    if sample.format != "parquet":
        return set()
    with storages[sample.storage_alias].open(sample.storage_name, "rb") as handle:
        column = pq.read_table(handle, columns=[name]).column(0).unique().to_pylist()
    return {str(value) for value in column if value is not None}


def in_public_sample(sample: VersionFile, name: str, sdtype: str, value: Any) -> bool:
    """Whether ``value`` is among (categorical, boolean) or within the range of (numerical) the values of
    column ``name`` in the published sample: from its profile, or from the file when the profile's list of
    top values is not the complete list."""
    profile = next((c for c in sample.profile.get("columns", []) if c.get("name") == name), None)
    if profile is None:
        return False
    if sdtype == "numerical":
        low, high = profile.get("min"), profile.get("max")
        return isinstance(low, int | float) and isinstance(high, int | float) and low <= value <= high
    top = profile.get("top_values", [])
    if profile.get("distinct_is_exact") and len(top) >= profile.get("distinct", 0):
        known = {str(item[0]) for item in top}
    else:
        known = sample_values(sample, name)
    return str(value) in known or (sdtype == "boolean" and str(value).lower() in {k.lower() for k in known})
