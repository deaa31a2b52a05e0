"""Shadow-model membership attack on a platform-fitted generator (Stadler et al. 2022; TAPAS, Houssiau et al.).

The platform knows how the generator was made, so it can replay the fit: it picks the most isolated train
rows as targets (the people average figures hide), then refits the same synthesizer, with the same
settings, on many sampled subsets of train, each target put into half of the subsets at random. For each
target the attack scores every shadow sample by the distance from the target to its nearest synthetic row
(TAPAS's closest-distance attack); a generator that memorises puts the target's "in" samples closer than
its "out" ones. Per target: AUC and the TPR at the lowest false-positive rate the runs allow, with the
p-value of that TPR when in and out samples are exchangeable (negative hypergeometric); the test fails
when a target's p-value is below 0.001 / targets (Bonferroni) and its TPR is more than twice the FPR.

Only SDV synthesizers fitted here can be replayed; uploaded models and datasets state why not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings

from marketplace.certification.engine import privacy
from marketplace.certification.engine.config import EngineConfig
from marketplace.certification.engine.distance import fit_encoding, nearest
from marketplace.certification.engine.schema import clean_table, resolve_columns
from marketplace.certification.engine.stats import rank_auc, tpr_at_fpr

TEST_ID = "shadow_model/v1"
SOURCE = (
    "Stadler, Oprisanu, Troncoso, 'Synthetic Data - Anonymisation Groundhog Day', USENIX Security 2022; "
    "TAPAS toolbox (alan-turing-institute/privacy-sdg-toolbox), closest-distance attack"
)
TARGETS = 8
RUNS = 32
MIN_RUNS = 16
ROWS_PER_RUN = 1_000
BUDGET_SECONDS = 150.0
P_VALUE = 0.001


def _isolated_targets(train_matrix: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of the ``count`` train rows farthest from any other train row (among up to 5,000 sampled)."""
    sample = rng.permutation(len(train_matrix))[:5_000]
    isolation = nearest(train_matrix[sample], train_matrix, second=True).second
    return sample[np.argsort(-isolation, kind="stable")[:count]]


def _membership_plan(targets: int, runs: int, rng: np.random.Generator) -> np.ndarray:
    """runs × targets booleans: each target is in exactly half of the runs, at random."""
    plan = np.zeros((runs, targets), dtype=bool)
    for target in range(targets):
        plan[rng.permutation(runs)[: runs // 2], target] = True
    return plan


def run_shadow_attack(
    fit_and_sample: Callable[[pd.DataFrame, int, int], pd.DataFrame],
    train: pd.DataFrame,
    metadata: dict | None,
    *,
    seed: int = 0,
    targets: int = TARGETS,
    runs: int = RUNS,
    rows_per_run: int = ROWS_PER_RUN,
    budget_seconds: float = BUDGET_SECONDS,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Replay the fit ``fit_and_sample(rows, sample_size, seed) -> synthetic rows`` on sampled subsets of
    ``train`` with and without each isolated target; figures per target (no row is reported). Stops
    early at ``budget_seconds`` (the runs done are reported); fewer than MIN_RUNS runs is "not run"."""
    started = time.monotonic()
    rng = np.random.default_rng(seed)
    columns = resolve_columns(train, metadata)
    cleaned = clean_table(train, columns)
    encoding = fit_encoding(cleaned, [], columns, EngineConfig().distance_max_categories)
    matrix = encoding.encode(cleaned)
    chosen = _isolated_targets(matrix, min(targets, max(len(train) // 10, 1)), rng)
    pool = np.setdiff1d(np.arange(len(train)), chosen)
    size = min(rows_per_run, len(pool))
    plan = _membership_plan(len(chosen), runs, rng)
    scores = np.full((runs, len(chosen)), np.nan)
    done = 0
    for run in range(runs):
        if time.monotonic() - started > budget_seconds:
            break
        inside = chosen[plan[run]]
        rows = np.concatenate([rng.choice(pool, size - len(inside), replace=False), inside])
        synthetic = fit_and_sample(train.iloc[rows].reset_index(drop=True), size, seed + run)
        synthetic_matrix = encoding.encode(clean_table(synthetic.reset_index(drop=True), columns))
        scores[run] = -np.sqrt(nearest(matrix[chosen], synthetic_matrix).first)
        done += 1
        if progress is not None:
            progress(done, runs)
    seconds = time.monotonic() - started
    if done < MIN_RUNS:
        return {
            "ran": False,
            "reason": f"only {done} shadow fits finished within {budget_seconds:.0f} s (at least {MIN_RUNS} needed)",
            "seconds": seconds,
            "source": SOURCE,
        }
    return _summarise(scores[:done], plan[:done], seed, seconds, size)


def _summarise(scores: np.ndarray, plan: np.ndarray, seed: int, seconds: float, size: int) -> dict:
    rng = np.random.default_rng(seed + 1)
    per_target = []
    for target in range(scores.shape[1]):
        inside, outside = scores[plan[:, target], target], scores[~plan[:, target], target]
        auc, interval = rank_auc(inside, outside)
        low_fpr = tpr_at_fpr(inside, outside, 0.0, rng)
        per_target.append(
            {"target": target, "auc": auc, "auc_ci": list(interval), "tpr_at_lowest_fpr": low_fpr}
        )
    return {
        "ran": True,
        "attack": "closest distance from the target to the shadow synthetic rows",
        "runs": int(scores.shape[0]),
        "rows_per_run": size,
        "targets": per_target,
        "target_choice": "the train rows farthest from any other train row",
        "seconds": seconds,
        "source": SOURCE,
    }


def not_run(reason: str) -> dict:
    """The shadow-attack entry of a certificate whose generator could not be replayed."""
    return {"ran": False, "reason": reason, "source": SOURCE}


def with_shadow_attack(privacy_section: dict, shadow: dict) -> dict:
    """The privacy section with the shadow attack's figures and test added, grade and verdict recomputed."""
    section = dict(privacy_section)
    section["shadow_attack"] = shadow
    tests = [test for test in section.get("tests", []) if test.get("id") != TEST_ID]
    if shadow.get("ran"):
        tests.append(_test(shadow))
    section["tests"] = tests
    section["grade"], section["passed"] = privacy.grade(section, EngineConfig())
    return section


def _test(shadow: dict) -> dict:
    from marketplace.certification.engine.privacy_tests import make_test

    targets = shadow["targets"]
    cut = P_VALUE / max(len(targets), 1)
    worst = max(
        targets,
        key=lambda item: (item["tpr_at_lowest_fpr"]["tpr"] or 0.0, -item["tpr_at_lowest_fpr"]["p_value"]),
    )
    point = worst["tpr_at_lowest_fpr"]

    def leaks(item: dict, level: float) -> bool:
        found = item["tpr_at_lowest_fpr"]
        return (found["tpr"] or 0.0) > 2 * (found["achieved_fpr"] or 0.0) and found["p_value"] < level

    return make_test(
        TEST_ID,
        point["tpr"] or 0.0,
        2 * (point["achieved_fpr"] or 0.0),
        passed=not any(leaks(item, cut) for item in targets),
        strict_passed=not any(leaks(item, 10 * cut) for item in targets),
        ci=point["ci"],
        source=SOURCE,
        fails_when=f"a target's TPR > 2 × FPR with p < {P_VALUE} / targets",
        meaning="TPR, at the lowest false-positive rate the shadow runs allow, of telling whether an isolated "
        "train row was in the generator's training data, replaying the platform's own fit (highest target).",
        runs=shadow["runs"],
    )


def sdv_fit_and_sample(
    build: Callable[[], Any], table_name: str
) -> Callable[[pd.DataFrame, int, int], pd.DataFrame]:
    """A replay function for an SDV synthesizer made by ``build()`` (the same class and settings)."""
    import contextlib
    import io
    import warnings

    def replay(rows: pd.DataFrame, sample_size: int, seed: int) -> pd.DataFrame:
        np.random.seed(seed % 2**32)
        model = build()
        with (
            contextlib.redirect_stderr(io.StringIO()),
            contextlib.redirect_stdout(io.StringIO()),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            model.fit({table_name: rows})
            sampled = model.sample(num_rows=sample_size)
        return sampled[table_name] if isinstance(sampled, dict) else sampled

    return replay


def attack_generator(generator: Any, train: pd.DataFrame, progress: Callable[[str, int], None]) -> dict:
    """The shadow attack for a generator product: replayed for SDV synthesizers fitted here, otherwise the
    reason it could not run. ``progress(stage, percent)`` reports each finished shadow fit."""
    from marketplace.generators.fitting import TABLE, build_synthesizer
    from marketplace.generators.models import GeneratorModel, Synthesizer

    budget = float(settings.SYNTHEX_SHADOW_BUDGET_SECONDS)
    if budget <= 0:
        return not_run(
            "The shadow attack is turned off on this instance (SYNTHEX_SHADOW_BUDGET_SECONDS = 0)."
        )
    if generator.kind != GeneratorModel.Kind.FITTED:
        return not_run(
            "The model was uploaded: the platform does not know how it was fitted, so it cannot replay the fit."
        )
    sdv = (Synthesizer.GAUSSIAN_COPULA, Synthesizer.CTGAN, Synthesizer.TVAE, Synthesizer.COPULA_GAN)
    if generator.synthesizer not in sdv:
        return not_run(
            f"{generator.synthesizer} is one of Synthex's own engines; its privacy is bounded by its ε budget "
            "and the replay is implemented for SDV synthesizers only."
        )

    def build() -> Any:
        return build_synthesizer(
            generator.synthesizer, generator.sdv_metadata, generator.parameters, list(generator.constraints)
        )

    return run_shadow_attack(
        sdv_fit_and_sample(build, TABLE),
        train,
        generator.sdv_metadata or None,
        seed=generator.holdout_seed or 0,
        budget_seconds=budget,
        progress=lambda done, runs: progress(f"shadow attack {done}/{runs}", 95),
    )
