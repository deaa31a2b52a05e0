"""Certify a set of related tables: every table on its own, the relations between them, and entities.

    from marketplace.certification.engine.relational import evaluate_relational, split_by_entity
    train, holdout = split_by_entity(real_tables, metadata, holdout_share=0.2, seed=0)
    result = evaluate_relational(synthetic_tables, train, holdout, metadata)
    document = result.to_dict()   # tables.<name>.{quality, plausibility, privacy, ...}, relational, privacy, ...

The single-table ``evaluate`` runs on each table (its holdout is the holdout set's table when the table
descends from the entity table, otherwise none: lookup tables are the same in train and holdout); the
relational figures (``relational_quality``) and entity-level privacy (``entity_privacy``) come beside it.
See docs/engine.md#relational-sets.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from . import entity_privacy, relational_quality
from .config import EngineConfig
from .distance import fit_encoding, nearest
from .errors import EngineError
from .evaluate import ENGINE, Evaluation, evaluate
from .relational_schema import (
    RelationalError,
    RelationalSchema,
    entity_ids,
    entity_table,
    parse_metadata,
    split_by_entity,
    validate_tables,
)

__all__ = ["RelationalError", "RelationalEvaluation", "evaluate_relational", "split_by_entity"]

_GRADES = ("A", "B", "C", "D", "F")


@dataclass(frozen=True)
class RelationalEvaluation:
    """Every figure of one relational evaluation; ``to_dict`` gives the JSON-ready document."""

    tables: MappingProxyType
    relational: MappingProxyType
    quality: MappingProxyType
    plausibility: MappingProxyType
    privacy: MappingProxyType
    parameters: MappingProxyType
    engine: MappingProxyType

    @property
    def quality_grade(self) -> str:
        return self.quality["grade"]

    @property
    def privacy_passed(self) -> bool:
        return self.privacy["passed"]

    def to_dict(self) -> dict:
        """A deep copy with only JSON types (floats rounded to 6 decimals, no NaN/inf)."""
        return {
            "tables": copy.deepcopy(dict(self.tables)),
            "relational": copy.deepcopy(dict(self.relational)),
            "quality": copy.deepcopy(dict(self.quality)),
            "plausibility": copy.deepcopy(dict(self.plausibility)),
            "privacy": copy.deepcopy(dict(self.privacy)),
            "parameters": copy.deepcopy(dict(self.parameters)),
            "engine": copy.deepcopy(dict(self.engine)),
        }


def _plain(value: Any) -> Any:
    """JSON types only: floats rounded to 6 decimals, NaN and inf as None (as ``Evaluation.to_dict``)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(item) for item in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return None if math.isnan(number) or math.isinf(number) else round(number, 6) + 0.0
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _worst(grades: list[str | None]) -> str | None:
    letters = [g for g in grades if g in _GRADES]
    return max(letters, key=_GRADES.index) if letters else None


def _evaluate_tables(
    synthetic: Mapping[str, pd.DataFrame],
    train: Mapping[str, pd.DataFrame],
    holdout: Mapping[str, pd.DataFrame] | None,
    split_tables: set[str],
    schema: RelationalSchema,
    options: dict,
    report: Callable[[str, float], None],
) -> dict[str, Evaluation]:
    results: dict[str, Evaluation] = {}
    for index, name in enumerate(schema.order):
        table_holdout = holdout[name] if holdout is not None and name in split_tables else None

        def table_progress(stage: str, percent: int, name: str = name, index: int = index) -> None:
            report(f"{name}: {stage}"[:40], (index + percent / 100) / len(schema.order))

        try:
            results[name] = evaluate(
                synthetic[name],
                train[name],
                table_holdout,
                target=(options["targets"] or {}).get(name),
                metadata=schema.table_metadata(name),
                config=options["config"],
                progress=table_progress,
                rules=(options["rules"] or {}).get(name),
            )
        except RelationalError:
            raise
        except EngineError as error:
            raise EngineError(f"Table {name!r}: {error}") from error
    return results


def _summaries(
    results: dict[str, Evaluation], relational: dict, entity_level: dict, split_tables: set[str]
) -> tuple[dict, dict, dict]:
    quality = {
        "grade": _worst([r.quality_grade for r in results.values()] + [relational["grade"]]),
        "score": min(
            [r.quality_score for r in results.values() if r.quality_score is not None]
            + ([relational["score"]] if relational["score"] is not None else []),
            default=None,
        ),
        "tables": {name: {"grade": r.quality_grade, "score": r.quality_score} for name, r in results.items()},
        "relational": {"grade": relational["grade"], "score": relational["score"]},
        "rule": "the worst grade (and lowest score) of the tables and of the relational figures",
    }
    plausibility = {
        "grade": _worst([r.plausibility_grade for r in results.values()]),
        "tables": {name: {"grade": r.plausibility_grade} for name, r in results.items()},
    }
    # Lookup tables (not descending from the entity table: plans, airports) hold no person's rows and are
    # the same in train and holdout; their figures are shown but do not decide the verdict.
    judged = {name: r for name, r in results.items() if name in split_tables}
    tables_passed = all(r.privacy_passed for r in judged.values())
    entity_passed = entity_level.get("passed") is not False
    privacy_grade = _worst([r.privacy_grade for r in judged.values()])
    privacy = {
        "passed": bool(tables_passed and entity_passed),
        "grade": privacy_grade if entity_passed else "F",
        "tables": {
            name: {"grade": r.privacy_grade, "passed": r.privacy_passed, "judged": name in judged}
            for name, r in results.items()
        },
        "entity_level": entity_level,
        "rule": "passes when every table of the entities (the entity table and the tables descending from "
        "it) passes and every entity-level test passes; lookup tables are shown, not judged",
    }
    return quality, plausibility, privacy


def _entity_level_without_holdout(
    synthetic: Mapping[str, pd.DataFrame],
    train: Mapping[str, pd.DataFrame],
    schema: RelationalSchema,
    entity: str,
    config: EngineConfig,
) -> dict:
    """Without a holdout set only copies can be judged: synthetic entities identical to a train entity
    against train entities identical to another train entity (its natural duplicates)."""
    synthetic_rows, columns = entity_privacy.signatures(synthetic, schema, entity, train)
    train_rows, _ = entity_privacy.signatures(train, schema, entity, train)
    encoding = fit_encoding(train_rows, [synthetic_rows], columns, config.distance_max_categories)
    train_matrix = encoding.encode(train_rows)
    copies = float(np.mean(nearest(encoding.encode(synthetic_rows), train_matrix).first == 0))
    natural = float(np.mean(nearest(train_matrix, train_matrix, second=True).second == 0))
    threshold = natural + config.copy_margin
    test = {"name": "entity_copies", "value": copies, "reference": natural, "threshold": threshold}
    return {
        "entity_table": entity,
        "reference_source": "train (no holdout set: only copies are judged)",
        "tests": [test | {"passed": bool(copies <= threshold)}],
        "passed": bool(copies <= threshold),
    }


def evaluate_relational(
    synthetic: Mapping[str, pd.DataFrame],
    train: Mapping[str, pd.DataFrame],
    holdout: Mapping[str, pd.DataFrame] | None,
    metadata: dict,
    *,
    targets: Mapping[str, str] | None = None,
    rules: Mapping[str, dict] | None = None,
    entity: str | None = None,
    config: EngineConfig = EngineConfig(),
    progress: Callable[[str, int], None] | None = None,
) -> RelationalEvaluation:
    """Certify the ``synthetic`` set against the real ``train`` set it was made from and, when given, the
    real ``holdout`` set (split by entity, see ``split_by_entity``) it never saw.

    Raises RelationalError (an EngineError naming table, column and count) for a set that does not hold
    together: missing or unknown tables, missing key columns, empty or repeated primary keys, orphans,
    cycles, tables without keys; EngineError (naming the table) for a table the engine cannot certify.
    The same inputs and ``config.seed`` give the same ``to_dict()``. ``progress(stage, percent)``: stages
    validate, ``<table>: <single-table stage>``, relational, entity_privacy; percent 0–100.
    """

    def report(stage: str, fraction: float) -> None:
        if progress is not None:
            progress(stage, int(round(100 * fraction)))

    report("validate", 0)
    schema = parse_metadata(metadata)
    for label, tables in (("synthetic", synthetic), ("train", train), ("holdout", holdout)):
        if tables is not None:
            validate_tables(tables, schema, label)
    chosen = entity_table(train, schema, entity)
    split_tables = set(entity_ids(train, schema, chosen))
    seeds = np.random.SeedSequence(config.seed).spawn(3)
    options = {"targets": targets, "rules": rules, "config": config}
    results = _evaluate_tables(
        synthetic, train, holdout, split_tables, schema, options, lambda s, f: report(s, 0.02 + 0.78 * f)
    )
    report("relational", 0.8)
    reference_train: Mapping[str, pd.DataFrame]
    reference_holdout: Mapping[str, pd.DataFrame]
    if holdout is None:
        reference_train, reference_holdout = split_by_entity(
            train, metadata, holdout_share=0.5, seed=config.seed, entity=chosen
        )
        reference_source = "train_split"
    else:
        reference_train, reference_holdout, reference_source = train, holdout, "holdout"
    relational = relational_quality.assess(
        synthetic,
        reference_train,
        reference_holdout,
        schema,
        config,
        np.random.default_rng(seeds[0]),
        frozenset(schema.order) - split_tables,
    ) | {"reference_source": reference_source, "entity_table": chosen}
    report("entity_privacy", 0.9)
    if holdout is None:
        entity_level = _entity_level_without_holdout(synthetic, train, schema, chosen, config)
    else:
        entity_level = entity_privacy.assess(
            synthetic, train, holdout, schema, chosen, config, np.random.default_rng(seeds[1])
        )
    quality, plausibility, privacy = _summaries(results, relational, entity_level, split_tables)
    parameters = {
        "seed": config.seed,
        "metadata": {
            "tables": {name: dict(spec) for name, spec in schema.tables.items()},
            "relationships": [r.as_dict() for r in schema.relationships],
        },
        "entity_table": chosen,
        "split_tables": sorted(split_tables),
        "rows": {
            label: None if tables is None else {name: len(tables[name]) for name in schema.order}
            for label, tables in (("synthetic", synthetic), ("train", train), ("holdout", holdout))
        },
        "targets": dict(targets or {}),
        "config": asdict(config),
    }
    report("entity_privacy", 1)
    return RelationalEvaluation(
        tables=MappingProxyType({name: result.to_dict() for name, result in results.items()}),
        relational=MappingProxyType(_plain(relational)),
        quality=MappingProxyType(_plain(quality)),
        plausibility=MappingProxyType(_plain(plausibility)),
        privacy=MappingProxyType(_plain(privacy)),
        parameters=MappingProxyType(_plain(parameters)),
        engine=MappingProxyType(dict(ENGINE)),
    )
