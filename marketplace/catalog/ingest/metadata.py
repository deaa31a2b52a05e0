"""SDV single-table metadata detected from column statistics, and the provider's corrections to it.

The rules follow SDV 2.0's ``Metadata.detect_from_dataframes`` (``sdv/metadata/_single_table.py``) without
importing SDV (its torch import costs seconds): a column whose name has an ``id`` token is ``id``; whole,
non-negative, unique, non-null numbers and unique non-null text are primary-key candidates and the first
candidate becomes the ``primary_key`` with sdtype ``id``; text that parses as dates is ``datetime`` with the
format pandas guesses from its first values. Two deliberate differences, to keep to the five sdtypes the
catalog offers: SDV's ``ordinal`` (whole numbers with at most min(rows/10, 10) values) is written as
``categorical``, and boolean columns are ``boolean`` rather than ``categorical``. PII sdtypes (email,
phone_number, ...) are not detected; providers set them through overrides if SDV should anonymize them.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from marketplace.catalog.ingest.errors import IngestError

SDTYPES = ("numerical", "categorical", "boolean", "datetime", "id")
SPEC_VERSION = "SINGLE_TABLE_V2"
# SDV's _MIN_ROWS_FOR_PREDICTION: with this many rows or fewer no key or ordinal is guessed.
_MIN_ROWS_FOR_PREDICTION = 5
# A column past the exact distinct cap counts as unique when the estimate is this close to the row count.
_APPROXIMATE_UNIQUE = 0.98


@dataclass(frozen=True)
class ColumnFacts:
    """What detection needs to know about one column; ``is_whole``/``is_non_negative`` refer to numbers."""

    name: str
    dtype: str
    rows: int
    nulls: int
    distinct: int
    distinct_is_exact: bool
    is_whole: bool
    is_non_negative: bool
    datetime_format: str | None


def _name_tokens(name: str) -> list[str]:
    """SDV's ``_tokenize_column_name``: split on spaces, dashes and underscores, else on camelCase."""
    tokens = name.replace(" ", "_").replace("-", "_").split("_")
    if len(tokens) == 1:
        tokens = []
        if name.upper() != name and name[1:].lower() != name[1:]:
            tokens = re.findall("[A-Z][^A-Z]*", name)
    return [token.lower() for token in (tokens or [name])]


def _is_unique(facts: ColumnFacts) -> bool:
    if facts.nulls:
        return False
    if facts.distinct_is_exact:
        return facts.distinct == facts.rows
    return facts.distinct >= _APPROXIMATE_UNIQUE * facts.rows


def _sdtype_and_key_candidate(facts: ColumnFacts) -> tuple[str, bool]:
    enough_rows = facts.rows > _MIN_ROWS_FOR_PREDICTION
    unique = _is_unique(facts)
    if "id" in _name_tokens(facts.name):
        return "id", unique
    if facts.dtype == "boolean":
        return "boolean", False
    if facts.dtype == "datetime":
        return "datetime", False
    if facts.dtype in ("integer", "float"):
        ordinal_limit = min(round(facts.rows / 10), 10)
        if enough_rows and facts.is_whole and facts.distinct <= ordinal_limit and facts.distinct > 0:
            return "categorical", False
        return "numerical", enough_rows and unique and facts.is_whole and facts.is_non_negative
    return "categorical", enough_rows and unique


def detect_sdv_metadata(columns: list[ColumnFacts]) -> dict[str, Any]:
    """SDV 2.0 single-table metadata (``METADATA_SPEC_VERSION`` ``SINGLE_TABLE_V2``) for ``columns``.

    Returns ``{"columns": {name: {"sdtype": ..., ["datetime_format": ...]}}, "primary_key": name (only when
    a candidate exists), "METADATA_SPEC_VERSION": "SINGLE_TABLE_V2"}``.
    """
    described: dict[str, dict[str, Any]] = {}
    primary_key = None
    for facts in columns:
        sdtype, is_candidate = _sdtype_and_key_candidate(facts)
        if is_candidate and primary_key is None:
            primary_key = facts.name
            sdtype = "id"
        entry: dict[str, Any] = {"sdtype": sdtype}
        if sdtype == "datetime" and facts.datetime_format:
            entry["datetime_format"] = facts.datetime_format
        described[facts.name] = entry
    metadata: dict[str, Any] = {"columns": described}
    if primary_key is not None:
        metadata["primary_key"] = primary_key
    metadata["METADATA_SPEC_VERSION"] = SPEC_VERSION
    return metadata


def apply_metadata_overrides(sdv_metadata: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """A copy of ``sdv_metadata`` with each column in ``overrides`` set to the given sdtype.

    ``overrides`` maps column names to sdtypes from ``SDTYPES``. A column moved away from ``datetime`` loses
    its ``datetime_format``; a primary key moved away from ``id`` stops being the primary key. Raises
    ``IngestError("bad_metadata")`` naming the first unknown column or sdtype; the input is never changed.
    """
    columns = sdv_metadata.get("columns") if isinstance(sdv_metadata, dict) else None
    if not isinstance(columns, dict):
        raise IngestError("bad_metadata", "The metadata has no columns to correct.")
    if not isinstance(overrides, dict):
        raise IngestError("bad_metadata", "Corrections must map column names to sdtypes.")
    for name, sdtype in overrides.items():
        if name not in columns:
            raise IngestError("bad_metadata", f"There is no column named {name!r} in this table.")
        if sdtype not in SDTYPES:
            raise IngestError(
                "bad_metadata",
                f"{sdtype!r} is not a known type for column {name!r}; use one of {', '.join(SDTYPES)}.",
            )
    result = copy.deepcopy(sdv_metadata)
    for name, sdtype in overrides.items():
        entry = result["columns"][name]
        entry["sdtype"] = sdtype
        if sdtype != "datetime":
            entry.pop("datetime_format", None)
        if sdtype != "id" and result.get("primary_key") == name:
            del result["primary_key"]
    return result
