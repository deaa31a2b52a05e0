"""The privacy tests of certificate v2: each with a versioned id, its threshold, source and interval.

A test is ``{id, name, value, threshold, passed, strict_passed, ci, source, fails_when, meaning}`` (plus
``threshold_low`` for two-sided tests); ``privacy.passed`` needs every ``passed``, grade A every
``strict_passed``. Thresholds come from the holdout (what real rows the generator never saw score) plus a
noise allowance of ``config.comparison_z`` standard errors, never from the cases the tests were tried on.
"""

from __future__ import annotations

import math

from scipy.stats import norm

from .config import EngineConfig
from .membership import FPRS
from .stats import wilson_interval

SYNTHEX = "Synthex, docs/engine.md#privacy"


def make_test(
    test_id: str,
    value: float,
    threshold: float,
    *,
    passed: bool,
    strict_passed: bool,
    ci: list | None,
    source: str,
    fails_when: str,
    meaning: str,
    **extra: object,
) -> dict:
    """One test entry (``name`` is the id without its version, as in certificate v1)."""
    return {
        "id": test_id,
        "name": test_id.split("/")[0],
        "value": value,
        "threshold": threshold,
        "passed": bool(passed),
        "strict_passed": bool(strict_passed and passed),
        "ci": ci,
        "source": source,
        "fails_when": fails_when,
        "meaning": meaning,
        **extra,
    }


def _comparison_test(
    test_id: str,
    figures: dict,
    margin: float,
    config: EngineConfig,
    source: str,
    meaning: str,
    *,
    paired_only: bool = False,
) -> dict:
    """Synthetic share against the baseline's share (distinct rows), and the paired comparison of the same
    synthetic rows against equal-size train and holdout samples; one-sided, either criterion fails."""
    error = (figures["difference_ci"][1] - figures["difference_ci"][0]) / (2 * 1.959964)
    allowance = max(margin, config.comparison_z * error)
    synthetic, holdout = figures["synthetic_rate"], figures["holdout_rate"]
    pair = figures["paired"]
    paired_allowance = max(config.copy_margin, config.comparison_z * pair["standard_error"])
    rows = figures["synthetic_distinct_rows"]
    return make_test(
        test_id,
        synthetic,
        holdout + allowance,
        passed=(paired_only or synthetic <= holdout + allowance) and pair["difference"] <= paired_allowance,
        strict_passed=(paired_only or synthetic <= holdout + allowance / 2)
        and pair["difference"] <= paired_allowance / 2,
        ci=list(wilson_interval(round(synthetic * rows), rows)),
        source=source,
        fails_when=f"value > baseline share + max({margin}, {config.comparison_z} standard errors), or the "
        f"paired excess (train-only minus holdout-only matches) > max({config.copy_margin}, "
        f"{config.comparison_z} standard errors)",
        meaning=meaning,
        holdout_value=holdout,
        paired_excess=pair["difference"],
        paired_threshold=paired_allowance,
    )


def matching_tests(result: dict, config: EngineConfig) -> list[dict]:
    """Exact copies, unique exact matches, quasi-copies and copies of holdout rows."""
    copies = result["holdout_copies"]
    allowance = max(config.copy_margin, config.comparison_z * copies["standard_error"])
    difference = copies["difference"]
    tests = [
        make_test(
            "holdout_copies/v1",
            difference,
            allowance,
            passed=difference <= allowance,
            strict_passed=difference <= allowance / 2,
            ci=[difference - 1.96 * copies["standard_error"], difference + 1.96 * copies["standard_error"]],
            source=f"{SYNTHEX}; paired (McNemar) comparison",
            fails_when=f"value > max({config.copy_margin}, {config.comparison_z} standard errors)",
            meaning="Share of distinct synthetic rows equal to a real holdout row minus the share equal to a "
            "train row (train and holdout at equal size). The generator never saw the holdout: real rows "
            "passed off as synthetic match it more.",
        ),
        _comparison_test(
            "exact_copies/v2",
            result["exact_copies"],
            config.copy_margin,
            config,
            SYNTHEX,
            "Share of distinct synthetic rows that are exact copies of a train row, against the same share "
            "of distinct holdout rows (natural duplicates), compared at equal size.",
            paired_only=True,
        ),
        _comparison_test(
            "unique_exact_match/v1",
            result["unique_exact_matches"],
            config.copy_margin,
            config,
            "NIST CRC SDNist unique exact matches (sdnist.report.score.unique_exact_matches), against the holdout",
            "Share of distinct synthetic rows equal to a train row that is unique in train ∪ holdout; a "
            "holdout row counts when it equals a train-unique row and no other holdout row. Natural "
            "duplicates cannot hide copies of unique people.",
        ),
    ]
    tests.append(_location_test(result["copy_location"], config))
    quasi = result["quasi_copies"]
    if "one" in quasi:
        tests.append(
            _comparison_test(
                "quasi_copies/v1",
                quasi["one"]["any"],
                config.quasi_copy_margin,
                config,
                SYNTHEX,
                "Share of distinct synthetic rows equal to a train row on every column but one (numbers "
                f"within {config.quasi_tolerance} standard deviations), against the holdout's share: changing "
                "one value does not hide a copy.",
                paired_only=True,
            )
        )
    for level, label in (("one", "but one"), ("two", "but two")):
        if level in quasi:
            tests.append(
                _comparison_test(
                    "unique_quasi_copies/v1" if level == "one" else "unique_quasi_copies_two/v1",
                    quasi[level]["unique"],
                    config.unique_quasi_copy_margin,
                    config,
                    f"{SYNTHEX}; quasi-copies restricted as SDNist's unique exact matches",
                    f"Share of distinct synthetic rows equal, on every column {label}, to a train row whose "
                    "remaining values are unique in train ∪ holdout, against the holdout's share.",
                )
            )
    return tests


def _location_test(levels: dict, config: EngineConfig) -> dict:
    """The copy-location test on every level at once (pooled, exact, all but one, all but two): each level
    alone keeps copies of unique rows from drowning in a generator's many look-alikes at another level."""
    # Bonferroni over the levels: each look keeps 1/looks of the single-look error rate of comparison_z.
    threshold = round(float(norm.isf(norm.sf(config.comparison_z) / len(levels))), 2)
    allowance = config.copy_margin * levels["any"]["synthetic_distinct_rows"]

    def fails(figures: dict, z: float, rows: float) -> bool:
        return figures["z"] > z and figures["excess_rows"] > rows

    worst = max(levels, key=lambda name: levels[name]["z"])
    figures = levels[worst]
    return make_test(
        "copy_location/v2",
        figures["z"],
        threshold,
        passed=not any(fails(level, threshold, allowance) for level in levels.values()),
        strict_passed=not any(fails(level, 2.0, allowance / 2) for level in levels.values()),
        ci=[figures["z"] - 1.96, figures["z"] + 1.96],
        source=f"{SYNTHEX}; exchangeability of a random train/holdout split (hypergeometric)",
        fails_when=f"on any level (pooled, exact, all but one, all but two columns, numbers binned or exact): "
        f"z > {threshold:g} and "
        f"the excess Σ(a/m − f)/(1 − f) > {config.copy_margin} × distinct synthetic rows",
        meaning="Standardised excess of synthetic rows whose real twins (exact, else equal on all but one or "
        "two columns) live in train rather than in the holdout, beyond the split's own share; natural "
        "duplicates cancel out, copies of rare train rows weigh most. The value is the highest level's.",
        excess=figures["excess"],
        excess_rows=figures["excess_rows"],
        level=worst,
        levels={
            name: {"z": level["z"], "excess_rows": level["excess_rows"]} for name, level in levels.items()
        },
    )


def distance_tests(
    result: dict, equal_rows: int, synthetic_rows: int, holdout_rows: int, config: EngineConfig
) -> list[dict]:
    """DCR share (both sides) and close records, on distinct synthetic rows."""
    share = result["dcr_share"]
    noise = 4.0 * math.sqrt(0.25 / max(equal_rows, 1))
    high = max(config.dcr_share_threshold, 0.5 + noise)
    low = min(config.dcr_share_low, 0.5 - noise)
    close = result["close_records"]
    close_noise = config.comparison_z * math.sqrt(
        close["holdout_rate"]
        * (1 - close["holdout_rate"])
        * (1 / max(synthetic_rows, 1) + 1 / max(holdout_rows, 1))
    )
    close_allowance = max(config.close_record_margin, close_noise)
    pair = close["paired"]
    paired_allowance = max(config.copy_margin, config.comparison_z * pair["standard_error"])
    return [
        make_test(
            "dcr_share/v2",
            share,
            high,
            passed=low <= share <= high,
            strict_passed=max(config.dcr_share_strict, 0.5 + noise / 2) >= share >= 0.5 - noise,
            ci=result["dcr_share_ci"],
            source=f"{SYNTHEX}; DCR share at equal train/holdout size (SDMetrics DCROverfittingProtection idea)",
            fails_when="value > threshold or value < threshold_low (noise: 4·√(0.25/n))",
            meaning="Share of distinct synthetic rows closer to a train row than to a holdout row, train and "
            "holdout at equal size; an honest generator scores about 0.5, copies of train more, real holdout "
            "rows less.",
            threshold_low=low,
        ),
        make_test(
            "close_records/v2",
            close["synthetic_rate"],
            close["holdout_rate"] + close_allowance,
            passed=close["synthetic_rate"] <= close["holdout_rate"] + close_allowance
            or pair["difference"] <= paired_allowance,
            strict_passed=close["synthetic_rate"] <= close["holdout_rate"] + close_allowance / 2
            or pair["difference"] <= paired_allowance / 2,
            ci=list(wilson_interval(round(close["synthetic_rate"] * synthetic_rows), synthetic_rows)),
            source=SYNTHEX,
            fails_when=f"value > holdout share + max({config.close_record_margin}, {config.comparison_z} standard "
            f"errors) and the paired excess (within the distance of an equal-size train sample only, minus of "
            f"the holdout only) > max({config.copy_margin}, {config.comparison_z} standard errors)",
            meaning="Share of distinct synthetic rows nearer to train than the closest 2% of holdout rows are "
            "(near copies, such as lightly perturbed train rows); the paired excess keeps a generator that "
            "favours common rows, near train and holdout alike, from failing.",
            holdout_value=close["holdout_rate"],
            paired_excess=pair["difference"],
            paired_threshold=paired_allowance,
        ),
        _closest_test(result["closest_records"], config),
    ]


def _closest_test(closest: dict, config: EngineConfig) -> dict:
    allowance = config.copy_margin * closest["synthetic_rows"]
    count, p_value = closest["count"], closest["p_value"]
    return make_test(
        "closest_records/v1",
        closest["rate"],
        allowance / max(closest["synthetic_rows"], 1),
        passed=not (p_value < config.closest_p_value and count > allowance),
        strict_passed=not (p_value < config.closest_p_value_strict and count > allowance / 2),
        ci=list(wilson_interval(count, closest["synthetic_rows"])),
        source=f"{SYNTHEX}; rank of a fresh row among n exchangeable baseline distances",
        fails_when=f"more distinct synthetic rows than Binomial(rows, 1/(n + 1)) allows (p < {config.closest_p_value}) "
        f"and more than {config.copy_margin} × distinct synthetic rows",
        meaning="Share of distinct synthetic rows nearer to a train row than any of n real rows the generator "
        "never saw is (holdout rows, and train rows to the rest of train): lightly perturbed copies of "
        "isolated people land there, however few they are.",
        p_value=p_value,
        count=count,
        expected=closest["expected"],
    )


def membership_tests(membership: dict, config: EngineConfig) -> list[dict]:
    """AUC and TPR-at-low-FPR tests of both attacks on all and on vulnerable records."""
    tests = []
    for attack in ("distance", "density"):
        for population in ("all", "vulnerable"):
            figures = membership[f"{attack}_{population}"]
            auc, (low, high) = figures["auc"], figures["auc_ci"]
            two_sided = attack == "distance" and population == "all"
            passed = low <= config.mia_auc_threshold and (not two_sided or high >= config.mia_auc_low)
            name = "membership_inference" if two_sided else f"membership_{attack}_{population}_auc"
            tests.append(
                make_test(
                    f"{name}/v2",
                    auc,
                    config.mia_auc_threshold,
                    passed=passed,
                    strict_passed=low <= config.mia_auc_strict,
                    ci=[low, high],
                    source=membership["source"],
                    fails_when="ci low > threshold" + (" or ci high < threshold_low" if two_sided else ""),
                    meaning=f"AUC of the {attack} attack telling train rows from holdout rows "
                    f"({'all' if population == 'all' else 'the most isolated'} records); 0.5 is a coin"
                    + ("; far below 0.5 the synthetic rows are real holdout rows." if two_sided else "."),
                    **({"threshold_low": config.mia_auc_low} if two_sided else {}),
                )
            )
            for fpr, point in zip(FPRS, figures["tpr_at_fpr"], strict=True):
                tests.append(_tpr_test(attack, population, fpr, point, membership["source"], config))
    return tests


def _tpr_test(
    attack: str, population: str, fpr: float, point: dict, source: str, config: EngineConfig
) -> dict:
    label = f"{fpr * 100:g}pct".replace(".", "_")
    tpr, achieved = point["tpr"], point["achieved_fpr"]
    if tpr is None:
        tpr, achieved = 0.0, fpr
    threshold = config.mia_tpr_ratio * achieved
    beats = tpr > threshold
    return make_test(
        f"membership_{attack}_{population}_tpr_at_{label}/v1",
        tpr,
        threshold,
        passed=not (beats and point["p_value"] < config.mia_p_value),
        strict_passed=not (beats and point["p_value"] < config.mia_p_value_strict),
        ci=point["ci"],
        source=source,
        fails_when=f"value > {config.mia_tpr_ratio:g} × achieved FPR with p < {config.mia_p_value}",
        meaning=f"Share of train rows the {attack} attack flags at a false-positive rate of {fpr:.1%} on "
        f"holdout rows ({population} records); p-value under exchangeable members and non-members.",
        achieved_fpr=achieved,
        p_value=point["p_value"],
    )


def attack_tests(result: dict, config: EngineConfig) -> list[dict]:
    """Anonymeter's singling out, linkability and attribute inference, read as the excess a − c."""
    tests = []
    for name, label in (
        ("singling_out", "singling out one train row with predicates learnt from the synthetic data"),
        ("linkability", "linking two halves of a train row through the synthetic data"),
        ("attribute_inference", "guessing a train row's attribute from its other attributes"),
    ):
        risk = result[name]
        low = risk["excess_ci"][0]
        tests.append(
            make_test(
                f"{name}/v2",
                risk["excess"],
                config.attack_risk_threshold,
                passed=low <= config.attack_risk_threshold,
                strict_passed=low <= config.attack_risk_strict,
                ci=risk["excess_ci"],
                source="Anonymeter (Giomi et al., PoPETs 2023), re-implemented; excess a − c instead of "
                "(a − c)/(1 − c), which blows up as the control's success c → 1",
                fails_when="ci low > threshold",
                meaning=f"Excess success of {label} over the same attack on holdout rows (Anonymeter's "
                "risk is reported beside it under the attack's name).",
            )
        )
    return tests
