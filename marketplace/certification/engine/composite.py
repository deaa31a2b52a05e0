"""The quality grade: a composite of fidelity parts, each placed between a trivial baseline and fresh real data.

Every part compares a table with the same real rows ``T`` (train rows, ``n`` of them) at equal size ``n``:
the synthetic rows ``S``, the holdout rows ``H`` (fresh real data: the *reference*) and, for the part's
baseline, a table that knows less than any useful generator. A part's score is its *skill*

    skill = (value_S − value_baseline) / (value_H − value_baseline), clipped to [0, 1],

so fresh real data scores 1 and the trivial baseline 0, whatever the table's size, width or noise level
(the form of a forecast skill score). docs/engine.md#quality-grade states every part, weight and band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from . import diversity, drift, fidelity, learning
from .config import EngineConfig
from .schema import Column

# Parts that a table with independent columns cannot earn: they carry the structure factor of the score.
STRUCTURE_PARTS = ("pair_trends", "three_way", "ml_efficacy")


@dataclass(frozen=True)
class Samples:
    """Tables for the comparisons: ``synthetic``, ``holdout`` and ``train`` with n rows each, ``real`` the
    train rows every binned comparison is made against (all of them up to the bound), and where the
    reference rows came from."""

    real: pd.DataFrame
    train: pd.DataFrame
    synthetic: pd.DataFrame
    holdout: pd.DataFrame
    source: str


def _take(table: pd.DataFrame, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(table) == rows:
        return table.reset_index(drop=True)
    return table.iloc[np.sort(rng.choice(len(table), rows, replace=False))].reset_index(drop=True)


def equal_samples(
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame | None,
    max_rows: int,
    rng: np.random.Generator,
) -> Samples:
    """Seeded uniform samples: synthetic, holdout and train rows at one size n, and up to ``max_rows`` train
    rows to compare them with. Without a holdout, train is split in two halves and one plays the holdout (the
    generator saw it, so the reference is then optimistic; stated as ``reference_source``)."""
    if holdout is not None:
        rows = min(len(synthetic), len(train), len(holdout), max_rows)
        real = _take(train, min(len(train), max_rows), rng)
        return Samples(
            real, _take(real, rows, rng), _take(synthetic, rows, rng), _take(holdout, rows, rng), "holdout"
        )
    order = rng.permutation(len(train))
    half = len(train) // 2
    rows = min(len(synthetic), half, max_rows)
    real = train.iloc[np.sort(order[: min(half, max_rows)])].reset_index(drop=True)
    return Samples(
        real,
        _take(real, rows, rng),
        _take(synthetic, rows, rng),
        train.iloc[np.sort(order[half : half + rows])].reset_index(drop=True),
        "train_split",
    )


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else math.nan


def structure(
    samples: Samples, columns: tuple[Column, ...], config: EngineConfig, rng: np.random.Generator
) -> dict:
    """Binned accuracies of one, two and three columns for S and H against T, with their baselines.

    Column shapes use levels fitted on T (a baseline that knows only the schema); pairs and triples use
    rank levels per table (:func:`fidelity.bin_dependence`) and H with its columns permuted as baseline.
    """
    rows = len(samples.synthetic)
    tables = [
        samples.real,
        samples.synthetic,
        samples.holdout,
        fidelity.schema_only(samples.real, columns, rows, rng),
        fidelity.independent_columns(samples.holdout, rng),
    ]
    width = len([c for c in columns if c.is_continuous or c.is_discrete])
    result = {}
    cache: dict[tuple[bool, int], fidelity.Binned] = {}
    for name, order, limit, baseline in (
        ("column_shapes", 1, width, 3),
        ("pair_trends", 2, config.fidelity_max_pairs, 4),
        ("three_way", 3, config.fidelity_max_triples, 4),
    ):
        levels = fidelity.levels_for(rows, order, config.fidelity_bins)
        key = (order == 1, levels)
        if key not in cache:
            cache[key] = (fidelity.bin_tables if order == 1 else fidelity.bin_dependence)(
                samples.real, tables, columns, levels
            )
        binned = cache[key]
        combos = fidelity.combinations(width, order, limit, rng)
        if order == 2:
            real, *others = fidelity.associations(binned, tables, columns, combos)
            value, reference, trivial = (
                _mean(1.0 - np.minimum(np.abs(others[index - 1] - real), 1.0)) for index in (1, 2, baseline)
            )
        else:
            value, reference, trivial = fidelity.accuracies(binned, 0, [1, 2, baseline], combos)
        result[name] = {
            "value": value,
            "reference": reference,
            "baseline": trivial,
            "skill": fidelity.skill(value, reference, trivial, config.minimum_skill_gap),
            "levels": levels,
            "combinations": int(len(combos)),
            "combinations_possible": math.comb(width, order),
        }
    return result


def diversity_parts(
    samples: Samples, columns: tuple[Column, ...], config: EngineConfig, rng: np.random.Generator
) -> dict:
    """Distinct-row share of S and H (n rows each) and k-NN coverage / precision on smaller samples."""
    rows = min(len(samples.train), config.diversity_max_rows)
    train, synthetic, holdout = (
        _take(t, rows, rng) for t in (samples.train, samples.synthetic, samples.holdout)
    )
    found = diversity.support(
        train,
        {"synthetic": synthetic, "holdout": holdout},
        columns,
        k=config.coverage_neighbours,
        max_categories=config.distance_max_categories,
    )
    distinct = diversity.distinct_share(samples.synthetic)
    distinct_reference = diversity.distinct_share(samples.holdout)
    return {
        "top_rows_share": {
            "value": diversity.top_rows_share(samples.synthetic, config.mode_collapse_rows),
            "reference": diversity.top_rows_share(samples.holdout, config.mode_collapse_rows),
            "rows": config.mode_collapse_rows,
        },
        "distinct_share": {
            "value": distinct,
            "reference": distinct_reference,
            "skill": fidelity.skill(distinct, distinct_reference, 0.0, config.minimum_skill_gap),
        },
        "coverage": {
            "value": found["synthetic"]["coverage"],
            "reference": found["holdout"]["coverage"],
            "skill": fidelity.skill(
                found["synthetic"]["coverage"], found["holdout"]["coverage"], 0.0, config.minimum_skill_gap
            ),
            "neighbours": config.coverage_neighbours,
            "rows": rows,
        },
        "precision": {
            "value": found["synthetic"]["precision"],
            "reference": found["holdout"]["precision"],
            "skill": fidelity.skill(
                found["synthetic"]["precision"], found["holdout"]["precision"], 0.0, config.minimum_skill_gap
            ),
            "neighbours": config.coverage_neighbours,
            "rows": rows,
        },
    }


def discriminator_part(
    samples: Samples, columns: tuple[Column, ...], config: EngineConfig, rng: np.random.Generator, seed: int
) -> dict:
    """AUC of a classifier telling S from T beside H from T, on the column-shape levels (so that it judges
    rows at the resolution of the other parts, not by a value's last digits); skill with AUC 1 (always told
    apart) as the baseline and the holdout's AUC as the reference."""
    rows = min(len(samples.train), config.discriminator_max_rows)
    tables = [_take(t, rows, rng) for t in (samples.train, samples.synthetic, samples.holdout)]
    levels = fidelity.levels_for(rows, 1, config.fidelity_bins)
    binned = fidelity.bin_tables(tables[0], tables, columns, levels)
    folds = 1 if 2 * rows >= config.discriminator_split_rows else 5
    auc, reference = learning.discriminator_aucs(
        binned.codes[0], list(binned.codes[1:]), folds, seed, config.n_jobs
    )
    score = (
        fidelity.skill(1.0 - max(auc, 0.5), 1.0 - max(reference, 0.5), 0.0, config.minimum_skill_gap)
        if not (math.isnan(auc) or math.isnan(reference))
        else math.nan
    )
    return {"auc": auc, "reference_auc": reference, "skill": score, "rows_each": rows, "folds": folds}


def ml_part(efficacy: dict | None, config: EngineConfig) -> dict | None:
    """ML efficacy as skill: synthetic-trained score between the feature-blind model and the real-trained one."""
    if not efficacy or efficacy.get("synthetic_score") is None:
        return None
    value, reference, trivial = efficacy["synthetic_score"], efficacy["real_score"], efficacy["trivial_score"]
    return {
        "value": value,
        "reference": reference,
        "baseline": trivial,
        "skill": fidelity.skill(value, reference, trivial, config.minimum_skill_gap),
        "metric": efficacy["metric"],
    }


def _letter(score: float, config: EngineConfig) -> str:
    if math.isnan(score):
        return "F"
    for letter, minimum in config.composite_grade_bands:
        if score >= minimum:
            return letter
    return "F"


def grade(score: float, defects: list[str], config: EngineConfig) -> str:
    """The band letter of ``score`` (F below the last band or when undefined), one letter lower per named
    defect (drifted columns, mode collapse), never below F."""
    letters = [letter for letter, _ in config.composite_grade_bands] + ["F"]
    position = letters.index(_letter(score, config)) + len(defects)
    return letters[min(position, len(letters) - 1)]


def _weighted(parts: dict[str, float], names: tuple[str, ...], config: EngineConfig) -> tuple[float, dict]:
    weights = {
        name: weight
        for name, weight in config.composite_weights
        if name in names and not math.isnan(parts.get(name, math.nan))
    }
    total = sum(weights.values())
    if total == 0:
        return math.nan, {}
    return sum(parts[name] * weight for name, weight in weights.items()) / total, {
        name: weight / total for name, weight in weights.items()
    }


def combine(parts: dict[str, float], distinct: float, config: EngineConfig) -> dict:
    """score = ∛(marginals × structure × overall) × distinct-row factor (docs/engine.md#quality-grade).

    ``marginals`` is the column-shapes skill; ``structure`` the weighted mean of the parts that only a table
    with real joint structure can earn (pair trends, three-way, ML efficacy); ``overall`` the weighted mean
    of every defined part. The geometric mean gives nothing to a table that fails either its columns
    (uniform garbage) or their relationships (independent columns), however good the rest. The distinct-row
    factor is the synthetic distinct-row share over the holdout's (capped at 1): duplicated rows carry no
    new information.
    """
    overall, weights = _weighted(parts, tuple(parts), config)
    structure, structure_weights = _weighted(parts, STRUCTURE_PARTS, config)
    marginals = parts.get("column_shapes", math.nan)
    factor = 1.0 if math.isnan(distinct) else distinct
    defined = [value for value in (marginals, structure, overall) if not math.isnan(value)]
    score = float(np.prod(defined)) ** (1.0 / len(defined)) * factor if defined else math.nan
    return {
        "score": score,
        "marginals": marginals,
        "structure": structure,
        "overall": overall,
        "distinct_factor": factor,
        "weights": weights,
        "structure_weights": structure_weights,
    }


def _excess(value: float, reference: float, rows: int, config: EngineConfig) -> bool:
    if math.isnan(value) or math.isnan(reference) or rows == 0:
        return False
    error = math.sqrt((value * (1 - value) + reference * (1 - reference)) / rows)
    return value - reference > max(config.mode_collapse_margin, 3.0 * error)


def _mode_collapse(variety: dict, rows: int, config: EngineConfig) -> bool:
    """More of the rows sit on a few points than in fresh real data: repeated rows (distinct-row share
    below the holdout's) or the most frequent rows holding more of the table, each by at least
    ``mode_collapse_margin`` of the rows and 3 standard errors (so that noise never triggers it). The
    first catches collapse on small tables, the second on tables whose real rows repeat a lot."""
    distinct, top = variety["distinct_share"], variety["top_rows_share"]
    return _excess(1.0 - distinct["value"], 1.0 - distinct["reference"], rows, config) or _excess(
        top["value"], top["reference"], rows, config
    )


def assess(
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame | None,
    columns: tuple[Column, ...],
    efficacy: dict | None,
    config: EngineConfig,
    rng: np.random.Generator,
    seed: int,
) -> dict:
    """Every part, its reference and baseline, the drifted columns, the composite score and grade."""
    # One BLAS thread: OpenBLAS threads stall on busy cores, and the products here are small.
    with threadpool_limits(limits=1, user_api="blas"):
        return _assess(synthetic, train, holdout, columns, efficacy, config, rng, seed)


def _assess(
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame | None,
    columns: tuple[Column, ...],
    efficacy: dict | None,
    config: EngineConfig,
    rng: np.random.Generator,
    seed: int,
) -> dict:
    samples = equal_samples(synthetic, train, holdout, config.fidelity_max_rows, rng)
    shapes_and_structure = structure(samples, columns, config, rng)
    discriminator = discriminator_part(samples, columns, config, rng, seed)
    variety = diversity_parts(samples, columns, config, rng)
    machine = ml_part(efficacy, config)
    drifted = drift.drifted_columns(
        train if holdout is not None else samples.real,
        synthetic,
        holdout if holdout is not None else samples.holdout,
        columns,
        small_effect=config.drift_small_effect,
        small_log_odds=config.drift_small_log_odds,
        false_discovery_rate=config.drift_false_discovery_rate,
    )
    parts = {
        "column_shapes": shapes_and_structure["column_shapes"]["skill"],
        "pair_trends": shapes_and_structure["pair_trends"]["skill"],
        "three_way": shapes_and_structure["three_way"]["skill"],
        "discriminator": discriminator["skill"],
        "ml_efficacy": machine["skill"] if machine else math.nan,
        "coverage": variety["coverage"]["skill"],
    }
    combined = combine(parts, variety["distinct_share"]["skill"], config)
    defects = []
    if drifted["drifted"]:
        defects.append("drifted_columns")
    if _mode_collapse(variety, len(samples.synthetic), config):
        defects.append("mode_collapse")
    return combined | {
        "grade": grade(combined["score"], defects, config),
        "band_grade": _letter(combined["score"], config),
        "defects": defects,
        "parts": parts,
        "structure_parts": shapes_and_structure,
        "discriminator": discriminator,
        "diversity": variety,
        "ml_efficacy": machine,
        "drift": drifted,
        "rows": len(samples.synthetic),
        "real_rows": len(samples.real),
        "reference_source": samples.source,
    }


def _part_rows(assessment: dict) -> dict:
    """Each part with its value, the holdout's reference, the trivial baseline, its skill and weight."""
    structure_parts = assessment["structure_parts"]
    discriminator = assessment["discriminator"]
    rows = {
        name: {
            key: structure_parts[name][key]
            for key in ("value", "reference", "baseline", "skill", "levels", "combinations")
        }
        | {"measure": measure}
        for name, measure in (
            ("column_shapes", "mean 1 − TV distance of one column's levels"),
            ("pair_trends", "mean 1 − |association difference| over every column pair"),
            ("three_way", "mean 1 − TV distance over column triples (rank-matched levels)"),
        )
    }
    rows["discriminator"] = {
        "value": discriminator["auc"],
        "reference": discriminator["reference_auc"],
        "baseline": 1.0,
        "skill": discriminator["skill"],
        "measure": "cross-fitted AUC of a classifier telling the rows from train rows",
    }
    if assessment["ml_efficacy"]:
        machine = assessment["ml_efficacy"]
        rows["ml_efficacy"] = {key: machine[key] for key in ("value", "reference", "baseline", "skill")} | {
            "measure": f"{machine['metric']} on holdout rows of a model trained on these rows"
        }
    coverage = assessment["diversity"]["coverage"]
    rows["coverage"] = {
        "value": coverage["value"],
        "reference": coverage["reference"],
        "baseline": 0.0,
        "skill": coverage["skill"],
        "measure": "share of train rows with a row inside their 5-nearest-neighbour ball",
    }
    for name, row in rows.items():
        row["weight"] = assessment["weights"].get(name, 0.0)
    return rows


def thresholds(config: EngineConfig) -> dict:
    """Every number the grade depends on, with its reason (the same text as docs/engine.md#quality-grade)."""
    return {
        "formula": (
            "score = ∛(marginals × structure × overall) × distinct_factor; skill of a part = (value − "
            "baseline) / (holdout reference − baseline), clipped to [0, 1]; grade = band of score, one "
            "letter lower per defect (drifted columns, mode collapse)"
        ),
        "grade_bands": [{"grade": g, "min_score": m} for g, m in config.composite_grade_bands],
        "grade_source": (
            "Synthex choice on the skill scale (1 = fresh real rows, 0 = a trivial baseline): A within 10% of "
            "fresh real data; B, C at 70% and 50% of the way; D from a quarter of the way (clearly more "
            "than a trivial generator keeps); F below. docs/engine.md#quality-grade"
        ),
        "weights": [{"part": name, "weight": weight} for name, weight in config.composite_weights],
        "weights_source": "equal: no part is privileged; parts that cannot be measured are left out",
        "structure_parts": list(STRUCTURE_PARTS),
        "baselines": {
            "column_shapes": "rows that know only the schema (numbers uniform over the real range, categories uniform)",
            "pair_trends": "the holdout with each column permuted on its own (independent columns)",
            "three_way": "the holdout with each column permuted on its own (independent columns)",
            "discriminator": "AUC 1: rows always told apart",
            "ml_efficacy": "a model that ignores every feature (majority class, or the mean)",
            "coverage": "0: no train row covered",
        },
        "minimum_skill_gap": config.minimum_skill_gap,
        "minimum_skill_gap_source": "a part whose reference beats its baseline by less is left out (nothing to see)",
        "levels": config.fidelity_bins,
        "levels_source": "mostlyai-qa's 10 bins per column; fewer for joint tables of small samples (≥ 5 rows per cell)",
        "drift_small_effect": config.drift_small_effect,
        "drift_small_log_odds": config.drift_small_log_odds,
        "drift_false_discovery_rate": config.drift_false_discovery_rate,
        "drift_source": (
            "Cohen's small effect (d = 0.2; for shares its log-odds equivalent 0.2·π/√3, Chinn 2000), "
            "Benjamini–Hochberg at 5%; a numeric column drifts only when removing its mean shift takes at "
            "least half of that shift off its Wasserstein distance (a moved distribution, not a poorly "
            "reproduced shape)"
        ),
        "mode_collapse_margin": config.mode_collapse_margin,
        "mode_collapse_source": (
            "repeated rows, or rows on the 10 most frequent rows, above the holdout's share by 5% of the "
            "rows and by 3 standard errors"
        ),
        "coverage_neighbours": config.coverage_neighbours,
        "coverage_source": "Naeem et al. 2020 (k = 5)",
    }


def section(assessment: dict, config: EngineConfig) -> dict:
    """The composite's members of the certificate's ``quality`` section."""
    variety = assessment["diversity"]
    return {
        "score": assessment["score"],
        "grade": assessment["grade"],
        "fidelity": {
            "parts": _part_rows(assessment),
            "marginals": assessment["marginals"],
            "structure": assessment["structure"],
            "overall": assessment["overall"],
            "distinct_factor": assessment["distinct_factor"],
            "band_grade": assessment["band_grade"],
            "defects": assessment["defects"],
            "rows": assessment["rows"],
            "real_rows": assessment["real_rows"],
            "reference_source": assessment["reference_source"],
        },
        "diversity": {
            name: {key: value for key, value in variety[name].items() if key != "skill"}
            for name in ("distinct_share", "top_rows_share", "coverage", "precision")
        },
        "drifted_columns": assessment["drift"]["drifted"],
        "misshapen_columns": assessment["drift"]["misshapen"],
        "drift_tests": assessment["drift"]["tests"],
    }
