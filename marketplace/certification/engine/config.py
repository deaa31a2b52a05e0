"""Engine configuration: seed, sample bounds and every threshold used for grades and privacy tests."""

from __future__ import annotations

from dataclasses import dataclass, field

# Quality v2: weights of the part skills in the composite, and bands over the composite (docs/engine.md).
COMPOSITE_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("column_shapes", 1.0),
    ("pair_trends", 1.0),
    ("three_way", 1.0),
    ("discriminator", 1.0),
    ("ml_efficacy", 1.0),
    ("coverage", 1.0),
)
COMPOSITE_GRADE_BANDS: tuple[tuple[str, float], ...] = (("A", 0.90), ("B", 0.70), ("C", 0.50), ("D", 0.25))
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
    # SDMetrics 0.32 QualityReport defaults: pairs whose real association is at or below these do not count
    # in quality.sdmetrics_score.
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
    # Quality v2 (docs/engine.md#quality-grade): equal-size comparisons of synthetic and holdout rows with
    # train rows, binned like mostlyai-qa (10 levels per column), every pair, up to 1,000 column triples.
    fidelity_max_rows: int = 10_000
    fidelity_bins: int = 10
    fidelity_max_pairs: int = 5_000
    fidelity_max_triples: int = 1_000
    # A part counts only when fresh real data beats its trivial baseline by at least this much.
    minimum_skill_gap: float = 0.01
    # The discriminator sees at most this many rows per side: fitted on one half and scored on the other from
    # discriminator_split_rows pooled rows up, cross-fitted on 5 folds below (small tables score every row).
    discriminator_max_rows: int = 3_000
    discriminator_split_rows: int = 4_000
    # Coverage / precision: k-nearest-neighbour balls of Naeem et al. 2020 (k = 5), on at most this many rows.
    coverage_neighbours: int = 5
    diversity_max_rows: int = 2_000
    # Drift: Cohen's small effect (d = 0.2; log odds 0.2·π/√3, Chinn 2000) beyond the holdout's own, tested
    # with Benjamini-Hochberg control of the false-discovery rate.
    drift_small_effect: float = 0.2
    drift_small_log_odds: float = 0.363
    drift_false_discovery_rate: float = 0.05
    # Mode collapse: the mode_collapse_rows most frequent rows hold at least this share of the rows more
    # than in fresh real data (and 3 standard errors more).
    mode_collapse_rows: int = 10
    mode_collapse_margin: float = 0.05
    composite_weights: tuple[tuple[str, float], ...] = field(default=COMPOSITE_WEIGHTS)
    composite_grade_bands: tuple[tuple[str, float], ...] = field(default=COMPOSITE_GRADE_BANDS)
    # Privacy thresholds (fail above); the strict ones decide between grade A and B.
    exact_copy_margin: float = 0.002
    exact_copy_relative_margin: float = 0.10
    dcr_share_threshold: float = 0.55
    dcr_share_strict: float = 0.53
    close_record_quantile: float = 0.02
    close_record_margin: float = 0.01
    mia_auc_threshold: float = 0.55
    mia_auc_strict: float = 0.53
    # Anonymeter-style attacks fail when the lower end of the excess success a − c over the control exceeds this.
    attack_risk_threshold: float = 0.05
    attack_risk_strict: float = 0.02
    # Privacy v2 (docs/engine.md#privacy). Baseline integrity: holdout→train overlap beyond train's own
    # duplicates by more than max(margin, z standard errors) is refused; near = within the given quantile
    # of train-to-other-train distances, measured on this many sampled train rows.
    baseline_margin: float = 0.01
    # A holdout below max(holdout_min_rows, holdout_min_share × train rows) is refused (baseline.py).
    holdout_min_rows: int = 30
    holdout_min_share: float = 0.10
    baseline_z: float = 4.0
    baseline_near_quantile: float = 0.05
    baseline_train_sample: int = 2_000
    # Synthetic-against-holdout comparisons fail past max(margin, z standard errors of the difference).
    comparison_z: float = 3.0
    copy_margin: float = 0.002
    quasi_copy_margin: float = 0.02
    unique_quasi_copy_margin: float = 0.005
    # Quasi-copies: numbers agree when in the same bin of this many train standard deviations.
    quasi_tolerance: float = 0.02
    # Too close to holdout: DCR share or the distance attack's AUC below these means real holdout rows.
    dcr_share_low: float = 0.45
    mia_auc_low: float = 0.45
    # Membership attacks: members sampled from train; vulnerable = the isolated share of rows (at least
    # vulnerable_min_rows holdout rows); a TPR test fails at p < mia_p_value with TPR > mia_tpr_ratio × FPR.
    membership_max_members: int = 10_000
    vulnerable_share: float = 0.10
    vulnerable_min_rows: int = 100
    mia_p_value: float = 0.001
    mia_p_value_strict: float = 0.01
    # closest_records: the 1/(n + 1) chance is a bound (honest generators are rarely nearer to train than
    # fresh real rows are), so its count is tested at a wider level than the membership TPRs.
    closest_p_value: float = 0.01
    closest_p_value_strict: float = 0.05
    mia_tpr_ratio: float = 2.0
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
    # Rules are discovered and validated on seeded uniform samples of at most this many rows of each table
    # (violation rates on synthetic rows use every row).
    rule_max_rows: int = 50_000
    rule_max_cells: int = 1_500_000
    plausibility_grade_bands: tuple[tuple[str, float], ...] = field(default=PLAUSIBILITY_GRADE_BANDS)

    def __post_init__(self) -> None:
        if self.max_rows < 100 or self.privacy_max_rows < 100:
            raise ValueError("max_rows and privacy_max_rows must be at least 100")
        if self.attack_count < 10:
            raise ValueError("attack_count must be at least 10")
