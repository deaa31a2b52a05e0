"""The engine's entry point: one call from three tables to every quality and privacy figure."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import sklearn

from . import charts, composite, identifiers, learning, plausibility, privacy, quality, sdv_types
from .config import EngineConfig
from .errors import EngineError
from .schema import Column, bounded_sample, clean_table, resolve_columns

ENGINE = {"name": "synthex-engine", "version": "2.0.0"}
_DECIMALS = 6
_STAGE_RANGES = {
    "prepare": (0, 5),
    "quality": (5, 25),
    "ml_efficacy": (25, 40),
    "plausibility": (40, 44),
    "privacy": (44, 97),
    "charts": (97, 100),
}


@dataclass(frozen=True)
class Evaluation:
    """Every figure of one evaluation; ``to_dict`` gives the JSON-ready document (see docs/engine.md)."""

    quality: MappingProxyType
    privacy: MappingProxyType
    charts: MappingProxyType
    parameters: MappingProxyType
    engine: MappingProxyType
    plausibility: MappingProxyType

    @property
    def quality_score(self) -> float | None:
        return self.quality["score"]

    @property
    def quality_grade(self) -> str:
        return self.quality["grade"]

    @property
    def plausibility_grade(self) -> str:
        return self.plausibility["grade"]

    @property
    def privacy_grade(self) -> str:
        return self.privacy["grade"]

    @property
    def privacy_passed(self) -> bool:
        return self.privacy["passed"]

    def to_dict(self) -> dict:
        """A deep copy with only JSON types (floats rounded to 6 decimals, no NaN/inf: None instead)."""
        return {
            "quality": copy.deepcopy(dict(self.quality)),
            "privacy": copy.deepcopy(dict(self.privacy)),
            "plausibility": copy.deepcopy(dict(self.plausibility)),
            "charts": copy.deepcopy(dict(self.charts)),
            "parameters": copy.deepcopy(dict(self.parameters)),
            "engine": copy.deepcopy(dict(self.engine)),
        }


def plain_values(value: Any) -> Any:
    """``value`` as the certificate holds it: mappings with string keys, lists, Python bools, ints and floats
    (rounded to 6 decimals; NaN and infinities as None), other values as their text."""
    if isinstance(value, dict | MappingProxyType):
        return {str(key): plain_values(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [plain_values(item) for item in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return None if math.isnan(number) or math.isinf(number) else round(number, _DECIMALS) + 0.0
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _key_columns(columns: tuple[Column, ...], metadata: dict | None) -> tuple[str, ...]:
    keys = [c.name for c in columns if c.sdtype == "id"]
    if metadata:
        declared = [metadata.get("primary_key")] + list(metadata.get("alternate_keys") or [])
        keys += [k for k in declared if isinstance(k, str) and k not in keys]
    return tuple(keys)


def _check_inputs(
    synthetic: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame | None, target: str | None
) -> None:
    for label, table in (("synthetic", synthetic), ("train", train), ("holdout", holdout)):
        if table is None:
            continue
        if not isinstance(table, pd.DataFrame):
            raise EngineError(f"The {label} table must be a pandas DataFrame.")
        if len(table) < 2 or len(table.columns) == 0:
            raise EngineError(f"The {label} table has fewer than 2 rows or no columns.")
    missing = [str(c) for c in train.columns if c not in synthetic.columns]
    if missing:
        raise EngineError(f"The synthetic table lacks the train columns: {', '.join(missing)}.")
    extra = [str(c) for c in synthetic.columns if c not in train.columns]
    if extra:
        raise EngineError(
            f"The synthetic table has columns the train table lacks: {', '.join(extra)}. Every column sold "
            "is certified against the reference rows; add them to the reference data or drop them."
        )
    if holdout is not None:
        missing = [str(c) for c in train.columns if c not in holdout.columns]
        if missing:
            raise EngineError(f"The holdout table lacks the train columns: {', '.join(missing)}.")
    if target is not None and target not in train.columns:
        raise EngineError(f"The target column {target!r} is not in the train table.")


def _sdmetrics_thresholds(config: EngineConfig) -> dict:
    return {
        "real_correlation_threshold": config.real_correlation_threshold,
        "real_association_threshold": config.real_association_threshold,
        "pair_threshold_source": (
            "SDMetrics 0.32 QualityReport defaults (DEFAULT_REAL_CORRELATION_THRESHOLD, "
            "DEFAULT_REAL_ASSOCIATION_THRESHOLD): weaker real pairs do not count in sdmetrics_score."
        ),
    }


def _comparable_columns(
    columns: tuple[Column, ...], train: pd.DataFrame, metadata: dict | None
) -> tuple[Column, ...]:
    """The column types of the SDMetrics-comparable figures: the metadata's, or SDV 2.0's detection."""
    if metadata is not None:
        return columns
    detected = sdv_types.detect_sdtypes(train)
    return tuple(Column(name=c.name, sdtype=detected[c.name]) for c in columns)


def _sdmetrics(
    train: pd.DataFrame, other: pd.DataFrame, columns: tuple[Column, ...], config: EngineConfig
) -> dict:
    return quality.sdmetrics_report(
        clean_table(train, columns),
        clean_table(other, columns),
        columns,
        correlation_threshold=config.real_correlation_threshold,
        association_threshold=config.real_association_threshold,
        bins=config.contingency_bins,
    )


def _reference(sdmetrics: dict | None, section: dict) -> dict:
    """The holdout's figure for each quality key (``quality.reference``, same keys)."""
    parts = section["fidelity"]["parts"]
    efficacy = section.get("ml_efficacy")
    return {
        "source": section["fidelity"]["reference_source"],
        "rows": section["fidelity"]["rows"],
        "score": 1.0,
        "sdmetrics_score": sdmetrics["score"] if sdmetrics else None,
        "column_shapes": sdmetrics["column_shapes"]["score"] if sdmetrics else None,
        "column_pair_trends": sdmetrics["column_pair_trends"]["score"] if sdmetrics else None,
        "discriminator_auc": section["discriminator_auc"]["reference_auc"],
        "ml_efficacy": efficacy.get("real_score") if efficacy else None,
        "fidelity": {name: part["reference"] for name, part in parts.items()},
        "diversity": {name: item["reference"] for name, item in section["diversity"].items()},
        "drifted_columns": [],
    }


def _check_target(columns: tuple[Column, ...], target: str | None) -> None:
    """EngineError when the target column is neither numerical nor categorical (ml_efficacy needs one)."""
    if target is not None and next(c for c in columns if c.name == target).sdtype not in (
        "numerical",
        "datetime",
        "categorical",
        "boolean",
        "ordinal",
    ):
        raise EngineError(f"The target column {target!r} is neither numerical nor categorical.")


def _ml_efficacy(
    synthetic_clean: pd.DataFrame,
    train_clean: pd.DataFrame,
    holdout_clean: pd.DataFrame | None,
    columns: tuple[Column, ...],
    target: str | None,
    config: EngineConfig,
    learning_seed: int,
) -> dict | None:
    """The ml_efficacy figures (None without a target): models fitted on synthetic and on real rows, tested
    on the holdout or, without one, on 20% of train (seeded by ``learning_seed``) kept out of fitting."""
    if target is None:
        return None
    if holdout_clean is not None:
        fit_rows, test_rows = train_clean, holdout_clean
    else:
        order = np.random.default_rng(learning_seed).permutation(len(train_clean))
        cut = int(len(order) * 0.8)
        fit_rows, test_rows = (
            train_clean.iloc[np.sort(order[:cut])],
            train_clean.iloc[np.sort(order[cut:])],
        )
    return learning.ml_efficacy(
        synthetic_clean, fit_rows, test_rows, columns, target, config.learning_max_rows, learning_seed
    ) | {"test_rows_source": "holdout" if holdout_clean is not None else "20% of train, not used for fitting"}


def _add_identifier_copies(
    privacy_section: dict,
    synthetic_used: pd.DataFrame,
    train_used: pd.DataFrame,
    holdout_used: pd.DataFrame | None,
    columns: tuple[Column, ...],
    metadata: dict | None,
    config: EngineConfig,
    seed: np.random.SeedSequence,
) -> None:
    """Add the identifier-copies test (on the raw tables) to the privacy section, then grade the section."""
    privacy_section["identifier_copies"] = identifiers.assess(
        synthetic_used, train_used, holdout_used, columns, np.random.default_rng(seed), metadata
    )
    privacy_section["tests"].append(identifiers.test(privacy_section["identifier_copies"], config))
    privacy_section["grade"], privacy_section["passed"] = privacy.grade(privacy_section, config)


def evaluate(
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    *,
    target: str | None = None,
    metadata: dict | None = None,
    config: EngineConfig = EngineConfig(),
    progress: Callable[[str, int], None] | None = None,
    rules: dict | None = None,
) -> Evaluation:
    """Certify ``synthetic`` against the real ``train`` rows it was made from and, when given, real
    ``holdout`` rows it never saw.

    Guarantees: the same inputs and ``config.seed`` give an identical ``to_dict()``; every table above
    ``config.max_rows`` rows is replaced by a uniform sample (stated in ``parameters``); the output holds
    aggregates only, never a reference row. Raises EngineError for inputs it cannot certify.
    ``rules`` (``{"dismissed": [{"id", "reason"}], "declared": [statement, ...]}``) adjusts the plausibility
    rules (docs/engine.md#plausibility).
    ``progress(stage, percent)`` is called with stages prepare, quality, ml_efficacy, plausibility, privacy,
    charts and an overall percent from 0 to 100.
    """
    _check_inputs(synthetic, train, holdout, target)

    def report(stage: str, fraction: float) -> None:
        if progress is not None:
            low, high = _STAGE_RANGES[stage]
            progress(stage, int(round(low + (high - low) * fraction)))

    report("prepare", 0)
    seeds = np.random.SeedSequence(config.seed).spawn(8)
    columns = resolve_columns(train, metadata)
    _check_target(columns, target)
    inputs = {
        "synthetic": len(synthetic),
        "train": len(train),
        "holdout": None if holdout is None else len(holdout),
    }
    synthetic_used, synthetic_sampled = bounded_sample(
        synthetic, config.max_rows, np.random.default_rng(seeds[0])
    )
    train_used, train_sampled = bounded_sample(train, config.max_rows, np.random.default_rng(seeds[1]))
    holdout_used, holdout_sampled = (
        bounded_sample(holdout, config.max_rows, np.random.default_rng(seeds[2]))
        if holdout is not None
        else (None, False)
    )
    synthetic_clean = clean_table(synthetic_used, columns)
    train_clean = clean_table(train_used, columns)
    holdout_clean = clean_table(holdout_used, columns) if holdout_used is not None else None
    if len(train_clean.columns) == 0:
        raise EngineError("No column of the train table is numerical, datetime, categorical or boolean.")
    report("prepare", 1)

    comparable = _comparable_columns(columns, train_used, metadata)
    sdmetrics = _sdmetrics(train_used, synthetic_used, comparable, config)
    sdmetrics_reference = (
        _sdmetrics(train_used, holdout_used, comparable, config) if holdout_used is not None else None
    )
    report("quality", 0.8)
    quality_section: dict = {
        "sdmetrics_score": sdmetrics["score"],
        "column_shapes": sdmetrics["column_shapes"],
        "column_pair_trends": sdmetrics["column_pair_trends"],
        "sdmetrics_sdtypes": {str(c.name): c.sdtype for c in comparable},
        "coverage": quality.coverage(train_clean, synthetic_clean, columns),
        "validity": quality.validity(
            train_clean,
            synthetic_clean,
            train_used,
            synthetic_used,
            columns,
            _key_columns(columns, metadata),
            metadata,
        ),
    }
    report("quality", 1)
    learning_seed = int(np.random.default_rng(seeds[3]).integers(2**31 - 1))
    quality_section["ml_efficacy"] = _ml_efficacy(
        synthetic_clean, train_clean, holdout_clean, columns, target, config, learning_seed
    )
    report("ml_efficacy", 0.5)
    assessment = composite.assess(
        synthetic_clean,
        train_clean,
        holdout_clean,
        columns,
        quality_section["ml_efficacy"],
        config,
        np.random.default_rng(seeds[6]),
        learning_seed,
    )
    quality_section.update(
        composite.section(assessment, config)
        | {
            "discriminator_auc": {
                key: assessment["discriminator"][key]
                for key in ("auc", "reference_auc", "skill", "rows_each", "folds")
            }
        }
    )
    quality_section.update(
        reference=_reference(sdmetrics_reference, quality_section),
        thresholds=composite.thresholds(config) | _sdmetrics_thresholds(config),
    )
    report("ml_efficacy", 1)
    plausibility_section = plausibility.assess(
        synthetic_clean, train_clean, holdout_clean, columns, config, np.random.default_rng(seeds[5]), rules
    )
    report("plausibility", 1)

    privacy_section, dcr_chart, privacy_sizes = privacy.assess(
        synthetic_clean,
        train_clean,
        holdout_clean,
        columns,
        config,
        np.random.default_rng(seeds[4]),
        lambda percent: report("privacy", percent / 100),
    )
    _add_identifier_copies(
        privacy_section, synthetic_used, train_used, holdout_used, columns, metadata, config, seeds[7]
    )
    chart_section = charts.build(train_clean, synthetic_clean, columns) | {"dcr": dcr_chart}
    report("charts", 1)
    parameters = {
        "seed": config.seed,
        "rows": {
            "input": inputs,
            "used": {
                "synthetic": len(synthetic_used),
                "train": len(train_used),
                "holdout": None if holdout_used is None else len(holdout_used),
            },
            "sampled": {"synthetic": synthetic_sampled, "train": train_sampled, "holdout": holdout_sampled},
            "privacy": privacy_sizes,
        },
        "columns": [{"name": str(c.name), "sdtype": c.sdtype} for c in columns],
        "target": target,
        "config": asdict(config),
        "libraries": {"numpy": np.__version__, "pandas": pd.__version__, "sklearn": sklearn.__version__},
    }
    return Evaluation(
        quality=MappingProxyType(plain_values(quality_section)),
        privacy=MappingProxyType(plain_values(privacy_section)),
        charts=MappingProxyType(plain_values(chart_section)),
        plausibility=MappingProxyType(plain_values(plausibility_section)),
        parameters=MappingProxyType(plain_values(parameters)),
        engine=MappingProxyType(dict(ENGINE)),
    )
