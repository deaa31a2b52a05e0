"""Engine configuration: seed, sample bounds and every threshold used for grades and privacy tests."""

from __future__ import annotations

from dataclasses import dataclass, field

# Quality grade bands over the SDMetrics-style overall score (mean of column shapes and column pair trends).
QUALITY_GRADE_BANDS: tuple[tuple[str, float], ...] = (("A", 0.90), ("B", 0.80), ("C", 0.70), ("D", 0.60))
# Plausibility grade bands over (1 − synthetic share breaking any rule) / (1 − real holdout share breaking any).
PLAUSIBILITY_GRADE_BANDS: tuple[tuple[str, float], ...] = (("A", 0.95), ("B", 0.85), ("C", 0.70), ("D", 0.50))


@dataclass(frozen=True)
class EngineConfig:
    """How the engine samples and judges; the defaults are the documented ones (docs/engine.md).

    Row counts are rows; rates, shares, AUCs and risks are fractions in [0, 1].
    """

    seed: int = 0
    # Each input table above this many rows is replaced by a uniform sample of this size (stated in the output).
    max_rows: int = 200_000
    # The query side of nearest-neighbour searches (synthetic, holdout) is bounded by this many rows;
    # the reference side (train) is used whole up to max_rows.
    privacy_max_rows: int = 50_000
    # SDMetrics 0.32 QualityReport defaults: pairs whose real association is at or below these do not count.
    real_correlation_threshold: float = 0.5
    real_association_threshold: float = 0.3
    contingency_bins: int = 10
    # Rows used to fit the ML-efficacy and discriminator models (each side).
    learning_max_rows: int = 20_000
    # Anonymeter-style attacks: targets drawn from train and from holdout (each).
    attack_count: int = 1_000
    singling_out_columns: int = 3
    inference_max_columns: int = 20
    # Categories beyond this many per column share one code in the distance (only ever brings rows closer).
    distance_max_categories: int = 100
    n_jobs: int = 2
    quality_grade_bands: tuple[tuple[str, float], ...] = field(default=QUALITY_GRADE_BANDS)
    # Privacy thresholds (fail above); the strict ones decide between grade A and B.
    exact_copy_margin: float = 0.002
    exact_copy_relative_margin: float = 0.10
    dcr_share_threshold: float = 0.55
    dcr_share_strict: float = 0.53
    close_record_quantile: float = 0.02
    close_record_margin: float = 0.01
    mia_auc_threshold: float = 0.55
    mia_auc_strict: float = 0.53
    attack_risk_threshold: float = 0.10
    attack_risk_strict: float = 0.05
    # Plausibility rules (docs/engine.md#plausibility): a rule covers at least max(rule_min_support,
    # rule_min_support_share · train rows) rows and quotes no value seen in fewer rows.
    rule_min_support: int = 50
    rule_min_support_share: float = 0.01
    # A functional dependency reads groups of at least this many rows, covering this share of the rows.
    rule_group_min_rows: int = 20
    rule_min_coverage: float = 0.90
    # Broken in at most this share of covered train rows, and at most rule_lift × the rate independent
    # columns would break it at, with a binomial (Chernoff) bound below rule_significance.
    rule_max_violation: float = 0.02
    rule_lift: float = 0.1
    rule_significance: float = 1e-6
    # Numeric columns with at most this many distinct train values are also read as categories.
    rule_max_levels: int = 20
    # The holdout keeps a rule when its violation rate's interval (z = 3.29, 99.9%) meets train's.
    rule_validation_z: float = 3.29
    rule_max_rules: int = 60
    plausibility_grade_bands: tuple[tuple[str, float], ...] = field(default=PLAUSIBILITY_GRADE_BANDS)

    def __post_init__(self) -> None:
        if self.max_rows < 100 or self.privacy_max_rows < 100:
            raise ValueError("max_rows and privacy_max_rows must be at least 100")
        if self.attack_count < 10:
            raise ValueError("attack_count must be at least 10")
