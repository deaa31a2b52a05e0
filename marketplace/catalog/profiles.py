"""What of a table's profile may be shown, and to whom.

A profile (``ingest.TableProfile.to_dict()``) holds the first rows (``preview``) and per-column figures
(min, max, top values, histograms) that can single out a row. That is fine for synthetic tables, which
are what buyers preview, and never for reference files (the provider's real train and holdout rows):
those are read by certification only. Outside it, a reference file shows its shape alone: its row count
and its columns' names and types.
"""

from __future__ import annotations

from typing import Any

SHAPE_KEYS = ("name", "dtype", "sdtype")


def shape_only(profile: dict[str, Any]) -> dict[str, Any]:
    """The table's shape: format, row count and each column's name, dtype and SDV sdtype; no values."""
    return {
        "format": profile.get("format"),
        "rows": profile.get("rows"),
        "columns": [{key: column.get(key) for key in SHAPE_KEYS} for column in profile.get("columns", [])],
    }


def stored_reference_profile(profile: dict[str, Any]) -> dict[str, Any]:
    """A reference file's profile as kept in the database: without its preview rows. The column figures
    stay for the platform's own use (certification, generator checks) and are never shown."""
    return {**profile, "preview": []}


def visible_profile(profile: dict[str, Any], *, is_reference: bool) -> dict[str, Any]:
    """The profile as any page, API answer or admin screen may show it."""
    return shape_only(profile) if is_reference else profile
