"""Drifted columns: marginal shifts larger than fresh real data shows, by more than a small effect.

For every continuous column the effect is the standardized mean difference against train,
d = (mean − mean_train) / sd_train; for every category (and for the share of missing values) it is the
log odds ratio ln(odds / odds_train) of its share. The same effect is measured for the holdout and shown
beside (fresh real rows stay within noise of 0, which is what the standard error assumes). A column or
category is *drifted* when

    H0: |effect_synthetic| ≤ δ

is rejected by a one-sided z-test (standard error of the synthetic effect, train's sampling included) with
the Benjamini–Hochberg procedure at false-discovery rate ``q`` over every test of the table. δ is Cohen's "small effect":
d = 0.2 for means, and its log-odds equivalent 0.2·π/√3 = 0.363 for shares (Chinn 2000); a difference
below it is not one a buyer's analysis would notice, and a shape that is only smoothed or blurred (an
honest model's weak column) keeps its mean and its category shares within it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .schema import Column

_MIN_SHARE = 0.005
_MAX_CATEGORIES = 50
_MISSING = "\x00missing"
_QUANTILE_POINTS = 1000


def _p_value(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _log_odds(share: float, rows: int) -> tuple[float, float]:
    """Log odds of a share (shrunk by half a row at 0 and 1) and its sampling variance 1 / (n·p·(1 − p))."""
    clipped = min(max(share, 0.5 / rows), 1.0 - 0.5 / rows)
    return math.log(clipped / (1.0 - clipped)), 1.0 / (rows * clipped * (1.0 - clipped))


def _mean_test(name: str, real: np.ndarray, candidates: dict[str, np.ndarray]) -> dict | None:
    present = {key: values[~np.isnan(values)] for key, values in candidates.items()}
    real = real[~np.isnan(real)]
    if len(real) < 2 or any(len(values) < 2 for values in present.values()):
        return None
    scale = float(real.std(ddof=1))
    if scale == 0:
        return None
    effects, errors = {}, {}
    for key, values in present.items():
        effects[key] = (float(values.mean()) - float(real.mean())) / scale
        errors[key] = math.sqrt(float(values.var(ddof=1)) / (len(values) * scale**2) + 1.0 / len(real))
    return {
        "column": name,
        "category": None,
        "kind": "mean_shift",
        "effect": effects["synthetic"],
        "reference_effect": effects["holdout"],
        "errors": errors,
        "synthetic_mean": float(present["synthetic"].mean()),
        "real_mean": float(real.mean()),
        "reference_mean": float(present["holdout"].mean()),
        "real_sd": scale,
    }


def _share_test(
    name: str, category: object, kind: str, shares: dict[str, float], sizes: dict[str, int]
) -> dict:
    odds = {key: _log_odds(shares[key], sizes[key]) for key in shares}
    real, real_variance = odds["real"]
    return {
        "column": name,
        "category": category,
        "kind": kind,
        "effect": odds["synthetic"][0] - real,
        "reference_effect": odds["holdout"][0] - real,
        "errors": {key: math.sqrt(odds[key][1] + real_variance) for key in ("synthetic", "holdout")},
        "synthetic_share": shares["synthetic"],
        "real_share": shares["real"],
        "reference_share": shares["holdout"],
    }


def _share_tests(name: str, tables: dict[str, pd.Series]) -> list[dict]:
    """One test per category seen in at least 0.5% of real or synthetic rows (missing values included)."""
    labelled = {key: series.astype(object).where(series.notna(), _MISSING) for key, series in tables.items()}
    # Plain dicts: Series.get falls back to *positions* for an integer label missing from an object index,
    # which read another category's share for a level one side lacks.
    counted = {key: series.value_counts(normalize=True) for key, series in labelled.items()}
    shares = {key: dict(zip(counts.index, counts.to_numpy(), strict=True)) for key, counts in counted.items()}
    sizes = {key: len(series) for key, series in tables.items()}
    candidates = counted["real"].index.union(counted["synthetic"].index, sort=False)
    frequent = sorted(
        (
            label
            for label in candidates
            if max(shares["real"].get(label, 0.0), shares["synthetic"].get(label, 0.0)) >= _MIN_SHARE
        ),
        key=lambda label: (-shares["real"].get(label, 0.0), str(label)),
    )[:_MAX_CATEGORIES]
    return [
        _share_test(
            name,
            None if label == _MISSING else label,
            "missing_share" if label == _MISSING else "category_share",
            {key: float(shares[key].get(label, 0.0)) for key in shares},
            sizes,
        )
        for label in frequent
    ]


def _statement(test: dict) -> str:
    if test["kind"] == "mean_shift":
        direction = "higher" if test["effect"] > 0 else "lower"
        return (
            f"{test['column']}: synthetic values are on average {abs(test['effect']):.2f} standard deviations "
            f"{direction} than the real ones (fresh real rows: {abs(test['reference_effect']):.2f})."
        )
    what = (
        f"{test['column']} missing"
        if test["kind"] == "missing_share"
        else f"{test['column']} = {test['category']}"
    )
    return (
        f"{what}: {100 * test['synthetic_share']:.1f}% of synthetic rows vs {100 * test['real_share']:.1f}% of "
        f"real rows (fresh real rows: {100 * test['reference_share']:.1f}%)."
    )


def _wasserstein(real: np.ndarray, synthetic: np.ndarray) -> float:
    grid = (np.arange(_QUANTILE_POINTS) + 0.5) / _QUANTILE_POINTS
    return float(np.mean(np.abs(np.quantile(synthetic, grid) - np.quantile(real, grid))))


def shift_explains(real: np.ndarray, synthetic: np.ndarray, shift: float) -> bool:
    """Whether the distribution moved as a whole: moving the synthetic values back by ``shift`` removes at
    least half of it from their 1-Wasserstein distance to the real values. A poorly reproduced shape (a
    spike smeared, a tail stretched) also moves the mean, but taking the mean difference away leaves most
    of its distance in place."""
    real, synthetic = real[~np.isnan(real)], synthetic[~np.isnan(synthetic)]
    if len(real) == 0 or len(synthetic) == 0:
        return False
    before = _wasserstein(real, synthetic)
    after = _wasserstein(real, synthetic - shift)
    return bool(before - after >= 0.5 * abs(shift))


def benjamini_hochberg(p_values: list[float], q: float) -> list[bool]:
    """Which hypotheses the Benjamini–Hochberg step-up procedure rejects at false-discovery rate ``q``."""
    count = len(p_values)
    if count == 0:
        return []
    order = np.argsort(p_values, kind="stable")
    ranked = np.asarray(p_values)[order]
    passing = np.flatnonzero(ranked <= q * np.arange(1, count + 1) / count)
    rejected = np.zeros(count, dtype=bool)
    if len(passing):
        rejected[order[: passing[-1] + 1]] = True
    return rejected.tolist()


def drifted_columns(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame,
    columns: tuple[Column, ...],
    *,
    small_effect: float,
    small_log_odds: float,
    false_discovery_rate: float,
) -> dict:
    """The drifted columns and categories (see the module docstring), most significant first.

    A column whose mean moved but whose shift does not explain its distance to train (see
    :func:`shift_explains`) is listed under ``misshapen``: a poorly reproduced shape, which column shapes
    already score, not a drift.
    """
    tests: list[dict] = []
    for column in columns:
        name = column.name
        if column.is_continuous:
            values = {
                "synthetic": synthetic[name].to_numpy(dtype=np.float64),
                "holdout": holdout[name].to_numpy(dtype=np.float64),
            }
            found = _mean_test(name, real[name].to_numpy(dtype=np.float64), values)
            tests += [found] if found else []
            if real[name].isna().any() or synthetic[name].isna().any():
                tables = {"real": real[name], "synthetic": synthetic[name], "holdout": holdout[name]}
                shares = {key: float(series.isna().mean()) for key, series in tables.items()}
                sizes = {key: len(series) for key, series in tables.items()}
                tests.append(_share_test(name, None, "missing_share", shares, sizes))
        elif column.is_discrete:
            tests += _share_tests(
                name, {"real": real[name], "synthetic": synthetic[name], "holdout": holdout[name]}
            )
    for test in tests:
        error = test.pop("errors")["synthetic"]
        margin = small_effect if test["kind"] == "mean_shift" else small_log_odds
        excess = abs(test["effect"]) - margin
        test["p_value"] = _p_value(excess / error) if error > 0 else float(excess <= 0)
    flags = benjamini_hochberg([t["p_value"] for t in tests], false_discovery_rate)
    drifted, misshapen = [], []
    for test, flag in zip(tests, flags, strict=True):
        if not flag:
            continue
        if test["kind"] == "mean_shift":
            name = test["column"]
            shift = test["synthetic_mean"] - test["real_mean"]
            values = real[name].to_numpy(dtype=np.float64)
            if not shift_explains(values, synthetic[name].to_numpy(dtype=np.float64), shift):
                misshapen.append(test | {"statement": _statement(test)})
                continue
        drifted.append(test | {"statement": _statement(test)})
    order = lambda t: (t["p_value"], -abs(t["effect"]), str(t["column"]))  # noqa: E731
    return {
        "tests": len(tests),
        "drifted": sorted(drifted, key=order),
        "misshapen": sorted(misshapen, key=order),
    }
