"""Per-buyer fingerprints for delivered tables: marking a copy and tracing a leaked one.

Pure: numpy, pandas and pyarrow only (no Django), so it can be tested and benchmarked on its own.

Scheme (docs/delivery.md has the full account and its limits): a copy never changes a value. Each buyer's
copy omits a keyed pseudo-random share of the source's rows (a synthetic table's rows are interchangeable
draws, so the copy is a uniform subset of the certified rows, every value as certified).

- A row's *anchor* hashes, over every column in order-free fashion, the value of each numeric cell (in
  units of the column's precision: 1 for integers, ``10**-decimals`` for decimals, 15 significant digits
  for continuous floats) and the text of each string cell. It survives row shuffles, column reordering,
  row subsets and re-saving in another format.
- For a key, ``mix64(anchor ^ k_rows)`` gives each row a uniform number; rows under the plan's
  ``omit_rate`` are left out of that key's copy. The rate is about 1 % on large tables and up to 5 % on
  small ones, so that half of a copy still holds enough rows to name its source (``omit_rate``).
- Tracing counts, for a candidate key, the leaked file's distinct anchors that this key would have
  omitted. A copy made with the key has none; any other file (another buyer's copy, the original, another
  table) has each of its ``n`` anchors in that set with probability ``omit_rate``, independently, so the
  count is Binomial(n, rate) and ``P(count <= observed)`` bounds the chance of a false accusation. A
  candidate is named only when that bound, times the number of candidates tried, is below
  ``ACCUSE_BELOW``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# Share of rows each copy omits: enough that half of a copy holds ~20 omitted-set rows (``OMIT_EXPECTED``
# / 2), at least 1 % and at most 5 % of the rows.
OMIT_RATE_MIN = 0.01
OMIT_RATE_MAX = 0.05
OMIT_EXPECTED = 40
MAX_DECIMALS = 6
CONTINUOUS_SIGNIFICANT_DIGITS = 15
ACCUSE_BELOW = 1e-6
SCHEME = "omit-rows/v1"

_NULL_COMPONENT = np.uint64(0x9E3779B97F4A7C15)
_ROWS_CONSTANT = "synthex.fingerprint.rows"


def mix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer over uint64 values (a bijection with full avalanche; not a cryptographic PRF)."""
    z = values.astype(np.uint64, copy=True)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def _name_constant(name: str, key: bytes = b"") -> np.uint64:
    digest = hmac.new(key or b"synthex.fingerprint.anchor", name.encode("utf-8"), hashlib.sha256).digest()
    return np.uint64(int.from_bytes(digest[:8], "little"))


@dataclass(frozen=True)
class ColumnPlan:
    """How one column takes part in the anchor: ``kind`` is ``numeric`` (in units of ``10**-decimals``;
    ``integer`` when stored as integers) or ``text``."""

    name: str
    kind: str
    decimals: int = 0
    integer: bool = False

    @property
    def scale(self) -> float:
        return float(10**self.decimals)


def omit_rate_for(rows: int) -> float:
    """The share of rows a copy of a ``rows``-row table omits: ``OMIT_EXPECTED / rows`` within
    [``OMIT_RATE_MIN``, ``OMIT_RATE_MAX``]."""
    return min(OMIT_RATE_MAX, max(OMIT_RATE_MIN, OMIT_EXPECTED / max(rows, 1)))


@dataclass(frozen=True)
class FingerprintPlan:
    """The key-independent description of a source table: its columns' roles and units, its row count and
    the share of rows each copy omits."""

    columns: tuple[ColumnPlan, ...]
    rows: int
    omit_rate: float = OMIT_RATE_MIN

    @property
    def numeric(self) -> tuple[ColumnPlan, ...]:
        return tuple(column for column in self.columns if column.kind == "numeric")

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": SCHEME,
            "rows": self.rows,
            "omit_rate": self.omit_rate,
            "columns": [
                {"name": c.name, "kind": c.kind, "decimals": c.decimals, "integer": c.integer}
                for c in self.columns
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FingerprintPlan:
        rows = int(data["rows"])
        return cls(
            columns=tuple(
                ColumnPlan(c["name"], c["kind"], int(c["decimals"]), bool(c["integer"]))
                for c in data["columns"]
            ),
            rows=rows,
            omit_rate=float(data.get("omit_rate", omit_rate_for(rows))),
        )


@dataclass(frozen=True)
class MarkStats:
    """What marking did: rows read from the source and rows left out of the copy."""

    rows: int
    omitted: int


@dataclass(frozen=True)
class TraceScore:
    """One candidate key against a table: ``checks`` distinct rows, ``matches`` of them in the set this key
    omits (0 for its own copies), the z-score of that shortfall, and the chance that a file not made with
    this key has so few (before correcting for several candidates)."""

    checks: int
    matches: int
    z: float
    p_bound: float


def fingerprint_key(secret: bytes, fingerprint_id: str) -> bytes:
    """The 32-byte marking key of one fingerprint id under a secret."""
    return hmac.new(secret, f"synthex.fingerprint:{fingerprint_id}".encode(), hashlib.sha256).digest()


def _is_numeric(data_type: pa.DataType) -> bool:
    return pa.types.is_integer(data_type) or pa.types.is_floating(data_type)


def _decimals_needed(values: np.ndarray) -> int | None:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0
    for decimals in range(MAX_DECIMALS + 1):
        scaled = values * 10.0**decimals
        if np.all(np.abs(scaled - np.rint(scaled)) <= 1e-7 * np.maximum(1.0, np.abs(scaled))):
            return decimals
    return None


def _column_kind(data_type: pa.DataType) -> str:
    if _is_numeric(data_type):
        return "numeric"
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return "text"
    return "other"


def plan_table(batches: Iterable[pa.RecordBatch]) -> FingerprintPlan:
    """Read ``batches`` once and decide each column's role and unit. Numeric columns are integers or floats;
    string columns are text; other types (booleans, timestamps) take no part."""
    decimals: dict[str, int | None] = {}
    magnitude: dict[str, float] = {}
    kinds: dict[str, str] = {}
    integer: dict[str, bool] = {}
    rows = 0
    for batch in batches:
        rows += batch.num_rows
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            if name not in kinds:
                kinds[name] = _column_kind(column.type)
                integer[name] = pa.types.is_integer(column.type)
                decimals[name], magnitude[name] = 0, 0.0
            if kinds[name] != "numeric":
                continue
            values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
            finite = values[np.isfinite(values)]
            if finite.size:
                magnitude[name] = max(magnitude[name], float(np.abs(finite).max()))
            if not integer[name] and decimals[name] is not None:
                needed = _decimals_needed(values)
                decimals[name] = None if needed is None else max(decimals[name] or 0, needed)
    columns = []
    for name, kind in kinds.items():
        if kind == "numeric":
            places = _decimal_places(decimals[name], magnitude[name])
            columns.append(ColumnPlan(name, "numeric", places, integer[name]))
        elif kind == "text":
            columns.append(ColumnPlan(name, "text"))
    return FingerprintPlan(tuple(columns), rows, omit_rate_for(rows))


def _decimal_places(decimals: int | None, magnitude: float) -> int:
    """A numeric column's unit in decimal places: the decimals its values show, or for continuous values
    (``decimals`` None) enough places for ``CONTINUOUS_SIGNIFICANT_DIGITS`` at its largest ``magnitude``."""
    if decimals is not None:
        return decimals
    digits = int(math.floor(math.log10(magnitude))) + 1 if magnitude >= 1 else 1
    return max(0, CONTINUOUS_SIGNIFICANT_DIGITS - digits)


def _units(array: pa.Array | pa.ChunkedArray, column: ColumnPlan) -> tuple[np.ndarray, np.ndarray]:
    """(units as int64, valid mask) for a numeric column given as any Arrow type (strings are parsed)."""
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        array = pc.cast(pc.utf8_trim_whitespace(array), pa.float64(), safe=False)
    if pa.types.is_integer(array.type) and column.decimals == 0:
        values = array.to_numpy(zero_copy_only=False)
        valid = ~np.asarray(pc.is_null(array).to_numpy(zero_copy_only=False), dtype=bool)
        if values.dtype.kind == "f":
            valid &= np.isfinite(values)
            return np.where(valid, values, 0).astype(np.int64), valid
        return values.astype(np.int64), valid
    values = np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.float64)
    scaled = values * column.scale
    valid = np.isfinite(scaled) & (np.abs(scaled) < 2.0**62)
    return np.where(valid, np.rint(np.where(valid, scaled, 0.0)), 0).astype(np.int64), valid


def _text_hash(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = pc.cast(array, pa.string())
    encoded = pc.dictionary_encode(pc.fill_null(array, "\x00null"))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    dictionary = np.asarray(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=object)
    hashes = pd.util.hash_array(dictionary, categorize=False)
    return hashes[encoded.indices.to_numpy(zero_copy_only=False)]


def anchors(table: pa.Table | pa.RecordBatch, plan: FingerprintPlan) -> np.ndarray:
    """The anchor (uint64) of each row: the same under row order, column order, row subsets and file format.

    Raises KeyError when a planned column is missing.
    """
    total = np.zeros(table.num_rows, dtype=np.uint64)
    for column in plan.columns:
        array = table.column(column.name)
        if column.kind == "numeric":
            units, valid = _units(array, column)
            component = np.where(valid, units.astype(np.uint64), _NULL_COMPONENT)
        else:
            component = _text_hash(array)
        total += mix64(component ^ _name_constant(column.name))
    return mix64(total)


def omitted(anchor: np.ndarray, key: bytes, rate: float) -> np.ndarray:
    """Whether each row (by anchor) is left out of the copy made with ``key``: a keyed uniform draw under
    ``rate``."""
    drawn = mix64(anchor ^ _name_constant(_ROWS_CONSTANT, key))
    uniform = (drawn >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return uniform < rate


class Marker:
    """Makes one key's copy of a table batch by batch: :meth:`mark` returns each batch without the rows
    that key omits, every other row and value untouched (:meth:`count` is kept for the two-pass callers
    and does nothing). With ``max_rows`` the copy stops after that many rows (a generator draw makes spare
    rows so that the copy still holds the rows the buyer asked for)."""

    def __init__(self, plan: FingerprintPlan, key: bytes, max_rows: int | None = None) -> None:
        self.plan = plan
        self.key = key
        self.max_rows = max_rows
        self._rows = 0
        self._omitted = 0
        self._kept = 0

    def count(self, batch: pa.RecordBatch) -> None:
        """First pass: nothing to prepare (a row's fate depends on its anchor alone)."""

    def mark(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The batch without the rows this key omits (same schema, same order for the rows kept)."""
        drop = omitted(anchors(batch, self.plan), self.key, self.plan.omit_rate)
        self._rows += batch.num_rows
        self._omitted += int(drop.sum())
        kept = batch.filter(pa.array(~drop)) if drop.any() else batch
        if self.max_rows is not None:
            kept = kept.slice(0, max(0, self.max_rows - self._kept))
        self._kept += kept.num_rows
        return kept

    @property
    def stats(self) -> MarkStats:
        return MarkStats(self._rows, self._omitted)


def mark_table(table: pa.Table, plan: FingerprintPlan, key: bytes, batch_rows: int = 65_536) -> pa.Table:
    """Mark a whole in-memory table; for files use :class:`Marker` over streamed batches."""
    batches = table.to_batches(max_chunksize=batch_rows)
    marker = Marker(plan, key)
    return pa.Table.from_batches([marker.mark(batch) for batch in batches], schema=table.schema)


@dataclass(frozen=True)
class Observations:
    """A leaked table reduced to what tracing needs, computed once for every candidate key: the distinct
    anchors of its rows and the omission rate of the plan they were computed under."""

    anchors: np.ndarray
    omit_rate: float


def observe(table: pa.Table, plan: FingerprintPlan) -> Observations:
    """Reduce ``table`` (any column order, any row order, any subset of rows) for tracing under ``plan``.

    Raises KeyError when a planned column is missing from the table.
    """
    return Observations(np.unique(anchors(table, plan)), plan.omit_rate)


def _binomial_cdf(count: int, trials: int, rate: float) -> float:
    """P(X <= count) for X ~ Binomial(trials, rate), summed in log space (exact for small ``count``)."""
    if count >= trials:
        return 1.0
    log_rate, log_rest = math.log(rate), math.log1p(-rate)
    terms = [
        math.lgamma(trials + 1)
        - math.lgamma(k + 1)
        - math.lgamma(trials - k + 1)
        + k * log_rate
        + (trials - k) * log_rest
        for k in range(count + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(term - top) for term in terms))


def score(observations: Observations, key: bytes) -> TraceScore:
    """Score one candidate key: how many of the leaked rows this key would have left out of its copy."""
    trials = int(observations.anchors.size)
    rate = observations.omit_rate
    if trials == 0:
        return TraceScore(checks=0, matches=0, z=0.0, p_bound=1.0)
    count = int(omitted(observations.anchors, key, rate).sum())
    expected = trials * rate
    z = (expected - count) / math.sqrt(expected * (1 - rate))
    bound = _binomial_cdf(count, trials, rate) if count < expected else 1.0
    return TraceScore(checks=trials, matches=count, z=z, p_bound=bound)


def accuse(scores: Sequence[TraceScore], limit: float = ACCUSE_BELOW) -> list[int]:
    """Indexes of the candidates whose bound, corrected for trying ``len(scores)`` candidates, is below
    ``limit``: the chance of naming anyone for a copy made with none of these keys is at most ``limit``."""
    tried = max(1, len(scores))
    return [index for index, item in enumerate(scores) if item.p_bound * tried < limit]
