"""Privacy at the entity level: a person is a parent row with all of its children.

Each entity (a row of the entity table, see ``relational_schema``) is flattened into one *signature* row:
its own columns, then for every table descending from it the number of its rows and, over them, the mean
of each number and the share of each of the 5 most frequent train categories of each category column.
Signatures are compared with the engine's mixed-type distance (``distance.py``). Members are train
entities sampled at the holdout's size, non-members the holdout entities; the synthetic entities are
compared with both at equal size, so that an honest generator is as close to the one as to the other:

- ``entity_copies``: synthetic entities identical to a train entity, against those identical to a holdout
  entity (distance 0);
- ``entity_quasi_copies``: synthetic entities within the distance at which 2% of holdout entities lie from
  their nearest train entity (how close fresh real entities come by chance), train against holdout;
- ``entity_dcr_share``: share of synthetic entities closer to train than to holdout (0.5 when honest);
- ``entity_membership``: the distance and density-ratio attacks of ``membership.py`` on entities.

A test fails when the train figure exceeds the holdout one by more than max(margin, z standard errors of
the difference), the DCR share exceeds ``dcr_share_threshold``, or an attack's AUC exceeds
``mia_auc_threshold`` or its TPR at FPR 1 % is above ``mia_tpr_ratio`` × FPR with p < ``mia_p_value``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from . import membership
from .config import EngineConfig
from .distance import fit_encoding, nearest
from .relational_schema import RelationalSchema, entity_ids
from .schema import Column, clean_table, resolve_columns
from .stats import wilson_interval

_TOP_CATEGORIES = 5


def _statistical(schema: RelationalSchema, name: str, table: pd.DataFrame) -> tuple[Column, ...]:
    keys = {schema.primary_keys[name]} | {r.child_key for r in schema.relationships if r.child == name}
    return tuple(
        c
        for c in resolve_columns(table, schema.table_metadata(name))
        if c.name not in keys and (c.is_continuous or c.is_discrete)
    )


def _descendant_aggregates(
    name: str,
    rows: pd.DataFrame,
    owner: np.ndarray,
    entities: int,
    columns: tuple[Column, ...],
    categories: dict,
) -> dict[str, np.ndarray]:
    frame = clean_table(rows, columns)
    frame["__entity"] = owner
    grouped = frame.groupby("__entity")
    counts = np.bincount(owner, minlength=entities).astype(np.float64)
    aggregates = {f"{name}.rows": counts}
    for column in columns:
        if column.is_continuous:
            means = grouped[column.name].mean().reindex(range(entities))
            aggregates[f"{name}.{column.name}.mean"] = means.to_numpy(dtype=np.float64)
            continue
        labels = frame[column.name].astype(str)
        for category in categories[(name, column.name)]:
            hits = np.bincount(owner, weights=(labels == category).to_numpy(np.float64), minlength=entities)
            aggregates[f"{name}.{column.name}={category}"] = np.divide(
                hits, counts, out=np.zeros(entities), where=counts > 0
            )
    return aggregates


def signatures(
    tables: Mapping[str, pd.DataFrame],
    schema: RelationalSchema,
    entity: str,
    reference: Mapping[str, pd.DataFrame],
) -> tuple[pd.DataFrame, tuple[Column, ...]]:
    """One row per entity: the entity's statistical columns and aggregates of its descendants' rows
    (category shares over the 5 most frequent categories of ``reference``, the train set)."""
    owners = entity_ids(tables, schema, entity)
    entity_columns = _statistical(schema, entity, reference[entity])
    parts: dict[str, np.ndarray | pd.Series] = dict(clean_table(tables[entity], entity_columns).items())
    columns = list(entity_columns)
    entities = len(tables[entity])
    for name, owner in owners.items():
        if name == entity:
            continue
        descendant_columns = _statistical(schema, name, reference[name])
        categories = {
            (name, c.name): list(
                reference[name][c.name].dropna().astype(str).value_counts().index[:_TOP_CATEGORIES]
            )
            for c in descendant_columns
            if c.is_discrete
        }
        aggregates = _descendant_aggregates(
            name, tables[name], owner, entities, descendant_columns, categories
        )
        parts.update(aggregates)
        columns += [Column(key, "numerical") for key in aggregates]
    frame = pd.DataFrame({key: np.asarray(value) for key, value in parts.items()}, index=range(entities))
    return frame, tuple(columns)


def _difference_test(
    name: str, train_hits: int, holdout_hits: int, rows: int, margin: float, z: float
) -> dict:
    train_rate, holdout_rate = train_hits / rows, holdout_hits / rows
    error = math.sqrt((train_rate * (1 - train_rate) + holdout_rate * (1 - holdout_rate)) / rows)
    threshold = holdout_rate + max(margin, z * error)
    return {
        "name": name,
        "value": train_rate,
        "reference": holdout_rate,
        "threshold": threshold,
        "ci": list(wilson_interval(train_hits, rows)),
        "passed": bool(train_rate <= threshold),
    }


def _membership_tests(figures: dict, config: EngineConfig) -> list[dict]:
    tests = []
    for attack in ("distance_all", "density_all"):
        auc = figures[attack]["auc"]
        tests.append(
            {
                "name": f"entity_membership_{attack}_auc",
                "value": auc,
                "ci": figures[attack]["auc_ci"],
                "threshold": config.mia_auc_threshold,
                "passed": bool(auc <= config.mia_auc_threshold),
            }
        )
        low_fpr = figures[attack]["tpr_at_fpr"][0]
        tpr = low_fpr["tpr"] or 0.0
        passed = not (low_fpr["p_value"] < config.mia_p_value and tpr > config.mia_tpr_ratio * low_fpr["fpr"])
        tests.append(
            {
                "name": f"entity_membership_{attack}_tpr_at_fpr_1pct",
                "value": tpr,
                "p_value": low_fpr["p_value"],
                "threshold": config.mia_tpr_ratio * low_fpr["fpr"],
                "passed": bool(passed),
            }
        )
    return tests


def assess(
    synthetic: Mapping[str, pd.DataFrame],
    train: Mapping[str, pd.DataFrame],
    holdout: Mapping[str, pd.DataFrame],
    schema: RelationalSchema,
    entity: str,
    config: EngineConfig,
    rng: np.random.Generator,
) -> dict:
    """The ``privacy.entity_level`` section (figures, tests, ``passed``); distances are root-mean-square
    per-column discrepancies of signatures (0 = identical entities)."""
    synthetic_rows, columns = signatures(synthetic, schema, entity, train)
    train_rows, _ = signatures(train, schema, entity, train)
    holdout_rows, _ = signatures(holdout, schema, entity, train)
    size = min(len(train_rows), len(holdout_rows), config.privacy_max_rows)
    members = train_rows.iloc[np.sort(rng.choice(len(train_rows), size, replace=False))].reset_index(
        drop=True
    )
    non_members = holdout_rows.iloc[np.sort(rng.choice(len(holdout_rows), size, replace=False))].reset_index(
        drop=True
    )
    if len(synthetic_rows) > config.privacy_max_rows:
        synthetic_rows = synthetic_rows.iloc[
            np.sort(rng.choice(len(synthetic_rows), config.privacy_max_rows, replace=False))
        ]
    encoding = fit_encoding(
        train_rows,
        [synthetic_rows, holdout_rows],
        columns,
        config.distance_max_categories,
        real=(holdout_rows,),
    )
    synthetic_matrix, member_matrix, holdout_matrix = (
        encoding.encode(t) for t in (synthetic_rows, members, non_members)
    )
    jobs = config.n_jobs
    to_members = np.sqrt(nearest(synthetic_matrix, member_matrix, n_jobs=jobs).first)
    to_holdout = np.sqrt(nearest(synthetic_matrix, holdout_matrix, n_jobs=jobs).first)
    holdout_to_members = np.sqrt(nearest(holdout_matrix, member_matrix, n_jobs=jobs).first)
    closeness = float(np.quantile(holdout_to_members, config.close_record_quantile))
    rows = len(synthetic_rows)
    z = config.comparison_z
    tests = [
        _difference_test(
            "entity_copies",
            int((to_members == 0).sum()),
            int((to_holdout == 0).sum()),
            rows,
            config.copy_margin,
            z,
        ),
        _difference_test(
            "entity_quasi_copies",
            int((to_members <= closeness).sum()),
            int((to_holdout <= closeness).sum()),
            rows,
            config.quasi_copy_margin,
            z,
        ),
    ]
    dcr_share = float(np.mean(to_members < to_holdout) + 0.5 * np.mean(to_members == to_holdout))
    tests.append(
        {
            "name": "entity_dcr_share",
            "value": dcr_share,
            "reference": 0.5,
            "threshold": config.dcr_share_threshold,
            "ci": list(wilson_interval(int(round(dcr_share * rows)), rows)),
            "passed": bool(dcr_share <= config.dcr_share_threshold),
        }
    )
    attack_figures = membership.attacks(
        np.sqrt(nearest(member_matrix, synthetic_matrix, n_jobs=jobs).first),
        np.sqrt(nearest(holdout_matrix, synthetic_matrix, n_jobs=jobs).first),
        np.sqrt(nearest(member_matrix, holdout_matrix, n_jobs=jobs).first),
        np.sqrt(nearest(holdout_matrix, holdout_matrix, second=True, n_jobs=jobs).second),
        config,
        rng,
    )
    tests += _membership_tests(attack_figures, config)
    return {
        "entity_table": entity,
        "entities": {"synthetic": rows, "members": size, "non_members": size},
        "signature_columns": [c.name for c in columns],
        "quasi_copy_distance": closeness,
        "membership_inference": attack_figures,
        "tests": tests,
        "passed": all(test["passed"] for test in tests),
    }
