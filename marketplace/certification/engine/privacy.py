"""Privacy figures, each against a baseline of real rows the generator never saw (the holdout).

Inputs are cleaned tables (``schema.clean_table``); distances are those of ``distance.py`` and are reported
as d = √(mean per-column squared discrepancy), so 0 means identical rows. The order of work: baseline
integrity (an overlapping holdout is refused), matching tests, distances, membership attacks, Anonymeter's
attacks; the tests themselves are built in ``privacy_tests.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binom

from . import baseline, matching, membership, privacy_tests
from .anonymeter_attacks import inference, linkability, query_matrix, singling_out
from .config import EngineConfig
from .distance import Encoding, fit_encoding, nearest
from .schema import Column, bounded_sample
from .stats import Rate, rank_auc, wilson_interval

_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95)
_SHADOW_NOT_RUN = {
    "ran": False,
    "reason": "The shadow-model attack replays a generator's fit; it runs for SDV generators fitted on the "
    "platform, not for uploaded datasets or models.",
}


def _summary(distances: np.ndarray) -> dict:
    if len(distances) == 0:
        return {"rows": 0}
    values = np.quantile(distances, _QUANTILES)
    summary = {f"p{round(q * 100)}": float(v) for q, v in zip(_QUANTILES, values, strict=True)}
    summary.update(
        rows=int(len(distances)), mean=float(distances.mean()), zero_share=float(np.mean(distances == 0))
    )
    return summary


def _nndr(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    low, high = np.minimum(first, second), np.maximum(first, second)
    ratio = np.sqrt(low) / np.sqrt(np.where(high > 0, high, 1.0))
    return np.where(high > 0, ratio, 1.0)


def _distinct(keys: np.ndarray) -> np.ndarray:
    """Positions of the first occurrence of each distinct key, in row order."""
    return np.sort(np.unique(keys, return_index=True)[1])


def _shuffled_train(
    train: pd.DataFrame, train_matrix: np.ndarray, train_keys: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Train's encoded rows, row keys and rows in one random order (``rng``), so any prefix is a uniform
    sample of train."""
    order = rng.permutation(len(train))
    return train_matrix[order], train_keys[order], train.iloc[order].reset_index(drop=True)


def _baseline_integrity(
    train_matrix: np.ndarray,
    train_keys: np.ndarray,
    holdout_matrix: np.ndarray,
    holdout_keys: np.ndarray,
    config: EngineConfig,
) -> tuple[Any, np.ndarray, dict]:
    """(holdout-to-train distances, train rows' distances to their nearest other train row, the overlap
    figures); raises ``baseline.HoldoutOverlapError`` when the holdout overlaps train."""
    holdout_to_train = nearest(holdout_matrix, train_matrix, second=True, n_jobs=config.n_jobs)
    train_to_other = nearest(
        train_matrix[: config.baseline_train_sample], train_matrix, second=True, n_jobs=config.n_jobs
    ).second
    integrity = baseline.overlap_figures(
        train_keys, holdout_keys, np.sqrt(holdout_to_train.first), np.sqrt(train_to_other), config
    )
    baseline.refuse_if_overlapping(integrity)
    return holdout_to_train, train_to_other, integrity


def assess(
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame | None,
    columns: tuple[Column, ...],
    config: EngineConfig,
    rng: np.random.Generator,
    progress: Callable[[int], None],
) -> tuple[dict, dict, dict]:
    """Privacy section, DCR chart data and the sizes used; see docs/engine.md for every test.

    Raises ``baseline.HoldoutOverlapError`` (an EngineError with the figures) when the holdout overlaps
    train beyond the table's own duplicates."""
    names = [c.name for c in columns if c.is_continuous or c.is_discrete]
    train_keys = matching.row_keys(train, names)
    synthetic_all_keys = matching.row_keys(synthetic, names)
    exact_rate = float(np.isin(synthetic_all_keys, train_keys).mean())
    result: dict = {
        "exact_match_rate": exact_rate,
        "exact_match_ci": list(wilson_interval(round(exact_rate * len(synthetic)), len(synthetic))),
    }
    encoding = fit_encoding(
        train,
        [synthetic] + ([holdout] if holdout is not None else []),
        columns,
        config.distance_max_categories,
        real=(holdout,) if holdout is not None else (),
    )
    synthetic_query, synthetic_sampled = bounded_sample(synthetic, config.privacy_max_rows, rng)
    sizes = {
        "synthetic_rows": len(synthetic_query),
        "synthetic_sampled": synthetic_sampled,
        "train_rows": len(train),
    }
    synthetic_matrix = encoding.encode(synthetic_query)
    train_matrix = encoding.encode(train)
    progress(5)
    if holdout is None:
        return _assess_without_holdout(
            result, synthetic_matrix, train_matrix, train_keys, sizes, config, progress
        )
    baseline.refuse_if_too_small(len(train), len(holdout), config)
    holdout_query, holdout_sampled = bounded_sample(holdout, config.privacy_max_rows, rng)
    train_matrix, train_keys, train_ordered = _shuffled_train(train, train_matrix, train_keys, rng)
    holdout_matrix = encoding.encode(holdout_query)
    holdout_keys = matching.row_keys(holdout_query, names)
    equal_size = min(len(holdout_query), len(train))
    members = min(len(train), max(equal_size, config.membership_max_members))

    holdout_to_train, train_to_other, integrity = _baseline_integrity(
        train_matrix, train_keys, holdout_matrix, holdout_keys, config
    )
    progress(15)

    synthetic_keys = matching.row_keys(synthetic_query, names)
    distinct = _distinct(synthetic_keys)
    synthetic_distinct = synthetic_matrix[distinct]
    sizes.update(
        holdout_rows=len(holdout_query),
        holdout_sampled=holdout_sampled,
        equal_size_train_rows=equal_size,
        synthetic_distinct_rows=len(distinct),
        members=members,
    )
    result.update(
        {"exact_match_rate_holdout": float(np.isin(holdout_keys, train_keys).mean())}
        | _matching(
            synthetic_query,
            synthetic_keys,
            train_ordered,
            train_keys,
            holdout_query,
            holdout_keys,
            equal_size,
            encoding,
            config,
            rng,
        )
    )
    progress(30)

    to_train = nearest(
        synthetic_distinct, train_matrix, second=True, prefix_rows=equal_size, n_jobs=config.n_jobs
    )
    to_holdout = nearest(synthetic_distinct, holdout_matrix[:equal_size], n_jobs=config.n_jobs)
    progress(45)
    result.update(_distances(to_train, to_holdout, holdout_to_train))
    result["closest_records"] = _closest(
        np.sqrt(to_train.first), np.sqrt(holdout_to_train.first), np.sqrt(train_to_other)
    )
    result["membership_inference"] = _membership(
        train_matrix[:members], holdout_matrix, synthetic_distinct, config, rng
    )
    progress(65)

    result.update(
        _anonymeter(
            synthetic_query,
            synthetic_matrix,
            train_ordered,
            train_matrix,
            holdout_query,
            holdout_matrix,
            equal_size,
            encoding,
            config,
            rng,
            progress,
        )
    )
    progress(95)
    result.update(
        baseline="holdout",
        shadow_attack=_SHADOW_NOT_RUN,
        baseline_integrity=integrity,
        baseline_statement=(
            "Each figure is compared with the same figure for real holdout rows the generator never saw. "
            + baseline.statement(integrity)
        ),
    )
    result["tests"] = _tests(result, integrity, len(distinct), len(holdout_query), equal_size, config)
    charts = _dcr_chart(np.sqrt(to_train.prefix), np.sqrt(to_holdout.first))
    return result, charts, sizes


def _matching(
    synthetic: pd.DataFrame,
    synthetic_keys: np.ndarray,
    train: pd.DataFrame,
    train_keys: np.ndarray,
    holdout: pd.DataFrame,
    holdout_keys: np.ndarray,
    equal_size: int,
    encoding: Encoding,
    config: EngineConfig,
    rng: np.random.Generator,
) -> dict:
    located = matching.locations(
        len(synthetic_keys),
        matching.numbers_finer_than_bins(
            [train, holdout, synthetic], encoding.columns, config.quasi_tolerance
        ),
    )
    flags = matching.match_flags(
        synthetic_keys, train_keys, holdout_keys, equal_size, (located["any"], located["exact"])
    )
    quasi = matching.quasi_flags(
        synthetic,
        train,
        holdout,
        encoding.columns,
        config.quasi_tolerance,
        equal_size,
        {level: (located["any"], located[level]) for level in ("one", "two")}
        | {level: (located[level],) for level in ("one_exact", "two_exact") if level in located},
    )
    baseline_keys = np.concatenate([holdout_keys, train_keys])

    def family(found: dict[str, np.ndarray], kind: str) -> dict:
        unpaired = matching.compare(
            found[f"synthetic_{kind}"],
            synthetic_keys,
            np.concatenate([found[f"holdout_{kind}"], found[f"train_{kind}"]]),
            baseline_keys,
            rng,
        )
        return unpaired.to_dict() | {
            "paired": matching.paired(
                found[f"paired_train_{kind}"],
                found[f"paired_holdout_{kind}"],
                synthetic_keys,
                (found["paired_train_cluster"], found["paired_holdout_cluster"]),
            )
        }

    exact = family(flags, "any")
    return {
        "exact_copies": exact,
        "unique_exact_matches": family(flags, "unique"),
        "quasi_copies": {"tolerance_sd": config.quasi_tolerance}
        | {
            level: {kind: family(found, kind) for kind in ("any", "unique")} for level, found in quasi.items()
        },
        "copy_location": {
            name: matching.location_test(location, synthetic_keys, len(train_keys), len(holdout_keys))
            for name, location in located.items()
            if name in ("any", "exact") or name.removesuffix("_exact") in quasi
        },
        "holdout_copies": {
            key: exact["paired"][key]
            for key in ("train_rate", "holdout_rate", "standard_error", "synthetic_distinct_rows")
        }
        | {"difference": -exact["paired"]["difference"]},
    }


def _paired_close(to_train_sample: np.ndarray, to_holdout: np.ndarray, tau: float) -> dict:
    """The same distinct synthetic rows within ``tau`` of an equal-size train sample but not of the holdout,
    minus the reverse (squared distances in): a generator that never saw the split is as near to both, however
    much it favours the common rows both share."""
    rows = np.arange(len(to_train_sample), dtype=np.uint64)  # the rows are distinct already
    return matching.paired(to_train_sample <= tau * tau, to_holdout <= tau * tau, rows)


def _distances(to_train, to_holdout, holdout_to_train) -> dict:  # noqa: ANN001 - distance.Neighbours
    closer = to_train.prefix < to_holdout.first
    ties = to_train.prefix == to_holdout.first
    successes = float(closer.sum() + 0.5 * ties.sum())
    dcr_train = np.sqrt(to_train.first)
    dcr_holdout_baseline = np.sqrt(holdout_to_train.first)
    tau = float(np.quantile(dcr_holdout_baseline, 0.02))
    return {
        "dcr_share": successes / len(closer),
        "dcr_share_ci": list(wilson_interval(round(successes), len(closer))),
        "dcr_share_ties": float(ties.mean()),
        "dcr": {
            "synthetic_to_train": _summary(dcr_train),
            "synthetic_to_train_equal_size": _summary(np.sqrt(to_train.prefix)),
            "synthetic_to_holdout": _summary(np.sqrt(to_holdout.first)),
            "holdout_to_train": _summary(dcr_holdout_baseline),
        },
        "nndr": {
            "synthetic_to_train": _summary(_nndr(to_train.first, to_train.second)),
            "holdout_to_train": _summary(_nndr(holdout_to_train.first, holdout_to_train.second)),
        },
        "close_records": {
            "distance": tau,
            "synthetic_rate": float(np.mean(dcr_train <= tau)),
            "holdout_rate": float(np.mean(dcr_holdout_baseline <= tau)),
            "paired": _paired_close(to_train.prefix, to_holdout.first, tau),
        },
    }


def _closest(
    synthetic_to_train: np.ndarray, holdout_to_train: np.ndarray, train_to_other: np.ndarray
) -> dict:
    """Distinct synthetic rows nearer to a train row than every real row of the baseline is: holdout rows
    to train and sampled train rows to the rest of train (a random split makes both fresh rows for train).
    A row no nearer to train than fresh real data falls below the minimum of n exchangeable baseline
    distances with chance at most 1/(n + 1), so the count is tested against Binomial(rows, 1/(n + 1)).
    Lightly perturbed copies of isolated rows land there, however few of the table's rows they are."""
    baseline = np.concatenate([holdout_to_train, train_to_other])
    # Exact twins (distance 0) are the exact-copy tests' evidence; where real rows repeat, only the rows
    # strictly between 0 and the nearest non-identical real pair count, against the non-zero baseline.
    positive = baseline[baseline > 0]
    ties = len(positive) < len(baseline)
    floor = float(positive.min()) if len(positive) else 0.0
    below = synthetic_to_train < floor
    if ties:
        below &= synthetic_to_train > 0
    count = int(np.sum(below))
    chance = 1.0 / (len(positive) + 1)
    rows = len(synthetic_to_train)
    return {
        "distance": floor,
        "baseline_rows": int(len(positive)),
        "zero_distances_excluded": ties,
        "synthetic_rows": rows,
        "count": count,
        "rate": count / max(rows, 1),
        "expected": rows * chance,
        "p_value": float(binom.sf(count - 1, rows, chance)) if count else 1.0,
    }


def _membership(
    member_matrix: np.ndarray,
    holdout_matrix: np.ndarray,
    synthetic_distinct: np.ndarray,
    config: EngineConfig,
    rng: np.random.Generator,
) -> dict:
    jobs = config.n_jobs
    member_synthetic = np.sqrt(nearest(member_matrix, synthetic_distinct, n_jobs=jobs).first)
    holdout_synthetic = np.sqrt(nearest(holdout_matrix, synthetic_distinct, n_jobs=jobs).first)
    member_reference = np.sqrt(nearest(member_matrix, holdout_matrix, n_jobs=jobs).first)
    holdout_reference = np.sqrt(nearest(holdout_matrix, holdout_matrix, second=True, n_jobs=jobs).second)
    figures = membership.attacks(
        member_synthetic, holdout_synthetic, member_reference, holdout_reference, config, rng
    )
    headline = figures["distance_all"]
    return {
        "auc": headline["auc"],
        "ci": headline["auc_ci"],
        "advantage": max(0.0, 2 * headline["auc"] - 1),
    } | figures


def _anonymeter(
    synthetic_query: pd.DataFrame,
    synthetic_matrix: np.ndarray,
    train_ordered: pd.DataFrame,
    train_matrix: np.ndarray,
    holdout_query: pd.DataFrame,
    holdout_matrix: np.ndarray,
    equal_size: int,
    encoding: Encoding,
    config: EngineConfig,
    rng: np.random.Generator,
    progress: Callable[[int], None],
) -> dict:
    attacks = min(config.attack_count, equal_size)
    train_targets = rng.choice(equal_size, size=attacks, replace=False)
    control_targets = rng.choice(len(holdout_query), size=attacks, replace=False)
    synthetic_q, original_q, control_q = query_matrix(
        [synthetic_query, train_ordered.iloc[:equal_size], holdout_query.iloc[:equal_size]], encoding
    )
    discrete = np.array([c.is_discrete for c in encoding.columns])
    result = {
        "singling_out": singling_out(
            synthetic_q,
            original_q,
            control_q,
            discrete,
            attacks=attacks,
            slots=config.singling_out_columns,
            rng=rng,
        )
        | {
            "mode": "multivariate",
            "columns_per_query": min(config.singling_out_columns, len(encoding.columns)),
        }
    }
    progress(75)
    half = len(encoding.columns) // 2
    first_names = {c.name for c in encoding.columns[: max(half, 1)]}
    second_names = {c.name for c in encoding.columns[max(half, 1) :]} or first_names
    result["linkability"] = linkability(
        synthetic_matrix,
        train_matrix[train_targets],
        holdout_matrix[control_targets],
        encoding.dims(first_names),
        encoding.dims(second_names),
        config.n_jobs,
    ) | {"columns": [sorted(first_names), sorted(second_names)]}
    progress(85)
    targets = pd.concat(
        [train_ordered.iloc[train_targets], holdout_query.iloc[control_targets]], ignore_index=True
    )
    target_matrix = np.vstack([train_matrix[train_targets], holdout_matrix[control_targets]])
    result["attribute_inference"] = inference(
        synthetic_matrix,
        synthetic_query,
        target_matrix,
        targets,
        attacks,
        encoding,
        config.inference_max_columns,
        config.n_jobs,
    )
    return result


def _tests(
    result: dict,
    integrity: dict,
    synthetic_rows: int,
    holdout_rows: int,
    equal_rows: int,
    config: EngineConfig,
) -> list[dict]:
    excess = max(integrity["exact_excess"], integrity["near_excess"])
    overlap = privacy_tests.make_test(
        "holdout_overlap/v1",
        excess,
        config.baseline_margin,
        passed=True,
        strict_passed=True,
        ci=integrity["exact_excess_ci"],
        source=baseline.SOURCE,
        fails_when="refused before any test (the holdout overlaps train beyond the table's own duplicates)",
        meaning=baseline.statement(integrity),
    )
    return (
        [overlap]
        + privacy_tests.matching_tests(result, config)
        + privacy_tests.distance_tests(result, equal_rows, synthetic_rows, holdout_rows, config)
        + privacy_tests.membership_tests(result["membership_inference"], config)
        + privacy_tests.attack_tests(result, config)
    )


def _assess_without_holdout(
    result: dict,
    synthetic_matrix: np.ndarray,
    train_matrix: np.ndarray,
    train_keys: np.ndarray,
    sizes: dict,
    config: EngineConfig,
    progress: Callable[[int], None],
) -> tuple[dict, dict, dict]:
    to_train = nearest(synthetic_matrix, train_matrix, second=True, n_jobs=config.n_jobs)
    progress(80)
    duplicate_rate = float(pd.Series(train_keys).duplicated(keep=False).mean())
    noise = 3.0 * np.sqrt(
        duplicate_rate
        * (1 - duplicate_rate)
        * (1 / max(len(synthetic_matrix), 1) + 1 / max(len(train_keys), 1))
    )
    allowance = max(
        config.exact_copy_margin, config.exact_copy_relative_margin * duplicate_rate, float(noise)
    )
    dcr_train = np.sqrt(to_train.first)
    unavailable = {"risk": None, "ci": None, "reason": "needs holdout rows"}
    result.update(
        exact_match_rate_holdout=None,
        train_duplicate_rate=duplicate_rate,
        dcr_share=None,
        dcr_share_ci=None,
        dcr={"synthetic_to_train": _summary(dcr_train)},
        nndr={"synthetic_to_train": _summary(_nndr(to_train.first, to_train.second))},
        membership_inference={"auc": None, "ci": None, "reason": "needs holdout rows"},
        singling_out=unavailable,
        linkability=unavailable,
        attribute_inference=unavailable,
        baseline="none",
        shadow_attack=_SHADOW_NOT_RUN,
        baseline_statement=(
            "No holdout was given, so no figure can be compared with real rows the generator never saw; "
            "only exact copies are tested and the privacy grade is capped at C."
        ),
    )
    rate = result["exact_match_rate"]
    result["tests"] = [
        privacy_tests.make_test(
            "exact_copies/v1",
            rate,
            duplicate_rate + allowance,
            passed=rate <= duplicate_rate + allowance,
            strict_passed=rate <= duplicate_rate + allowance / 2,
            ci=result["exact_match_ci"],
            source=privacy_tests.SYNTHEX,
            fails_when="value > train duplicate rate + max(0.002, 10% of it, 3 standard errors)",
            meaning="Share of synthetic rows that are exact copies of a training row, against the share of "
            "training rows that repeat inside train (no holdout baseline).",
        )
    ]
    progress(95)
    return result, _dcr_chart(dcr_train, None), sizes


def _dcr_chart(to_train: np.ndarray, to_holdout: np.ndarray | None) -> dict:
    pooled = to_train if to_holdout is None else np.concatenate([to_train, to_holdout])
    top = float(np.quantile(pooled, 0.99)) if len(pooled) else 1.0
    edges = np.linspace(0.0, top if top > 0 else 1.0, 31)
    chart = {
        "bin_edges": edges.tolist(),
        "synthetic_to_train": np.histogram(np.minimum(to_train, edges[-1]), bins=edges)[0].tolist(),
    }
    if to_holdout is not None:
        chart["synthetic_to_holdout"] = np.histogram(np.minimum(to_holdout, edges[-1]), bins=edges)[
            0
        ].tolist()
    return chart


def grade(result: dict, config: EngineConfig) -> tuple[str, bool]:
    """Privacy grade and verdict: F when any test fails; with a holdout A when every test is within its
    strict threshold, else B; without a holdout (capped) C when strict, else D."""
    tests = result["tests"]
    passed = all(test["passed"] for test in tests)
    if not passed:
        return "F", False
    strict = all(test["strict_passed"] for test in tests)
    if result["baseline"] == "holdout":
        return ("A" if strict else "B"), True
    return ("C" if strict else "D"), True


__all__ = ["Rate", "assess", "grade", "rank_auc"]
