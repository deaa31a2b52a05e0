"""Relational figures of a set of tables, each beside fresh real data's (the holdout set's) value.

Per relationship (parent → child through a foreign key):
- ``cardinality_shape_similarity``: 1 − Kolmogorov–Smirnov D between the synthetic and train distributions
  of children per parent (parents without children count 0), as SDMetrics' CardinalityShapeSimilarity;
  baseline: every parent given the train mean number of children.
- ``pair_trends``: SDMetrics' InterTableTrends: on the child rows joined to their parent, the mean over
  (parent column, child column) pairs of CorrelationSimilarity (two numbers: 1 − |r_real − r_syn| / 2) or
  ContingencySimilarity (1 − ½ Σ |p_real − p_syn|, numbers cut at the train deciles); every pair counts (SDMetrics sets both thresholds to 0 there); baseline: the holdout
  with children given to random parents.
- ``sibling_similarity``: how much children of one parent resemble each other (η², the share of a child
  number's variance lying between parents), 1 − |η²_S − η²_T| averaged over child numbers; baseline: the
  holdout with children given to random parents (η² near 0).
- ``discriminator``: cross-fitted AUC of the engine's gradient-boosted discriminator
  (``learning.discriminator_aucs``) telling joined synthetic rows from joined train rows, on binned levels
  (10 train quantiles per number, the 10 most frequent categories + other + missing); baseline AUC 1.

Each figure's skill = (value − baseline) / (reference − baseline) clipped to [0, 1] (the discriminator:
(1 − AUC_S) / (1 − AUC_H), AUCs below 0.5 read as 0.5), left out when the reference beats its baseline by
less than ``config.minimum_skill_gap``.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import product
from typing import Any

import numpy as np
import pandas as pd

from . import learning
from .config import EngineConfig
from .relational_schema import RelationalSchema, Relationship
from .schema import Column, clean_table, resolve_columns

_LEVELS = 10
_MIN_DISCRIMINATOR_ROWS = 50
# Cross-fitted on 2 folds from this many pooled rows up, on 5 below (the single-table discriminator's rule).
_TWO_FOLD_ROWS = 4_000
# The joined tables' column holding each child row's parent (a row position in the parent table).
PARENT = "__parent"


def ks_complement(first: np.ndarray, second: np.ndarray) -> float:
    """1 − the two-sample Kolmogorov–Smirnov statistic (largest gap between the empirical CDFs)."""
    if len(first) == 0 or len(second) == 0:
        return 0.0
    first, second = np.sort(first), np.sort(second)
    values = np.concatenate([first, second])
    gap = np.abs(
        np.searchsorted(first, values, side="right") / len(first)
        - np.searchsorted(second, values, side="right") / len(second)
    )
    return float(1.0 - gap.max())


def child_counts(tables: Mapping[str, pd.DataFrame], relationship: Relationship) -> np.ndarray:
    """Number of child rows of each parent row (0 for parents without children), in parent row order."""
    keys = tables[relationship.parent][relationship.parent_key]
    child_keys = tables[relationship.child][relationship.child_key]
    if not (pd.api.types.is_numeric_dtype(keys) and pd.api.types.is_numeric_dtype(child_keys)):
        keys, child_keys = keys.astype(str), child_keys.astype(str)
    counts = child_keys.value_counts()
    return counts.reindex(keys.to_numpy()).fillna(0).to_numpy(dtype=np.float64)


def skill(value: float | None, reference: float | None, baseline: float, gap: float) -> float | None:
    """(value − baseline) / (reference − baseline) clipped to [0, 1]; None when the reference does not
    beat the baseline by ``gap``."""
    if value is None or reference is None or reference - baseline < gap:
        return None
    return float(min(1.0, max(0.0, (value - baseline) / (reference - baseline))))


def _columns(schema: RelationalSchema, name: str, table: pd.DataFrame) -> tuple[Column, ...]:
    keys = {schema.primary_keys[name]} | {r.child_key for r in schema.relationships if r.child == name}
    columns = resolve_columns(table, schema.table_metadata(name))
    return tuple(c for c in columns if c.name not in keys and (c.is_continuous or c.is_discrete))


def joined(
    tables: Mapping[str, pd.DataFrame],
    relationship: Relationship,
    columns: tuple[tuple[Column, ...], tuple[Column, ...]],
    rows: int,
    rng: np.random.Generator,
    shuffle_parents: bool = False,
    one_per_parent: bool = False,
) -> tuple[pd.DataFrame, tuple[Column, ...], tuple[Column, ...]]:
    """Child rows (a uniform sample of at most ``rows``) with their parent's columns, cleaned, prefixed
    ``parent.`` and ``child.``; ``shuffle_parents`` gives each child a random parent instead;
    ``one_per_parent`` keeps one random child of each parent."""
    parent_columns, child_columns = columns
    parent, child = tables[relationship.parent], tables[relationship.child]
    keys, child_keys = parent[relationship.parent_key], child[relationship.child_key]
    if not (pd.api.types.is_numeric_dtype(keys) and pd.api.types.is_numeric_dtype(child_keys)):
        keys, child_keys = keys.astype(str), child_keys.astype(str)
    positions = pd.Index(keys).get_indexer(child_keys)
    chosen = np.arange(len(child))
    if one_per_parent:
        order = rng.permutation(len(child))
        chosen = np.sort(order[np.unique(positions[order], return_index=True)[1]])
    if len(chosen) > rows:
        chosen = np.sort(rng.choice(len(chosen), rows, replace=False))
    parent_rows = positions[chosen]
    if shuffle_parents:
        parent_rows = rng.permutation(parent_rows)
    parent_part = clean_table(parent.iloc[parent_rows], parent_columns).add_prefix("parent.")
    child_part = clean_table(child.iloc[chosen], child_columns).add_prefix("child.")
    renamed_parent = tuple(Column(f"parent.{c.name}", c.sdtype) for c in parent_columns)
    renamed_child = tuple(Column(f"child.{c.name}", c.sdtype) for c in child_columns)
    frame = pd.concat([parent_part, child_part], axis=1)
    frame[PARENT] = parent_rows
    return frame, renamed_parent, renamed_child


def _deciles(real: pd.Series) -> np.ndarray:
    present = real.dropna().to_numpy(dtype=np.float64)
    return (
        np.unique(np.quantile(present, np.linspace(0, 1, _LEVELS + 1)[1:-1])) if len(present) else np.zeros(0)
    )


def _binned(values: pd.Series, column: Column, edges: np.ndarray) -> pd.Series:
    if not column.is_continuous:
        return values.astype(object).where(values.notna(), "<missing>").astype(str)
    numbers = values.to_numpy(dtype=np.float64)
    return pd.Series(np.where(np.isnan(numbers), -1, np.searchsorted(edges, numbers)), index=values.index)


def _pair_similarity(real: pd.DataFrame, other: pd.DataFrame, first: Column, second: Column) -> float | None:
    """SDMetrics' CorrelationSimilarity or ContingencySimilarity of one column pair (numbers binned at the
    real table's deciles: SDMetrics' equal-width bins over each table's own range move with one outlier)."""
    if first.is_continuous and second.is_continuous:
        correlations = []
        for table in (real, other):
            pair = table[[first.name, second.name]].dropna()
            if len(pair) < 2 or pair[first.name].std() == 0 or pair[second.name].std() == 0:
                return None
            correlations.append(float(np.corrcoef(pair[first.name], pair[second.name])[0, 1]))
        return 1.0 - abs(correlations[0] - correlations[1]) / 2.0
    edges = {c.name: _deciles(real[c.name]) if c.is_continuous else np.zeros(0) for c in (first, second)}
    frequencies = []
    for table in (real, other):
        cells = pd.Series(
            list(
                zip(
                    _binned(table[first.name], first, edges[first.name]),
                    _binned(table[second.name], second, edges[second.name]),
                    strict=True,
                )
            )
        )
        frequencies.append(cells.value_counts(normalize=True))
    difference = frequencies[0].sub(frequencies[1], fill_value=0.0).abs().sum()
    return float(1.0 - 0.5 * difference)


def sibling_similarity(
    frames: dict[str, pd.DataFrame], columns: tuple[Column, ...]
) -> dict[str, float | None]:
    """How much children of one parent resemble each other: per continuous child column, η² (the share of
    the variance lying between parents, over parents with at least 2 children); each table's value is
    the mean over columns of 1 − |η²_table − η²_train|."""
    shares: dict[str, list[float]] = {label: [] for label in frames}
    for column in (c for c in columns if c.is_continuous):
        for label, frame in frames.items():
            values = pd.Series(frame[column.name].to_numpy(dtype=np.float64))
            owner = pd.Series(frame[PARENT].to_numpy())
            keep = values.notna() & owner.map(owner.value_counts()).ge(2)
            values, owner = values[keep], owner[keep]
            total = float(((values - values.mean()) ** 2).sum())
            if len(values) < 3 or total == 0:
                shares[label].append(np.nan)
                continue
            means = values.groupby(owner).transform("mean")
            shares[label].append(float(((means - values.mean()) ** 2).sum()) / total)
    result: dict[str, float | None] = {}
    for label, values in shares.items():
        gaps = [
            abs(a - b)
            for a, b in zip(values, shares["train"], strict=True)
            if not (np.isnan(a) or np.isnan(b))
        ]
        result[label] = float(1 - np.mean(gaps)) if gaps else None
    return result


def pair_trends(
    real: pd.DataFrame,
    other: pd.DataFrame,
    parent_columns: tuple[Column, ...],
    child_columns: tuple[Column, ...],
) -> float | None:
    """Mean pair similarity over every (parent column, child column) pair of two joined tables."""
    values = [
        value
        for first, second in product(parent_columns, child_columns)
        if (value := _pair_similarity(real, other, first, second)) is not None
    ]
    return float(np.mean(values)) if values else None


def _level_codes(tables: list[pd.DataFrame], columns: tuple[Column, ...]) -> list[np.ndarray]:
    """Binned level codes shared by all tables, levels fitted on the first (train) table."""
    codes = [np.zeros((len(t), len(columns)), dtype=np.float64) for t in tables]
    for index, column in enumerate(columns):
        reference = tables[0][column.name]
        if column.is_continuous:
            edges = _deciles(reference)
            for matrix, table in zip(codes, tables, strict=True):
                values = table[column.name].to_numpy(dtype=np.float64)
                matrix[:, index] = np.where(np.isnan(values), len(edges) + 1, np.searchsorted(edges, values))
            continue
        kept = pd.Index(reference.dropna().astype(str).value_counts().index[:_LEVELS])
        for matrix, table in zip(codes, tables, strict=True):
            values = table[column.name]
            found = kept.get_indexer(values.astype(str))
            found = np.where(found < 0, len(kept), found)
            matrix[:, index] = np.where(values.isna().to_numpy(), len(kept) + 1, found)
    return codes


def _cardinality(
    sets: dict[str, Mapping[str, pd.DataFrame]], relationship: Relationship, gap: float, relative: bool
) -> dict:
    counts = {label: child_counts(tables, relationship) for label, tables in sets.items()}
    if relative:
        # A lookup parent (plans) is whole in train and holdout while its children are split by entity:
        # the holdout's counts are a share of train's, so shapes are compared on counts over their mean.
        counts = {label: c / c.mean() if len(c) and c.mean() > 0 else c for label, c in counts.items()}
    constant = np.full(len(counts["train"]), float(np.round(counts["train"].mean())))
    value = ks_complement(counts["synthetic"], counts["train"])
    reference = ks_complement(counts["holdout"], counts["train"])
    baseline = ks_complement(constant, counts["train"])
    return {
        "value": value,
        "reference": reference,
        "baseline": baseline,
        "skill": skill(value, reference, baseline, gap),
        "mean_children": {label: float(c.mean()) if len(c) else None for label, c in counts.items()},
        "childless_parent_share": {
            label: float(np.mean(c == 0)) if len(c) else None for label, c in counts.items()
        },
    }


def _joint(
    sets: dict[str, Mapping[str, pd.DataFrame]],
    relationship: Relationship,
    columns: tuple[tuple[Column, ...], tuple[Column, ...]],
    config: EngineConfig,
    rng: np.random.Generator,
) -> tuple[dict, dict, dict | None]:
    rows = config.fidelity_max_rows
    join = {label: joined(tables, relationship, columns, rows, rng)[0] for label, tables in sets.items()}
    shuffled, parent_columns, child_columns = joined(sets["holdout"], relationship, columns, rows, rng, True)
    value = pair_trends(join["train"], join["synthetic"], parent_columns, child_columns)
    reference = pair_trends(join["train"], join["holdout"], parent_columns, child_columns)
    baseline = pair_trends(join["train"], shuffled, parent_columns, child_columns)
    trends = {
        "value": value,
        "reference": reference,
        "baseline": baseline,
        "pairs": len(parent_columns) * len(child_columns),
        "skill": None if baseline is None else skill(value, reference, baseline, config.minimum_skill_gap),
    }
    similarity = sibling_similarity(
        {
            "train": join["train"],
            "synthetic": join["synthetic"],
            "holdout": join["holdout"],
            "baseline": shuffled,
        },
        child_columns,
    )
    siblings = {
        "value": similarity["synthetic"],
        "reference": similarity["holdout"],
        "baseline": similarity["baseline"],
        "skill": None
        if similarity["baseline"] is None
        else skill(
            similarity["synthetic"], similarity["holdout"], similarity["baseline"], config.minimum_skill_gap
        ),
    }
    # One child per parent: children of one parent share its columns, and a cross-fitted model would
    # otherwise recognise train parents seen in its other folds (the holdout's reference AUC would rise).
    single = {
        label: joined(
            tables, relationship, columns, len(tables[relationship.child]), rng, one_per_parent=True
        )[0]
        for label, tables in sets.items()
    }
    size = min(
        len(single["synthetic"]), len(single["train"]), len(single["holdout"]), config.discriminator_max_rows
    )
    if size < _MIN_DISCRIMINATOR_ROWS:
        return trends, siblings, None
    samples = [
        table.iloc[np.sort(rng.choice(len(table), size, replace=False))]
        for table in (single["train"], single["synthetic"], single["holdout"])
    ]
    folds = 2 if 2 * size >= _TWO_FOLD_ROWS else 5
    train_codes, synthetic_codes, holdout_codes = _level_codes(samples, parent_columns + child_columns)
    auc, reference_auc = learning.discriminator_aucs(
        train_codes, [synthetic_codes, holdout_codes], folds, int(rng.integers(2**31 - 1)), config.n_jobs
    )
    discriminator = {
        "auc": auc,
        "reference_auc": reference_auc,
        "rows_each": size,
        "folds": folds,
        "skill": skill(1 - max(auc, 0.5), 1 - max(reference_auc, 0.5), 0.0, config.minimum_skill_gap),
    }
    return trends, siblings, discriminator


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def assess(
    synthetic: Mapping[str, pd.DataFrame],
    train: Mapping[str, pd.DataFrame],
    holdout: Mapping[str, pd.DataFrame],
    schema: RelationalSchema,
    config: EngineConfig,
    rng: np.random.Generator,
    lookup_tables: frozenset[str] = frozenset(),
) -> dict:
    """The ``relational`` section: per relationship the three figures with their references, and
    ``score`` = √(cardinality skill × joint skill), joint = mean of the pair-trends,
    sibling-similarity and discriminator skills (so children given to the wrong parents, whose
    counts may still look right, score low)."""
    sets = {"synthetic": synthetic, "train": train, "holdout": holdout}
    details: list[dict[str, Any]] = []
    for relationship in schema.relationships:
        columns = (
            _columns(schema, relationship.parent, train[relationship.parent]),
            _columns(schema, relationship.child, train[relationship.child]),
        )
        cardinality = _cardinality(
            sets, relationship, config.minimum_skill_gap, relationship.parent in lookup_tables
        ) | {"relative": relationship.parent in lookup_tables}
        if columns[0] and columns[1] and min(len(t[relationship.child]) for t in sets.values()) >= 10:
            trends, siblings, discriminator = _joint(sets, relationship, columns, config, rng)
        else:
            trends, siblings, discriminator = None, None, None
        details.append(
            {
                "parent": relationship.parent,
                "child": relationship.child,
                "foreign_key": relationship.child_key,
                "referential_integrity": 1.0,
                "cardinality_shape_similarity": cardinality,
                "pair_trends": trends,
                "sibling_similarity": siblings,
                "discriminator": discriminator,
            }
        )
    cardinality_skill = _mean([d["cardinality_shape_similarity"]["skill"] for d in details])
    joint_skill = _mean(
        [d["pair_trends"]["skill"] for d in details if d["pair_trends"]]
        + [d["sibling_similarity"]["skill"] for d in details if d["sibling_similarity"]]
        + [d["discriminator"]["skill"] for d in details if d["discriminator"]]
    )
    parts = [p for p in (cardinality_skill, joint_skill) if p is not None]
    score = float(np.prod(parts) ** (1 / len(parts))) if parts else None
    grade = next((g for g, low in config.composite_grade_bands if score is not None and score >= low), "F")
    return {
        "score": score,
        "grade": grade if score is not None else None,
        "cardinality_skill": cardinality_skill,
        "joint_skill": joint_skill,
        "referential_integrity": 1.0,
        "cardinality_shape_similarity": _mean([d["cardinality_shape_similarity"]["value"] for d in details]),
        "pair_trends": _mean([d["pair_trends"]["value"] for d in details if d["pair_trends"]]),
        "discriminator_auc": _mean([d["discriminator"]["auc"] for d in details if d["discriminator"]]),
        "reference": {
            "referential_integrity": 1.0,
            "cardinality_shape_similarity": _mean(
                [d["cardinality_shape_similarity"]["reference"] for d in details]
            ),
            "pair_trends": _mean([d["pair_trends"]["reference"] for d in details if d["pair_trends"]]),
            "discriminator_auc": _mean(
                [d["discriminator"]["reference_auc"] for d in details if d["discriminator"]]
            ),
        },
        "relationships": details,
        "thresholds": {
            "grade_bands": [list(band) for band in config.composite_grade_bands],
            "minimum_skill_gap": config.minimum_skill_gap,
            "source": "CardinalityShapeSimilarity and InterTableTrends as in SDMetrics 0.32 multi-table; "
            "skills against fresh real data (the holdout set), docs/engine.md#relational-sets",
        },
    }
