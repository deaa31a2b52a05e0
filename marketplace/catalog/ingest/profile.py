"""Streaming table profiles: types, nulls, distinct counts, moments, top values, histograms and a preview."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from marketplace.catalog.ingest.errors import IngestError
from marketplace.catalog.ingest.metadata import ColumnFacts, detect_sdv_metadata
from marketplace.catalog.ingest.sniff import TABLE_FORMATS
from marketplace.catalog.ingest.sources import MAX_TABLE_BYTES, TableSource, scan_text

try:  # the same guesser SDV 2.0 uses, so detected datetime formats match
    from pandas.core.tools.datetimes import _guess_datetime_format_for_array
except ImportError:  # pragma: no cover - older or newer pandas
    _guess_datetime_format_for_array = None

DTYPES = ("integer", "float", "boolean", "datetime", "string")
PREVIEW_ROWS = 20
TOP_VALUES = 10
HISTOGRAM_BINS = 20
# Exact distinct counting keeps one dict entry per value; the whole table shares this many entries.
DISTINCT_BUDGET = 1_000_000
DISTINCT_CAP_RANGE = (1_000, 100_000)
# Values still counted once a column passes its cap (they make its approximate top values).
HEAVY_HITTERS = 1_000
# k of the k-minimum-values distinct estimator: relative standard error about 1/sqrt(k), 3%.
SKETCH_SIZE = 1_024
_BOOLEAN_TEXT = {"true": True, "false": False}
# No date or time is written in more characters than this: longer text is not guessed as one (pandas'
# format guessing on a 64 MiB string took minutes).
MAX_DATETIME_CHARS = 64


@dataclass(frozen=True)
class ColumnProfile:
    """Statistics of one column over the whole file.

    ``dtype`` is one of ``DTYPES``; ``sdtype`` the SDV sdtype written in ``TableProfile.sdv_metadata``.
    ``distinct`` counts non-null values as written; it is exact when ``distinct_is_exact`` and a
    k-minimum-values estimate (about 3% error) otherwise, in which case ``top_values`` are the counts of the
    values that were most frequent when exact counting stopped. ``min``/``max`` are numbers for numeric
    columns, ISO-8601 strings for datetime columns and ``None`` otherwise; ``mean``/``std`` (population)
    are ``None`` unless numeric. ``histogram`` holds ``HISTOGRAM_BINS`` equal-width ``(lo, hi, count)``
    bins over ``[min, max]`` for numeric columns (one bin when min equals max), else is empty.
    """

    name: str
    dtype: str
    sdtype: str
    nulls: int
    distinct: int
    distinct_is_exact: bool
    min: float | int | str | None
    max: float | int | str | None
    mean: float | None
    std: float | None
    top_values: tuple[tuple[str, int], ...]
    histogram: tuple[tuple[float, float, int], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "sdtype": self.sdtype,
            "nulls": self.nulls,
            "distinct": self.distinct,
            "distinct_is_exact": self.distinct_is_exact,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "std": self.std,
            "top_values": [list(item) for item in self.top_values],
            "histogram": [list(item) for item in self.histogram],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnProfile:
        return cls(
            name=data["name"],
            dtype=data["dtype"],
            sdtype=data["sdtype"],
            nulls=data["nulls"],
            distinct=data["distinct"],
            distinct_is_exact=data["distinct_is_exact"],
            min=data["min"],
            max=data["max"],
            mean=data["mean"],
            std=data["std"],
            top_values=tuple((value, count) for value, count in data["top_values"]),
            histogram=tuple((lo, hi, count) for lo, hi, count in data["histogram"]),
        )


@dataclass(frozen=True)
class TableProfile:
    """A validated table: format, row count, column profiles, the first rows and SDV single-table metadata.

    ``preview`` holds up to ``PREVIEW_ROWS`` rows as dicts of JSON-safe values (numbers, booleans, strings,
    ``None``; datetimes as written or ISO-8601). ``sdv_metadata`` loads with SDV 2.0's
    ``Metadata.load_from_dict({"tables": {name: sdv_metadata}})``.
    """

    format: str
    rows: int
    columns: tuple[ColumnProfile, ...]
    preview: tuple[dict[str, Any], ...]
    sdv_metadata: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "rows": self.rows,
            "columns": [column.to_dict() for column in self.columns],
            "preview": [dict(row) for row in self.preview],
            "sdv_metadata": self.sdv_metadata,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableProfile:
        return cls(
            format=data["format"],
            rows=data["rows"],
            columns=tuple(ColumnProfile.from_dict(column) for column in data["columns"]),
            preview=tuple(dict(row) for row in data["preview"]),
            sdv_metadata=data["sdv_metadata"],
        )


class _Moments:
    """Count, mean, M2, min and max merged batch by batch (Chan et al.'s parallel update)."""

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.is_whole = True
        self.is_non_negative = True

    def add(self, values: np.ndarray, weights: np.ndarray) -> None:
        if values.size == 0:
            return
        count = int(weights.sum())
        mean = float(np.dot(values, weights) / count)
        m2 = float(np.dot(weights, (values - mean) ** 2))
        total = self.count + count
        delta = mean - self.mean
        self.mean += delta * count / total
        self.m2 += m2 + delta * delta * self.count * count / total
        self.count = total
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))
        self.is_whole = self.is_whole and bool(np.all(values == np.round(values)))
        self.is_non_negative = self.is_non_negative and bool(np.all(values >= 0))


class _ColumnStats:
    """Everything kept about one column while batches stream past; memory bounded by ``cap`` entries."""

    def __init__(self, name: str, cap: int, max_cell_bytes: int = 1 << 20) -> None:
        self.name = name
        self.cap = cap
        self.max_cell_bytes = max_cell_bytes
        self.arrow_kind: str | None = None  # the dtype a typed (Parquet) column has; None for text
        self.rows = 0
        self.nulls = 0
        self.counts: dict[Any, int] = {}
        self.is_exact = True
        self.sketch = np.empty(0, dtype=np.uint64)
        self.may_be_boolean = True
        self.may_be_integer = True
        self.may_be_float = True
        self.datetime_format: str | None = None
        self.may_be_datetime = True
        self.datetime_min: int | None = None
        self.datetime_max: int | None = None
        self.moments = _Moments()

    def add(self, array: pa.Array) -> None:
        array = _normalize(array)
        if self.arrow_kind is None and self.rows == 0:
            self.arrow_kind = _arrow_kind(array.type, self.name)
        self.rows += len(array)
        self.nulls += array.null_count
        valid = array.drop_null() if array.null_count else array
        if len(valid) == 0:
            return
        longest = _longest_text(valid, self.name, self.max_cell_bytes) if self.arrow_kind == "string" else 0
        counted = pc.value_counts(valid)
        values = counted.field("values")
        weights = counted.field("counts").to_numpy()
        self._count(values, weights)
        if self.arrow_kind == "string":
            self._infer_text(values, weights, longest)
        elif self.arrow_kind in ("integer", "float"):
            self.moments.add(values.to_numpy(zero_copy_only=False).astype(np.float64), weights)
        elif self.arrow_kind == "datetime":
            self._add_datetimes(pc.cast(values, pa.timestamp("us")))

    def _count(self, values: pa.Array, weights: np.ndarray) -> None:
        if self.is_exact:
            counts = self.counts
            for value, weight in zip(values.to_pylist(), weights.tolist(), strict=True):
                counts[value] = counts.get(value, 0) + weight
            if len(counts) > self.cap:
                self.is_exact = False
                self._sketch(pa.array(list(counts), type=values.type))
                heavy = sorted(counts.items(), key=lambda item: -item[1])[:HEAVY_HITTERS]
                self.counts = dict(heavy)
            return
        self._sketch(values)
        keys = pa.array(list(self.counts), type=values.type)
        positions = pc.index_in(values, value_set=keys).to_numpy(zero_copy_only=False)
        found = ~np.isnan(positions) if positions.dtype.kind == "f" else positions >= 0
        if found.any():
            totals = np.bincount(
                positions[found].astype(np.int64), weights=weights[found], minlength=len(keys)
            )
            for key, extra in zip(self.counts, totals.tolist(), strict=True):
                self.counts[key] += int(extra)

    def _sketch(self, values: pa.Array) -> None:
        # The values are distinct already (value_counts): categorizing them first would only cost time.
        hashes = pd.util.hash_array(values.to_numpy(zero_copy_only=False), categorize=False)
        self.sketch = np.unique(np.concatenate([self.sketch, hashes]))[:SKETCH_SIZE]

    def _infer_text(self, values: pa.Array, weights: np.ndarray, longest: int) -> None:
        if self.may_be_boolean:
            lowered = pc.utf8_lower(values)
            self.may_be_boolean = bool(
                pc.all(pc.is_in(lowered, value_set=pa.array(list(_BOOLEAN_TEXT)))).as_py()
            )
        if self.may_be_integer:
            self.may_be_integer = _casts(values, pa.int64())
        if self.may_be_float:
            numbers = _cast_or_none(values, pa.float64())
            if numbers is None or not bool(pc.all(pc.is_finite(numbers)).as_py()):
                self.may_be_float = False
            else:
                self.moments.add(numbers.to_numpy(zero_copy_only=False), weights)
        if self.may_be_datetime and longest > MAX_DATETIME_CHARS:
            self.may_be_datetime = False
        if self.may_be_datetime:
            if self.datetime_format is None:
                self.datetime_format = _guess_datetime_format(values)
                if self.datetime_format is None:
                    self.may_be_datetime = False
                    return
            parsed = _parse_datetimes(values, self.datetime_format)
            if parsed is None:
                self.may_be_datetime = False
            else:
                self._add_datetimes(parsed)

    def _add_datetimes(self, parsed: pa.Array) -> None:
        bounds = pc.min_max(parsed)
        low, high = bounds["min"].cast(pa.int64()).as_py(), bounds["max"].cast(pa.int64()).as_py()
        if low is None or high is None:
            return
        self.datetime_min = low if self.datetime_min is None else min(self.datetime_min, low)
        self.datetime_max = high if self.datetime_max is None else max(self.datetime_max, high)

    @property
    def has_values(self) -> bool:
        return self.rows > self.nulls

    @property
    def dtype(self) -> str:
        if self.arrow_kind != "string":
            return self.arrow_kind or "string"
        if not self.has_values:
            return "string"
        if self.may_be_boolean:
            return "boolean"
        if self.may_be_integer:
            return "integer"
        if self.may_be_float:
            return "float"
        if self.may_be_datetime:
            return "datetime"
        return "string"

    @property
    def distinct(self) -> int:
        if self.is_exact:
            return len(self.counts)
        # k-minimum-values: the k-th smallest of uniform 64-bit hashes sits near k / distinct of the range.
        return max(len(self.counts), round((SKETCH_SIZE - 1) * 2.0**64 / float(self.sketch[-1])))

    def numeric_keys(self) -> tuple[np.ndarray, np.ndarray]:
        """The exactly counted values as floats, with their counts (only meaningful when ``is_exact``)."""
        keys = np.array([float(key) for key in self.counts], dtype=np.float64)
        return keys, np.array(list(self.counts.values()), dtype=np.int64)


def _normalize(array: pa.Array) -> pa.Array:
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_large_string(array.type) or pa.types.is_string_view(array.type):
        array = array.cast(pa.string())
    if pa.types.is_decimal(array.type) or pa.types.is_floating(array.type):
        array = array.cast(pa.float64())
        # NaN and infinities are missing values, as pandas and SDV read them.
        array = pc.if_else(pc.is_finite(array), array, pa.scalar(None, pa.float64()))
    if pa.types.is_date(array.type):
        array = array.cast(pa.timestamp("us"))
    if pa.types.is_timestamp(array.type) and array.type.tz is not None:
        array = array.cast(pa.timestamp(array.type.unit))
    if pa.types.is_time(array.type) or pa.types.is_duration(array.type):
        array = array.cast(pa.string())
    return array


def _arrow_kind(data_type: pa.DataType, name: str) -> str:
    if pa.types.is_string(data_type) or pa.types.is_null(data_type):
        return "string"
    if pa.types.is_boolean(data_type):
        return "boolean"
    if pa.types.is_integer(data_type):
        return "integer"
    if pa.types.is_floating(data_type):
        return "float"
    if pa.types.is_timestamp(data_type):
        return "datetime"
    raise IngestError(
        "unsupported_format",
        f"Column {name!r} holds {data_type} values; only numbers, text, booleans and dates are supported "
        "(flatten nested values first).",
    )


def _longest_text(values: pa.Array, name: str, max_cell_bytes: int) -> int:
    """The longest value's length in bytes; refuses a cell over ``max_cell_bytes`` (so the work on one
    value is bounded, whatever a compressed file expands to)."""
    longest = pc.max(pc.binary_length(values)).as_py() or 0
    if longest > max_cell_bytes:
        raise IngestError(
            "cell_too_large",
            f"A value in column {name!r} is {longest:,} bytes long; cells are limited to "
            f"{max_cell_bytes:,} bytes.",
        )
    return int(longest)


def _casts(values: pa.Array, target: pa.DataType) -> bool:
    return _cast_or_none(values, target) is not None


def _cast_or_none(values: pa.Array, target: pa.DataType) -> pa.Array | None:
    try:
        return pc.cast(values, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _guess_datetime_format(values: pa.Array) -> str | None:
    if _guess_datetime_format_for_array is None:
        return None
    sample = np.asarray(values.slice(0, 100).to_pylist(), dtype=object)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _guess_datetime_format_for_array(sample)
        except (ValueError, TypeError):
            return None


def _parse_datetimes(values: pa.Array, datetime_format: str) -> pa.Array | None:
    try:
        return pc.strptime(values, format=datetime_format, unit="us")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # Arrow's strptime has no %f and a few other directives; pandas parses those.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = pd.to_datetime(pd.Series(values.to_pylist()), format=datetime_format, errors="raise")
        except (ValueError, TypeError, OverflowError):
            return None
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return pa.array(parsed.astype("datetime64[us]"), type=pa.timestamp("us"))


def _iso(microseconds: int | None) -> str | None:
    if microseconds is None:
        return None
    return pd.Timestamp(microseconds, unit="us").isoformat()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _plain_number(value: float, dtype: str) -> float | int:
    return int(value) if dtype == "integer" else float(value)


def _distinct_cap(columns: int) -> int:
    low, high = DISTINCT_CAP_RANGE
    return max(low, min(high, DISTINCT_BUDGET // max(1, columns)))


def _preview_value(value: Any, dtype: str) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        if dtype == "boolean":
            return _BOOLEAN_TEXT[value.lower()]
        if dtype == "integer":
            return int(value)
        if dtype == "float":
            return float(value)
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _no_progress(fraction: float) -> None:
    return None


def _with_deadline(
    report: Callable[[float], None], max_seconds: float | None, name: str
) -> Callable[[float], None]:
    """``report`` that also ends the check once ``max_seconds`` have passed (it is called after every
    block and batch, each of bounded size)."""
    if max_seconds is None:
        return report
    deadline = time.monotonic() + max_seconds

    def checked(fraction: float) -> None:
        if time.monotonic() > deadline:
            raise IngestError(
                "validation_timeout",
                f"Checking {name} took longer than {max_seconds:g} seconds, the limit per file; "
                "split it into smaller files.",
            )
        report(fraction)

    return checked


# Shares of the work for progress reports: the byte scan of text files, then parsing and statistics (the
# histogram pass takes the rest).
_SCAN_SHARE = 0.2
_PARSE_SHARE = 0.7


def profile_table(
    path: str | Path,
    fmt: str,
    *,
    max_line_bytes: int = 1 << 20,
    progress: Callable[[float], None] | None = None,
    max_seconds: float | None = None,
    max_table_bytes: int = MAX_TABLE_BYTES,
) -> TableProfile:
    """Validate and profile the table in ``path`` stored as ``fmt`` (one of ``TABLE_FORMATS``);
    ``progress`` is told the fraction done (0 to 1) as the passes go.

    Streams the file (text files twice: a byte scan, then parsing; a third pass reads numeric columns
    whose distinct values passed the exact-count cap, to bin their histograms), so memory stays bounded
    whatever the file size. Raises ``IngestError`` for every defect listed in ``ERROR_CODES`` that a stored
    file can have: empty, not UTF-8, NUL bytes, a line over ``max_line_bytes`` bytes, ragged CSV rows,
    broken or non-object JSON lines, truncated Parquet, empty or duplicate column names, no rows.

    The work is bounded whatever the file holds: no cell over ``max_line_bytes``, no Parquet file that
    expands past ``max_table_bytes``, no more than ``MAX_COLUMNS`` columns, JSON nested at most
    ``MAX_JSON_DEPTH`` levels, and ``IngestError("validation_timeout")`` once ``max_seconds`` have passed.
    """
    path = Path(path)
    if fmt not in TABLE_FORMATS:
        raise IngestError("unsupported_format", f"{fmt!r} is not a table format; use one of {TABLE_FORMATS}.")
    size = path.stat().st_size
    if size == 0:
        raise IngestError("empty_file", f"{path.name} is empty: there is no data to read.")
    report = _with_deadline(progress or _no_progress, max_seconds, path.name)
    longest_row = expected_rows = None
    if fmt != "parquet":
        scan = scan_text(
            path,
            max_line_bytes=max_line_bytes,
            quoted=fmt == "csv",
            progress=lambda done: report(_SCAN_SHARE * done / size),
        )
        longest_row, expected_rows = scan.longest_row, scan.lines
    source = TableSource(
        path, fmt, max_line_bytes=max_line_bytes, longest_row=longest_row, max_table_bytes=max_table_bytes
    )
    expected_rows = max(1, expected_rows or source.parquet_rows or 1)
    cap = _distinct_cap(len(source.names))
    stats = [_ColumnStats(name, cap, max_line_bytes) for name in source.names]
    preview_columns: list[list[Any]] = []
    for arrays in source.batches():
        if not preview_columns and len(arrays[0]) > 0:
            preview_columns = [array.slice(0, PREVIEW_ROWS).to_pylist() for array in arrays]
        for column, array in zip(stats, arrays, strict=True):
            column.add(array)
        report(_SCAN_SHARE + _PARSE_SHARE * min(1.0, stats[0].rows / expected_rows))
    rows = stats[0].rows
    if rows == 0:
        where = "a header but no rows" if fmt == "csv" else "no rows"
        raise IngestError("no_rows", f"{path.name} has {where}; upload a table with at least one row.")

    histograms = _histograms(source, stats, report)
    report(1.0)
    facts = [
        ColumnFacts(
            name=column.name,
            dtype=column.dtype,
            rows=rows,
            nulls=column.nulls,
            distinct=column.distinct,
            distinct_is_exact=column.is_exact,
            is_whole=column.moments.is_whole,
            is_non_negative=column.moments.is_non_negative,
            datetime_format=column.datetime_format if column.arrow_kind == "string" else None,
        )
        for column in stats
    ]
    sdv_metadata = detect_sdv_metadata(facts)
    profiles = tuple(
        _column_profile(
            column, sdv_metadata["columns"][column.name]["sdtype"], histograms.get(column.name, ())
        )
        for column in stats
    )
    preview = tuple(
        {
            column.name: _preview_value(values[index], column.dtype)
            for column, values in zip(stats, preview_columns, strict=True)
        }
        for index in range(len(preview_columns[0]))
    )
    return TableProfile(format=fmt, rows=rows, columns=profiles, preview=preview, sdv_metadata=sdv_metadata)


def _column_profile(column: _ColumnStats, sdtype: str, histogram: tuple[Any, ...]) -> ColumnProfile:
    dtype = column.dtype
    numeric = dtype in ("integer", "float") and column.moments.count > 0
    top = sorted(column.counts.items(), key=lambda item: (-item[1], _text(item[0])))[:TOP_VALUES]
    if numeric:
        low: Any = _plain_number(column.moments.min, dtype)
        high: Any = _plain_number(column.moments.max, dtype)
    elif dtype == "datetime":
        low, high = _iso(column.datetime_min), _iso(column.datetime_max)
    else:
        low = high = None
    return ColumnProfile(
        name=column.name,
        dtype=dtype,
        sdtype=sdtype,
        nulls=column.nulls,
        distinct=column.distinct,
        distinct_is_exact=column.is_exact,
        min=low,
        max=high,
        mean=column.moments.mean if numeric else None,
        std=math.sqrt(column.moments.m2 / column.moments.count) if numeric else None,
        top_values=tuple((_text(value), count) for value, count in top),
        histogram=histogram,
    )


def _histograms(
    source: TableSource, stats: list[_ColumnStats], report: Callable[[float], None]
) -> dict[str, tuple[tuple[float, float, int], ...]]:
    """Equal-width histograms of numeric columns: from exact counts, or by one more pass for the others."""
    result: dict[str, tuple[tuple[float, float, int], ...]] = {}
    numeric = [c for c in stats if c.dtype in ("integer", "float") and c.moments.count > 0]
    edges = {}
    for column in numeric:
        low, high = column.moments.min, column.moments.max
        if low == high:
            result[column.name] = ((low, high, column.moments.count),)
            continue
        edges[column.name] = np.linspace(low, high, HISTOGRAM_BINS + 1)
    totals = {name: np.zeros(HISTOGRAM_BINS, dtype=np.int64) for name in edges}
    rescan = []
    for column in numeric:
        if column.name not in edges:
            continue
        if column.is_exact:
            keys, weights = column.numeric_keys()
            totals[column.name] += np.histogram(keys, bins=edges[column.name], weights=weights)[0].astype(
                np.int64
            )
        else:
            rescan.append(column.name)
    if rescan:
        for arrays in source.batches(rescan):
            for name, array in zip(rescan, arrays, strict=True):
                values = _normalize(array).drop_null().cast(pa.float64()).to_numpy(zero_copy_only=False)
                totals[name] += np.histogram(values, bins=edges[name])[0]
            report(_SCAN_SHARE + _PARSE_SHARE)
    for name, bin_edges in edges.items():
        result[name] = tuple(
            (float(bin_edges[index]), float(bin_edges[index + 1]), int(totals[name][index]))
            for index in range(HISTOGRAM_BINS)
        )
    return result
