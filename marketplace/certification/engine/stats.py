"""Rates, confidence intervals and AUCs used by the privacy tests."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Rate:
    """A Wilson-score estimate of a success rate: centre ``value`` and half-width ``error`` (95%)."""

    value: float
    error: float


def wilson(successes: int, total: int, z: float = Z95) -> Rate:
    """Wilson score estimate as Anonymeter computes it (centre shrunk towards 0.5, half-width)."""
    if total <= 0:
        return Rate(value=0.0, error=1.0)
    z2 = z * z
    variance = successes * (total - successes) / total
    denominator = total + z2
    return Rate(
        value=(successes + 0.5 * z2) / denominator, error=(z / denominator) * math.sqrt(variance + 0.25 * z2)
    )


def wilson_interval(successes: int, total: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion, clipped to [0, 1]."""
    rate = wilson(successes, total, z)
    return max(0.0, rate.value - rate.error), min(1.0, rate.value + rate.error)


def residual_risk(attack: Rate, control: Rate) -> tuple[float, tuple[float, float]]:
    """Anonymeter's risk: the attack's excess success over the control attack, normalised by what the
    control left to gain, (a - c) / (1 - c), with the error propagated to first order; clipped to [0, 1]."""
    if control.value >= 1.0:
        return 0.0, (0.0, 1.0)
    residual = (attack.value - control.value) / (1.0 - control.value)
    d_attack = 1.0 / abs(1.0 - control.value)
    d_control = (attack.value - 1.0) / (1.0 - control.value) ** 2
    error = math.sqrt((attack.error * d_attack) ** 2 + (control.error * d_control) ** 2)
    low = min(max(residual - error, 0.0), 1.0)
    high = min(max(residual + error, 0.0), 1.0)
    return min(max(residual, 0.0), 1.0), (low, high)


def rank_auc(positive: np.ndarray, negative: np.ndarray) -> tuple[float, tuple[float, float]]:
    """AUC = P(positive score > negative score) + ½ P(tie), with the Hanley–McNeil 95% interval."""
    n_pos, n_neg = len(positive), len(negative)
    if n_pos == 0 or n_neg == 0:
        return 0.5, (0.0, 1.0)
    scores = np.concatenate([positive, negative])
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(scores)]])
    average = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(average, ends - starts)
    auc = (ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    q1 = auc / (2 - auc)
    q2 = 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (
        n_pos * n_neg
    )
    error = Z95 * math.sqrt(max(variance, 0.0))
    return float(auc), (max(0.0, auc - error), min(1.0, auc + error))


def excess(attack: Rate, control: Rate) -> tuple[float, tuple[float, float]]:
    """The attack's excess success over the control attack, a − c, with the 95% errors added in quadrature.

    Unlike (a − c) / (1 − c) it stays well-conditioned when the control attack almost always succeeds
    (0.973 against 0.954 is an excess of 0.019, not a risk of 0.41); clipped to [−1, 1]."""
    value = attack.value - control.value
    error = math.hypot(attack.error, control.error)
    return value, (max(-1.0, value - error), min(1.0, value + error))


def tpr_at_fpr(positive: np.ndarray, negative: np.ndarray, fpr: float, rng: np.random.Generator) -> dict:
    """True-positive rate of the rule "score above the k-th highest negative score", k = max(1, ⌊fpr·n⌋).

    Ties are broken at random, so under the null (members and non-members exchangeable) the number of
    positives above the k-th negative follows the negative hypergeometric law; ``p_value`` is its upper
    tail. The achieved false-positive rate k / n is reported beside the asked one. ``ci``: 95% Wilson.
    """
    from scipy.stats import nhypergeom

    n_pos, n_neg = len(positive), len(negative)
    if n_pos == 0 or n_neg == 0:
        return {"fpr": fpr, "achieved_fpr": None, "tpr": None, "ci": None, "p_value": 1.0, "positives": 0}
    k = max(1, int(math.floor(fpr * n_neg)))
    jitter_pos, jitter_neg = rng.random(n_pos), rng.random(n_neg)
    order = np.lexsort((-jitter_neg, -negative))
    threshold, threshold_jitter = negative[order[k - 1]], jitter_neg[order[k - 1]]
    above = (positive > threshold) | ((positive == threshold) & (jitter_pos > threshold_jitter))
    hits = int(above.sum())
    p_value = float(nhypergeom(n_pos + n_neg, n_pos, k).sf(hits - 1)) if hits else 1.0
    return {
        "fpr": fpr,
        "achieved_fpr": k / n_neg,
        "tpr": hits / n_pos,
        "ci": list(wilson_interval(hits, n_pos)),
        "p_value": p_value,
        "positives": hits,
    }
