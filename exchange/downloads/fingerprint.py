"""Per-buyer fingerprints for delivered tables: marking a copy and tracing a leaked one.

Pure: numpy, pandas and pyarrow only (no Django), so it can be tested and benchmarked on its own.

Scheme (docs/delivery.md has the full account and its limits):

- Every numeric column gets a unit: 1 for integers, ``10**-decimals`` for decimals (the fewest decimals, up
  to 6, that hold every value), or a sub-precision unit for continuous floats. A cell's *units* are its value
  in units, rounded; a mark only ever moves a value by one unit, between ``2k`` and ``2k + 1`` (``units ^ 1``),
  so ``units >> 1`` never changes.
- A row's *anchor* hashes, over every column in name order-free fashion, ``units >> 1`` of numeric cells and
  the text of string cells. Marks cannot change it, so it survives marking, shuffles, column reordering and
  format changes.
- For a key and a column, ``mix(anchor ^ k_column)`` gives each cell a selection bit (rate ``RATE``) and a
  target parity. A selected cell whose parity differs from its target needs a flip. Flips are done in
  balanced pairs: within each value pair ``(2k, 2k + 1)`` of a column as many cells move up as down, plus at
  most ``allowance`` extra in one direction, so each column's value counts (its marginal) move by at most
  ``allowance`` rows per value: column shapes are unchanged to within ``allowance / rows``.
- Tracing recomputes anchors and targets for a candidate key and counts selected cells whose parity matches
  their target, weighted by how balanced their value pair is in the leaked file. For a copy not made with
  that key each match is a fair coin, so the weighted sum ``S`` has mean 0 and Hoeffding's bound
  ``P(S >= z * sqrt(sum w^2)) <= exp(-z^2 / 2)`` holds; a candidate is named only when that bound, times the
  number of candidates tried, is below ``ACCUSE_BELOW``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

RATE = 0.5
# The most rows by which one value's count may move per column, as a share of the table's rows (at least 1).
ALLOWANCE_SHARE = 0.001
MAX_DECIMALS = 6
CONTINUOUS_SIGNIFICANT_DIGITS = 15
ACCUSE_BELOW = 1e-6

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)
_NULL_COMPONENT = np.uint64(0x9E3779B97F4A7C15)
_SELECT_BITS = 16


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
    """How one column takes part: ``kind`` is ``numeric`` (marked, unit ``10**-decimals``; ``integer`` when
    stored as integers) or ``text`` (part of the anchor only)."""

    name: str
    kind: str
    decimals: int = 0
    integer: bool = False
    # The value pairs (units >> 1) holding the column's minimum and maximum are never marked: a new extreme
    # would move every equal-width bin edge that pair-trend figures use.
    low_pair: int = 0
    high_pair: int = 0

    @property
    def scale(self) -> float:
        return float(10**self.decimals)


@dataclass(frozen=True)
class FingerprintPlan:
    """The key-independent description of a source table: its columns' roles and units and its row count."""

    columns: tuple[ColumnPlan, ...]
    rows: int

    @property
    def numeric(self) -> tuple[ColumnPlan, ...]:
        return tuple(column for column in self.columns if column.kind == "numeric")

    @property
    def allowance(self) -> int:
        return max(1, int(self.rows * ALLOWANCE_SHARE))

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "columns": [
                {
                    "name": c.name,
                    "kind": c.kind,
                    "decimals": c.decimals,
                    "integer": c.integer,
                    "low_pair": c.low_pair,
                    "high_pair": c.high_pair,
                }
                for c in self.columns
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FingerprintPlan:
        return cls(
            columns=tuple(
                ColumnPlan(
                    c["name"],
                    c["kind"],
                    int(c["decimals"]),
                    bool(c["integer"]),
                    int(c["low_pair"]),
                    int(c["high_pair"]),
                )
                for c in data["columns"]
            ),
            rows=int(data["rows"]),
        )


@dataclass(frozen=True)
class MarkStats:
    """What marking did: cells selected, cells flipped (each moved by one unit), per column name."""

    selected: Mapping[str, int]
    flipped: Mapping[str, int]


@dataclass(frozen=True)
class TraceScore:
    """One candidate key against a table: ``checks`` weighted cells, z-score, and the Hoeffding bound on the
    chance that a copy not made with this key scores as high (before correcting for several candidates)."""

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


def plan_table(batches: Iterable[pa.RecordBatch]) -> FingerprintPlan:
    """Read ``batches`` once and decide each column's role and unit. Numeric columns are integers or floats;
    string columns are text; other types (booleans, timestamps) take no part."""
    decimals: dict[str, int | None] = {}
    magnitude: dict[str, float] = {}
    low: dict[str, float] = {}
    high: dict[str, float] = {}
    kinds: dict[str, str] = {}
    integer: dict[str, bool] = {}
    order: list[str] = []
    rows = 0
    for batch in batches:
        rows += batch.num_rows
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            if name not in kinds:
                order.append(name)
                if _is_numeric(column.type):
                    kinds[name] = "numeric"
                    integer[name] = pa.types.is_integer(column.type)
                    decimals[name] = 0
                    magnitude[name] = 0.0
                    low[name], high[name] = math.inf, -math.inf
                elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                    kinds[name] = "text"
                else:
                    kinds[name] = "other"
            if kinds[name] != "numeric":
                continue
            values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
            finite = values[np.isfinite(values)]
            if finite.size:
                magnitude[name] = max(magnitude[name], float(np.abs(finite).max()))
                low[name], high[name] = (
                    min(low[name], float(finite.min())),
                    max(high[name], float(finite.max())),
                )
            if integer[name]:
                continue
            if decimals[name] is not None:
                needed = _decimals_needed(values)
                decimals[name] = None if needed is None else max(decimals[name] or 0, needed)
    columns = []
    for name in order:
        if kinds[name] == "numeric":
            places = decimals[name]
            if places is None:
                digits = int(math.floor(math.log10(magnitude[name]))) + 1 if magnitude[name] >= 1 else 1
                places = max(0, CONTINUOUS_SIGNIFICANT_DIGITS - digits)
            extremes = [0, 0]
            if math.isfinite(low[name]):
                extremes = [int(round(value * 10.0**places)) >> 1 for value in (low[name], high[name])]
            columns.append(ColumnPlan(name, "numeric", places, integer[name], extremes[0], extremes[1]))
        elif kinds[name] == "text":
            columns.append(ColumnPlan(name, "text"))
    return FingerprintPlan(tuple(columns), rows)


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
    """The anchor (uint64) of each row: invariant under marks, row order, column order and file format.

    Raises KeyError when a planned column is missing.
    """
    total = np.zeros(table.num_rows, dtype=np.uint64)
    for column in plan.columns:
        array = table.column(column.name)
        if column.kind == "numeric":
            units, valid = _units(array, column)
            component = np.where(valid, (units >> 1).astype(np.uint64), _NULL_COMPONENT)
        else:
            component = _text_hash(array)
        total += mix64(component ^ _name_constant(column.name))
    return mix64(total)


def _draws(
    anchor: np.ndarray, key: bytes, column: ColumnPlan, units: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(target parity, selected) per cell; cells in the extreme value pairs are never selected."""
    drawn = mix64(anchor ^ _name_constant(column.name, key))
    target = (drawn & np.uint64(1)).astype(np.int64)
    selected = ((drawn >> np.uint64(1)) & np.uint64((1 << _SELECT_BITS) - 1)) < np.uint64(
        int(RATE * (1 << _SELECT_BITS))
    )
    pairs = units >> 1
    return target, selected & (pairs != column.low_pair) & (pairs != column.high_pair)


class Marker:
    """Marks a table batch by batch with one key: call :meth:`count` on every batch, then :meth:`mark` on the
    same batches in the same order. Memory is a few counters per distinct value pair of each column."""

    def __init__(self, plan: FingerprintPlan, key: bytes) -> None:
        self.plan = plan
        self.key = key
        self._needed: dict[str, tuple[list[pd.Series], list[pd.Series]]] = {
            c.name: ([], []) for c in plan.numeric
        }
        self._quota: dict[str, tuple[pd.Series, pd.Series]] = {}
        self._done: dict[str, tuple[pd.Series, pd.Series]] = {}
        self._selected = dict.fromkeys(self._needed, 0)
        self._flipped = dict.fromkeys(self._needed, 0)

    def _needs(
        self, batch: pa.RecordBatch
    ) -> Iterator[tuple[ColumnPlan, np.ndarray, np.ndarray, np.ndarray]]:
        anchor = anchors(batch, self.plan)
        for column in self.plan.numeric:
            units, valid = _units(batch.column(column.name), column)
            target, selected = _draws(anchor, self.key, column, units)
            selected &= valid
            need = selected & ((units & 1) != target)
            yield column, units, selected, need

    def count(self, batch: pa.RecordBatch) -> None:
        """First pass: count, per value pair, the cells that need to move up (even) and down (odd)."""
        for column, units, _, need in self._needs(batch):
            moving = units[need]
            up, down = self._needed[column.name]
            up.append(pd.Series(moving[(moving & 1) == 0] >> 1).value_counts())
            down.append(pd.Series(moving[(moving & 1) == 1] >> 1).value_counts())

    def _finish_counting(self) -> None:
        allowance = self.plan.allowance
        for name, (up_parts, down_parts) in self._needed.items():
            up, down = (
                pd.concat(parts).groupby(level=0).sum() if parts else pd.Series(dtype=np.int64)
                for parts in (up_parts, down_parts)
            )
            pairs = up.index.union(down.index)
            up, down = up.reindex(pairs, fill_value=0), down.reindex(pairs, fill_value=0)
            both = np.minimum(up, down)
            self._quota[name] = (
                np.minimum(up, both + allowance).astype(np.int64),
                np.minimum(down, both + allowance).astype(np.int64),
            )
            self._done[name] = (pd.Series(0, index=pairs), pd.Series(0, index=pairs))
        self._needed = {}

    def mark(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Second pass: return the batch with this key's flips applied (same schema, same row order)."""
        if self._needed or not self._quota:
            self._finish_counting()
        arrays = dict(zip(batch.schema.names, batch.columns, strict=True))
        for column, units, selected, need in self._needs(batch):
            self._selected[column.name] += int(selected.sum())
            flip = np.zeros(len(units), dtype=bool)
            quota_up, quota_down = self._quota[column.name]
            done_up, done_down = self._done[column.name]
            for odd, quota, done in ((0, quota_up, done_up), (1, quota_down, done_down)):
                rows = np.flatnonzero(need & ((units & 1) == odd))
                if rows.size == 0:
                    continue
                pairs = pd.Series(units[rows] >> 1)
                keys = pairs.to_numpy()
                rank = pairs.groupby(pairs).cumcount().to_numpy() + done.reindex(keys).to_numpy()
                allowed = rank < quota.reindex(keys).to_numpy()
                flip[rows[allowed]] = True
                taken = pairs[allowed].value_counts()
                done.loc[taken.index] += taken
            if not flip.any():
                continue
            self._flipped[column.name] += int(flip.sum())
            new_units = units[flip] ^ 1
            original = arrays[column.name]
            if column.integer and column.decimals == 0:
                values = pc.fill_null(original, 0).to_numpy(zero_copy_only=False).copy()
                values[flip] = new_units.astype(values.dtype)
                nulls = np.asarray(pc.is_null(original).to_numpy(zero_copy_only=False), dtype=bool)
                arrays[column.name] = pa.array(
                    values, type=original.type, mask=nulls if nulls.any() else None
                )
            else:
                values = np.asarray(original.to_numpy(zero_copy_only=False), dtype=np.float64).copy()
                values[flip] = new_units / column.scale
                target_type = original.type if pa.types.is_floating(original.type) else pa.float64()
                arrays[column.name] = pa.array(values, type=target_type, from_pandas=True)
        return pa.RecordBatch.from_arrays(list(arrays.values()), names=list(arrays))

    @property
    def stats(self) -> MarkStats:
        return MarkStats(dict(self._selected), dict(self._flipped))


def mark_table(table: pa.Table, plan: FingerprintPlan, key: bytes, batch_rows: int = 65_536) -> pa.Table:
    """Mark a whole in-memory table (both passes); for files use :class:`Marker` over streamed batches."""
    batches = table.to_batches(max_chunksize=batch_rows)
    marker = Marker(plan, key)
    for batch in batches:
        marker.count(batch)
    return pa.Table.from_batches([marker.mark(batch) for batch in batches], schema=None) if batches else table


@dataclass(frozen=True)
class Observations:
    """A leaked table reduced to what tracing needs, computed once for every candidate key: per numeric
    column, the distinct (anchor, units) cells with their parity and balance weight."""

    cells: Mapping[str, tuple[ColumnPlan, np.ndarray, np.ndarray, np.ndarray]]


def observe(table: pa.Table, plan: FingerprintPlan) -> Observations:
    """Reduce ``table`` (any column order, any row order, any subset of rows) for tracing under ``plan``.

    Raises KeyError when a planned column is missing from the table.
    """
    anchor = anchors(table, plan)
    cells = {}
    for column in plan.numeric:
        units, valid = _units(table.column(column.name), column)
        frame = pd.DataFrame({"anchor": anchor[valid], "units": units[valid]}).drop_duplicates()
        values = frame["units"].to_numpy()
        counts = pd.Series(values).value_counts()
        own = counts.reindex(values).to_numpy()
        partner = counts.reindex(values ^ 1, fill_value=0).to_numpy()
        weight = np.minimum(1.0, (np.minimum(own, partner) + 1.0) / np.maximum(own, partner))
        cells[column.name] = (column, frame["anchor"].to_numpy(dtype=np.uint64), values, weight)
    return Observations(cells)


def score(observations: Observations, key: bytes) -> TraceScore:
    """Score one candidate key: weighted matches of selected cells' parity with the key's targets."""
    total = 0.0
    squares = 0.0
    checks = 0
    matches = 0
    for column, anchor, units, weight in observations.cells.values():
        target, selected = _draws(anchor, key, column, units)
        hit = (units[selected] & 1) == target[selected]
        chosen = weight[selected]
        total += float(np.sum(np.where(hit, chosen, -chosen)))
        squares += float(np.sum(chosen**2))
        checks += int(selected.sum())
        matches += int(hit.sum())
    z = total / math.sqrt(squares) if squares > 0 else 0.0
    bound = 1.0 if z <= 0 else math.exp(-z * z / 2)
    return TraceScore(checks=checks, matches=matches, z=z, p_bound=bound)


def accuse(scores: Sequence[TraceScore], limit: float = ACCUSE_BELOW) -> list[int]:
    """Indexes of the candidates whose bound, corrected for trying ``len(scores)`` candidates, is below
    ``limit``: the chance of naming anyone for a copy made with none of these keys is at most ``limit``."""
    tried = max(1, len(scores))
    return [index for index, item in enumerate(scores) if item.p_bound * tried < limit]
