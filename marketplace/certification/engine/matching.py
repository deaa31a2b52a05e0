"""Row matching without distances: exact copies, unique exact matches, quasi-copies, copies of holdout rows.

Every comparison here is *synthetic rows against real rows the generator never saw*: the holdout rows and,
with itself set aside, each train row (under a random split a train row meets "equals another train row"
as often as a fresh row meets "equals a train row"), which makes the baseline precise even for a small
holdout. Duplicates of one row are one piece of evidence (rows are deduplicated, in equal-size chunks
when duplicates are common). Rates are shares of distinct rows; the difference's standard error is
binomial.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .schema import Column

_MAX_CHUNKS = 20
# Quasi-copies leave out every pair of columns only while rows × pairs stays below this (≈ 0.5 s on two cores).
_PAIR_BUDGET = 2_500_000
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def row_keys(table: pd.DataFrame, names: list[str]) -> np.ndarray:
    """A 64-bit hash of each row over the named columns (equal rows, equal keys)."""
    return pd.util.hash_pandas_object(table[names], index=False).to_numpy()


def counts_in(keys: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """How many times each key occurs in ``reference``."""
    values, counts = np.unique(reference, return_counts=True)
    if len(values) == 0:
        return np.zeros(len(keys), dtype=np.int64)
    position = np.minimum(np.searchsorted(values, keys), len(values) - 1)
    return np.where(values[position] == keys, counts[position], 0)


def _distinct_hits(
    flags: np.ndarray, keys: np.ndarray, size: int, chunks: int, rng: np.random.Generator
) -> tuple[int, int]:
    order = rng.permutation(len(keys))
    hits = distinct = 0
    for chunk in range(chunks):
        index = order[chunk * size : (chunk + 1) * size]
        _, first = np.unique(keys[index], return_index=True)
        distinct += len(first)
        hits += int(flags[index][first].sum())
    return hits, distinct


def _duplicate_share(keys: np.ndarray) -> float:
    return 1.0 - len(np.unique(keys)) / max(len(keys), 1)


@dataclass(frozen=True)
class Comparison:
    """Share of distinct synthetic rows flagged against the share of distinct holdout rows flagged."""

    synthetic_rate: float
    holdout_rate: float
    synthetic_distinct: int
    holdout_distinct: int
    standard_error: float

    @property
    def difference(self) -> float:
        return self.synthetic_rate - self.holdout_rate

    def to_dict(self) -> dict:
        return {
            "synthetic_rate": self.synthetic_rate,
            "holdout_rate": self.holdout_rate,
            "difference": self.difference,
            "difference_ci": [
                self.difference - 1.959964 * self.standard_error,
                self.difference + 1.959964 * self.standard_error,
            ],
            "synthetic_distinct_rows": self.synthetic_distinct,
            "holdout_distinct_rows": self.holdout_distinct,
        }


def compare(
    synthetic_flags: np.ndarray,
    synthetic_keys: np.ndarray,
    baseline_flags: np.ndarray,
    baseline_keys: np.ndarray,
    rng: np.random.Generator,
) -> Comparison:
    """Deduplicated comparison of a per-row flag that depends only on the row's value, synthetic rows
    against baseline rows (holdout rows, and train rows judged against the rest of train).

    When either side repeats rows (more than 1 % duplicates), both are cut into chunks of one common size
    (deduplication thins a large sample more than a small one), up to 20 chunks a side; otherwise every
    row is used once."""
    size_synthetic, size_baseline = len(synthetic_keys), len(baseline_keys)
    if max(_duplicate_share(synthetic_keys), _duplicate_share(baseline_keys)) > 0.01:
        size = max(1, min(size_synthetic, size_baseline))
        chunks = (
            min(max(1, size_synthetic // size), _MAX_CHUNKS),
            min(max(1, size_baseline // size), _MAX_CHUNKS),
        )
    else:
        size, chunks = max(size_synthetic, size_baseline, 1), (1, 1)
    synthetic_hits, synthetic_distinct = _distinct_hits(synthetic_flags, synthetic_keys, size, chunks[0], rng)
    holdout_hits, holdout_distinct = _distinct_hits(baseline_flags, baseline_keys, size, chunks[1], rng)
    # The noise is the baseline's, Laplace-smoothed so that a baseline without a hit still has some; a pooled
    # rate would let a leak widen its own allowance.
    reference = (holdout_hits + 1) / (holdout_distinct + 2)
    error = math.sqrt(
        reference * (1 - reference) * (1 / max(synthetic_distinct, 1) + 1 / max(holdout_distinct, 1))
    )
    return Comparison(
        synthetic_rate=synthetic_hits / max(synthetic_distinct, 1),
        holdout_rate=holdout_hits / max(holdout_distinct, 1),
        synthetic_distinct=synthetic_distinct,
        holdout_distinct=holdout_distinct,
        standard_error=error,
    )


FLAGS = (
    "synthetic_any",
    "synthetic_unique",
    "holdout_any",
    "holdout_unique",
    "train_any",
    "train_unique",
    "paired_train_any",
    "paired_holdout_any",
    "paired_train_unique",
    "paired_holdout_unique",
)


# Per synthetic row, the key of the first equal-size train (holdout) sample row it matched (0: none): the real
# row a paired match counts against, so that synthetic rows sharing one real twin count as one cluster.
CLUSTERS = ("paired_train_cluster", "paired_holdout_cluster")


def _empty_flags(synthetic: int, train: int, holdout: int) -> dict[str, np.ndarray]:
    sizes = {"synthetic": synthetic, "holdout": holdout, "train": train, "paired": synthetic}
    flags = {name: np.zeros(sizes[name.split("_")[0]], dtype=bool) for name in FLAGS}
    return flags | {name: np.zeros(synthetic, dtype=np.uint64) for name in CLUSTERS}


@dataclass
class Location:
    """For each synthetic row, its most specific real match so far: the real rows sharing its key (``real``,
    fewest first; 0 = no match yet), how many of them are train rows (``in_train``) and the key matched
    (``twin``: two synthetic rows matching the same real rows the same way are one piece of evidence)."""

    real: np.ndarray
    in_train: np.ndarray
    twin: np.ndarray

    @classmethod
    def empty(cls, rows: int) -> Location:
        return cls(
            real=np.zeros(rows, dtype=np.int64),
            in_train=np.zeros(rows, dtype=np.int64),
            twin=np.zeros(rows, dtype=np.uint64),
        )

    def update(self, in_train: np.ndarray, in_holdout: np.ndarray, keys: np.ndarray) -> None:
        real = in_train + in_holdout
        better = (real > 0) & ((self.real == 0) | (real < self.real))
        self.real[better], self.in_train[better] = real[better], in_train[better]
        self.twin[better] = keys[better]


LEVELS = ("exact", "one", "two")


def locations(rows: int, exact_numbers: bool = False) -> dict[str, Location]:
    """One ``Location`` over every level (``any``) and one per level (exact, all but one, all but two; with
    ``exact_numbers`` also all but one and all but two with numbers equal to the last digit)."""
    names = ("any", *LEVELS, *(("one_exact", "two_exact") if exact_numbers else ()))
    return {name: Location.empty(rows) for name in names}


def location_test(location: Location, synthetic_keys: np.ndarray, train_rows: int, holdout_rows: int) -> dict:
    """Where the real twins of the synthetic rows live. Conditional on the pooled real rows, a random split
    puts each of a key's m real rows in train with chance f = train / (train + holdout); a generator that
    does not memorise makes a row without regard to where its twins live, so Σ (a/m − f) over distinct
    matched twins (a of them in train) has mean 0 and variance Σ f(1 − f)(N − m) / ((N − 1) m)
    (hypergeometric). Copies of train rows push it up, rare rows (small m) the most. The key of each
    synthetic row is its most specific match — chosen from m alone, which keeps the test valid — and
    synthetic rows matching the same real rows the same way count once. ``excess_rows`` = excess / (1 − f)
    is the number of synthetic rows copied from train that the excess amounts to."""
    _, first = np.unique(synthetic_keys, return_index=True)
    matched_first = first[location.real[first] > 0]
    _, twins = np.unique(location.twin[matched_first], return_index=True)
    chosen = matched_first[twins]
    real, in_train = location.real[chosen], location.in_train[chosen]
    total = train_rows + holdout_rows
    share = train_rows / max(total, 1)
    excess = float(np.sum(in_train / real - share))
    variance = float(np.sum(share * (1 - share) * (total - real) / (max(total - 1, 1) * real)))
    return {
        "matched_distinct_rows": len(chosen),
        "synthetic_distinct_rows": len(first),
        "train_share": share,
        "excess": excess,
        "excess_rows": excess / max(1 - share, 1e-9),
        "excess_per_row": excess / max(len(first), 1),
        "z": excess / math.sqrt(variance) if variance > 0 else 0.0,
        "unique_matches_in_train": int(np.sum((real == 1) & (in_train == 1))),
        "unique_matches_in_holdout": int(np.sum((real == 1) & (in_train == 0))),
    }


def match_flags(
    synthetic_keys: np.ndarray,
    train_keys: np.ndarray,
    holdout_keys: np.ndarray,
    equal_size: int,
    found: tuple[Location, ...] = (),
) -> dict[str, np.ndarray]:
    """Per-row flags for exact copies (``*_any``: the row occurs in train) and unique exact matches
    (``*_unique``, NIST SDNist: the row equals a train row unique in train ∪ holdout).

    ``synthetic_*`` judge synthetic rows against all of train; ``holdout_*`` and ``train_*`` are the
    baseline rows, each judged with itself set aside (a random split makes them as likely as a fresh row to
    meet the condition). ``paired_*`` judge synthetic rows against the first ``equal_size`` train rows and,
    symmetrically, against the first ``equal_size`` holdout rows (see ``paired``).
    """
    flags = _empty_flags(len(synthetic_keys), len(train_keys), len(holdout_keys))
    _flag(flags, synthetic_keys, train_keys, holdout_keys, equal_size, found)
    return flags


def paired(
    train_flags: np.ndarray,
    holdout_flags: np.ndarray,
    synthetic_keys: np.ndarray,
    clusters: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict:
    """Distinct synthetic rows that match train (equal-size sample) but not holdout, against those that
    match holdout but not train: a paired (McNemar) comparison on the same synthetic rows. A generator
    that never saw either set matches both alike, whatever the table's own duplicates.

    The standard error is clustered on the real row matched (``clusters``: per synthetic row, the key of
    its train and of its holdout twin). Under a random split each real row lands in the train or the
    holdout sample by a coin flip, so the c synthetic rows sharing one real twin move the difference by
    ±c together: the variance is Σ c², not Σ c. Without clusters every row is its own (McNemar's b + c).
    A generator that makes many rows like one common real row is not copying c people."""
    _, first = np.unique(synthetic_keys, return_index=True)
    to_train, to_holdout = train_flags[first], holdout_flags[first]
    only_train, only_holdout = to_train & ~to_holdout, to_holdout & ~to_train
    total = max(len(first), 1)
    if clusters is None:
        variance = float(only_train.sum() + only_holdout.sum())
    else:
        variance = float(
            sum(
                np.sum(np.unique(cluster[first][side], return_counts=True)[1].astype(np.float64) ** 2)
                for cluster, side in zip(clusters, (only_train, only_holdout), strict=True)
            )
        )
    return {
        "train_rate": float(to_train.mean()) if len(first) else 0.0,
        "holdout_rate": float(to_holdout.mean()) if len(first) else 0.0,
        "difference": float(only_train.sum() - only_holdout.sum()) / total,
        "standard_error": math.sqrt(variance) / total,
        "synthetic_distinct_rows": len(first),
    }


def _splitmix(values: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = values + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return (z ^ (z >> np.uint64(31))) & _MASK64


def _hashed_codes(
    tables: list[pd.DataFrame], columns: tuple[Column, ...], widths: list[float], offset: float
) -> list[np.ndarray]:
    """Each cell as a 64-bit hash of (column, code): numbers binned to ``width`` (shifted by ``offset``
    bins; width 0: the exact value), categories by value, missing as its own code."""
    sizes = [len(t) for t in tables]
    hashed = np.empty((sum(sizes), len(columns)), dtype=np.uint64)
    for index, column in enumerate(columns):
        pooled = pd.concat([t[column.name] for t in tables], ignore_index=True)
        if column.is_continuous and widths[index] == 0:
            values = pooled.to_numpy(dtype=np.float64) + 0.0
            codes = np.where(np.isnan(values), np.nan, values).view(np.int64)
        elif column.is_continuous:
            values = pooled.to_numpy(dtype=np.float64)
            bins = np.floor(values / widths[index] + offset)
            codes = np.where(np.isnan(bins), -(2**62), np.nan_to_num(bins)).astype(np.int64)
        else:
            codes = pd.factorize(pooled.astype(str).where(pooled.notna(), None), use_na_sentinel=True)[0]
            codes = codes.astype(np.int64)
        hashed[:, index] = _splitmix(
            codes.astype(np.uint64) ^ np.uint64(((index + 1) * 0x632BE59BD9B4E019) & 0xFFFFFFFFFFFFFFFF)
        )
    return np.split(hashed, np.cumsum(sizes)[:-1])


def quasi_flags(
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    columns: tuple[Column, ...],
    tolerance: float,
    equal_size: int,
    found: dict[str, tuple[Location, ...]] | None = None,
) -> dict:
    """Per-row flags for quasi-copies: rows equal to some train row on every column but one (``one``) or
    but two (``two``, only while rows × pairs of columns stays within a fixed budget, and for tables of at
    least 10 columns: with fewer, two free columns leave too little to tell a copy from a look-alike).

    Categories must be equal and numbers in the same bin of width ``tolerance`` × the column's train
    standard deviation; two grids offset by half a bin are tried, so numbers closer than half a bin always
    share a bin in one of them. Each level holds the flags of ``match_flags``, with "equal" read as "equal
    on the remaining columns".
    """
    widths = []
    for column in columns:
        if column.is_continuous:
            spread = float(np.nanstd(train[column.name].to_numpy(dtype=np.float64)))
            widths.append(tolerance * spread if spread > 0 else 1.0)
        else:
            widths.append(1.0)
    width = len(columns)
    total_rows = len(synthetic) + len(train) + len(holdout)
    pairs: list[tuple[int, ...]] = list(itertools.combinations(range(width), 2))
    plans: dict[str, list[tuple[int, ...]]] = {"one": [(c,) for c in range(width)] if width >= 3 else []}
    if width >= 10 and total_rows * len(pairs) <= _PAIR_BUDGET:
        plans["two"] = pairs
    flags = {level: _empty_flags(len(synthetic), len(train), len(holdout)) for level in plans}
    for offset in (0.0, 0.5):
        hashed = _hashed_codes([synthetic, train, holdout], columns, widths, offset)
        with np.errstate(over="ignore"):
            totals = [h.sum(axis=1, dtype=np.uint64) for h in hashed]
            for level, sets in plans.items():
                for chosen in sets:
                    index = list(chosen)
                    keys = [
                        total - h[:, index].sum(axis=1, dtype=np.uint64)
                        for total, h in zip(totals, hashed, strict=True)
                    ]
                    _flag(flags[level], keys[0], keys[1], keys[2], equal_size, (found or {}).get(level, ()))
    if found and any(level.endswith("_exact") for level in found):
        _locate_exact(synthetic, train, holdout, columns, plans, found)
    return flags


def _locate_exact(
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    columns: tuple[Column, ...],
    plans: dict[str, list[tuple[int, ...]]],
    found: dict[str, tuple[Location, ...]],
) -> None:
    """Update the ``one_exact`` / ``two_exact`` locations of ``found`` with the quasi-copy keys of ``plans``
    whose numbers are compared exactly, not by bin (no flag changes).

    A train row with one category changed keeps its other values to the last digit, which an honest row
    shares with a real row almost never when numbers are continuous; in bins of 0.02 sd the copy's twin
    hides among honest look-alikes (see ``numbers_finer_than_bins``)."""
    hashed = _hashed_codes([synthetic, train, holdout], columns, [0.0] * len(columns), 0.0)
    with np.errstate(over="ignore"):
        totals = [h.sum(axis=1, dtype=np.uint64) for h in hashed]
        for level, sets in plans.items():
            targets = found.get(f"{level}_exact", ())
            for chosen in sets if targets else []:
                index = list(chosen)
                keys = [
                    total - h[:, index].sum(axis=1, dtype=np.uint64)
                    for total, h in zip(totals, hashed, strict=True)
                ]
                in_train = _counts(keys[0], np.unique(keys[1], return_counts=True))
                in_holdout = _counts(keys[0], np.unique(keys[2], return_counts=True))
                for location in targets:
                    location.update(in_train, in_holdout, keys[0])


def numbers_finer_than_bins(
    tables: list[pd.DataFrame], columns: tuple[Column, ...], tolerance: float
) -> bool:
    """Whether some continuous column holds two different values in one quasi-copy bin (``tolerance`` × its
    first table's standard deviation): only then do exact-number levels of the copy-location test differ
    from the binned ones and earn their own look.

    On phik's insurance table (driver_age and mileage to 6 decimals, 3 categories; 1,600 train rows) 10 %
    of rows copied from train with one category changed scored copy_location z = 1.2 on the binned levels
    (36 % of honest GaussianCopula rows share a bin key with a real row) and passed privacy with grade A."""
    for column in columns:
        if not column.is_continuous:
            continue
        values = pd.concat([t[column.name] for t in tables], ignore_index=True).dropna().to_numpy(np.float64)
        spread = float(np.std(tables[0][column.name].dropna().to_numpy(np.float64))) if len(values) else 0.0
        if spread > 0 and len(np.unique(np.floor(values / (tolerance * spread)))) < len(np.unique(values)):
            return True
    return False


def _counts(keys: np.ndarray, reference: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """How many reference rows share each key (``reference`` = np.unique(..., return_counts=True))."""
    values, counts = reference
    if len(values) == 0:
        return np.zeros(len(keys), dtype=np.int64)
    position = np.minimum(np.searchsorted(values, keys), len(values) - 1)
    return np.where(values[position] == keys, counts[position], 0)


def _flag(
    flags: dict[str, np.ndarray],
    synthetic: np.ndarray,
    train: np.ndarray,
    holdout: np.ndarray,
    equal_size: int,
    found: tuple[Location, ...] = (),
) -> None:
    in_train = np.unique(train, return_counts=True)
    in_holdout = np.unique(holdout, return_counts=True)
    synthetic_train, synthetic_holdout = _counts(synthetic, in_train), _counts(synthetic, in_holdout)
    holdout_train, holdout_holdout = _counts(holdout, in_train), _counts(holdout, in_holdout)
    train_train, train_holdout = _counts(train, in_train), _counts(train, in_holdout)
    for location in found:
        location.update(synthetic_train, synthetic_holdout, synthetic)
    flags["synthetic_any"] |= synthetic_train > 0
    flags["holdout_any"] |= holdout_train > 0
    flags["train_any"] |= train_train > 1
    flags["synthetic_unique"] |= (synthetic_train == 1) & (synthetic_holdout == 0)
    flags["holdout_unique"] |= (holdout_train == 1) & (holdout_holdout == 1)
    flags["train_unique"] |= (train_train == 2) & (train_holdout == 0)
    paired_train = _counts(synthetic, np.unique(train[:equal_size], return_counts=True))
    paired_holdout = _counts(synthetic, np.unique(holdout[:equal_size], return_counts=True))
    flags["paired_train_any"] |= paired_train > 0
    flags["paired_holdout_any"] |= paired_holdout > 0
    flags["paired_train_unique"] |= (paired_train == 1) & (paired_holdout == 0)
    flags["paired_holdout_unique"] |= (paired_holdout == 1) & (paired_train == 0)
    for name, counts in (("paired_train_cluster", paired_train), ("paired_holdout_cluster", paired_holdout)):
        fresh = (counts > 0) & (flags[name] == 0)
        flags[name][fresh] = synthetic[fresh]
