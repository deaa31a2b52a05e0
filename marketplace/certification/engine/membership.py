"""Record-level membership inference: who can be told to be in train from the synthetic rows alone.

Members are (a sample of) train rows, non-members the holdout rows. Two attacks score each real row:
- distance: minus the distance to the nearest synthetic row (a copied or lightly perturbed row scores 0);
- density ratio (DOMIAS, van Breugel et al. 2023): synthetic density over reference density at the row,
  the holdout as the reference, both estimated by nearest-neighbour distances: log r_ref − log r_syn is
  the log ratio of 1-NN density estimates up to the dimension factor, which does not change a ranking.
  A holdout row's reference distance leaves the row itself out.
Each is scored on all rows and on the *vulnerable* ones — rows isolated in the real data (reference
distance in the top share), the outliers that average figures hide (Stadler et al. 2022; "The DCR
Delusion", arXiv 2505.01524) — as AUC and as TPR at FPR 1 % and 0.1 % (Carlini et al. 2022).
"""

from __future__ import annotations

import numpy as np

from .config import EngineConfig
from .stats import rank_auc, tpr_at_fpr

FPRS = (0.01, 0.001)
SOURCE = (
    "Distance and DOMIAS density-ratio attacks (van Breugel et al., AISTATS 2023), TPR at low FPR "
    "(Carlini et al., S&P 2022), vulnerable records (Stadler et al., USENIX Security 2022)"
)


def _epsilon(reference: np.ndarray) -> float:
    positive = reference[reference > 0]
    return max(1e-9, 0.01 * float(np.median(positive))) if len(positive) else 1e-6


def vulnerable_masks(
    member_reference: np.ndarray, holdout_reference: np.ndarray, config: EngineConfig
) -> tuple[np.ndarray, np.ndarray, float]:
    """Rows whose nearest real (holdout) neighbour is farther than the holdout's top-share quantile.

    The share is ``config.vulnerable_share`` or enough for ``config.vulnerable_min_rows`` holdout rows.
    Where the quantile is 0 (many natural duplicates), rows without a real twin are the vulnerable ones.
    """
    share = min(
        1.0, max(config.vulnerable_share, config.vulnerable_min_rows / max(len(holdout_reference), 1))
    )
    cut = float(np.quantile(holdout_reference, 1 - share))
    if cut > 0:
        return member_reference >= cut, holdout_reference >= cut, cut
    return member_reference > 0, holdout_reference > 0, cut


def _scores(
    member_synthetic: np.ndarray,
    holdout_synthetic: np.ndarray,
    member_reference: np.ndarray,
    holdout_reference: np.ndarray,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    epsilon = _epsilon(np.concatenate([holdout_reference, holdout_synthetic]))
    return {
        "distance": (-member_synthetic, -holdout_synthetic),
        "density": (
            np.log(member_reference + epsilon) - np.log(member_synthetic + epsilon),
            np.log(holdout_reference + epsilon) - np.log(holdout_synthetic + epsilon),
        ),
    }


def attacks(
    member_synthetic: np.ndarray,
    holdout_synthetic: np.ndarray,
    member_reference: np.ndarray,
    holdout_reference: np.ndarray,
    config: EngineConfig,
    rng: np.random.Generator,
) -> dict:
    """Both attacks on both populations. Inputs are distances (not squared): member and holdout rows to
    their nearest synthetic row, and to their nearest holdout row (leaving a holdout row itself out)."""
    member_vulnerable, holdout_vulnerable, cut = vulnerable_masks(member_reference, holdout_reference, config)
    populations = {
        "all": (np.ones(len(member_synthetic), bool), np.ones(len(holdout_synthetic), bool)),
        "vulnerable": (member_vulnerable, holdout_vulnerable),
    }
    result: dict = {
        "members": len(member_synthetic),
        "non_members": len(holdout_synthetic),
        "vulnerable": {
            "reference_distance_at_least": cut,
            "members": int(member_vulnerable.sum()),
            "non_members": int(holdout_vulnerable.sum()),
        },
        "source": SOURCE,
    }
    for attack, (member_score, holdout_score) in _scores(
        member_synthetic, holdout_synthetic, member_reference, holdout_reference
    ).items():
        for population, (member_mask, holdout_mask) in populations.items():
            positive, negative = member_score[member_mask], holdout_score[holdout_mask]
            auc, interval = rank_auc(positive, negative)
            result[f"{attack}_{population}"] = {
                "auc": auc,
                "auc_ci": list(interval),
                "members": int(len(positive)),
                "non_members": int(len(negative)),
                "tpr_at_fpr": [tpr_at_fpr(positive, negative, fpr, rng) for fpr in FPRS],
            }
    return result
