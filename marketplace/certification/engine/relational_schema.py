"""Sets of related tables: SDV multi-table metadata read, checked and used to find entities.

A *set* is a mapping table name → DataFrame described by SDV multi-table metadata
(``{"tables": {name: {"primary_key", "columns"}}, "relationships": [{"parent_table_name",
"parent_primary_key", "child_table_name", "child_foreign_key"}]}``). An *entity* is one row of the entity
table (by default the first table, parents first, that has children and at least ``ENTITY_MIN_ROWS`` rows)
with every row that descends from it through foreign keys; tables that do not descend from it (lookup
tables such as plans or airports) are shared by all entities.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .errors import EngineError

ENTITY_MIN_ROWS = 200


class RelationalError(EngineError):
    """A set of tables that cannot be certified; ``problems`` names each table, column and row count.

    Each problem is ``{"code", "table", "column", "count", "message"}``; the message joins their sentences.
    """

    def __init__(self, problems: list[dict]) -> None:
        self.problems = problems
        super().__init__(" ".join(problem["message"] for problem in problems))

    @property
    def code(self) -> str:
        return str(self.problems[0]["code"])


def _problem(
    code: str, message: str, table: str | None = None, column: str | None = None, count: int | None = None
) -> dict:
    return {"code": code, "table": table, "column": column, "count": count, "message": message}


@dataclass(frozen=True)
class Relationship:
    """One foreign key: ``child.child_key`` refers to ``parent.parent_key`` (the parent's primary key)."""

    parent: str
    parent_key: str
    child: str
    child_key: str

    def as_dict(self) -> dict:
        return {
            "parent_table_name": self.parent,
            "parent_primary_key": self.parent_key,
            "child_table_name": self.child,
            "child_foreign_key": self.child_key,
        }


@dataclass(frozen=True)
class RelationalSchema:
    """Tables (their SDV single-table metadata), primary keys and relationships, tables ordered parents first."""

    tables: Mapping[str, dict]
    primary_keys: Mapping[str, str | None]
    relationships: tuple[Relationship, ...]
    order: tuple[str, ...]

    def children(self, table: str) -> list[Relationship]:
        return [r for r in self.relationships if r.parent == table]

    def table_metadata(self, table: str) -> dict:
        """SDV single-table metadata of ``table`` for the single-table engine."""
        metadata: dict[str, Any] = {"columns": dict(self.tables[table].get("columns") or {})}
        if self.primary_keys[table]:
            metadata["primary_key"] = self.primary_keys[table]
        return metadata


def _topological(names: list[str], relationships: list[Relationship]) -> tuple[tuple[str, ...], list[str]]:
    """Tables parents first (Kahn's algorithm, ties by declaration order) and the tables left in a cycle."""
    parents = {name: {r.parent for r in relationships if r.child == name} for name in names}
    order: list[str] = []
    ready = [name for name in names if not parents[name]]
    while ready:
        name = ready.pop(0)
        order.append(name)
        for other in names:
            if name in parents[other]:
                parents[other].discard(name)
                if not parents[other] and other not in order and other not in ready:
                    ready.append(other)
    return tuple(order), [name for name in names if name not in order]


def _read_relationships(raw: object, tables: dict) -> tuple[list[Relationship], list[dict]]:
    problems: list[dict] = []
    relationships: list[Relationship] = []
    for item in raw if isinstance(raw, list) else []:
        fields = ("parent_table_name", "parent_primary_key", "child_table_name", "child_foreign_key")
        if not isinstance(item, dict) or not all(isinstance(item.get(f), str) for f in fields):
            problems.append(
                _problem(
                    "broken_foreign_key",
                    f"A relationship lacks one of {', '.join(fields)} (composite keys are not supported).",
                )
            )
            continue
        relationship = Relationship(*(str(item[f]) for f in fields))
        for table in (relationship.parent, relationship.child):
            if table not in tables:
                problems.append(
                    _problem(
                        "missing_table",
                        f"The relationship {relationship.parent} → {relationship.child} names the table {table!r}, which the metadata does not describe.",
                        table=table,
                    )
                )
        relationships.append(relationship)
    return relationships, problems


def _key_problems(tables: dict, primary_keys: dict, relationships: list[Relationship]) -> list[dict]:
    problems: list[dict] = []
    for r in relationships:
        if r.parent not in tables or r.child not in tables:
            continue
        if not primary_keys.get(r.parent):
            problems.append(
                _problem(
                    "no_primary_key",
                    f"Table {r.parent!r} is the parent of {r.child!r} but has no primary key.",
                    table=r.parent,
                )
            )
        elif primary_keys[r.parent] != r.parent_key:
            problems.append(
                _problem(
                    "broken_foreign_key",
                    f"{r.child}.{r.child_key} refers to {r.parent}.{r.parent_key}, which is not the primary key of {r.parent!r} ({primary_keys[r.parent]!r}).",
                    table=r.child,
                    column=r.child_key,
                )
            )
        if r.parent == r.child:
            problems.append(
                _problem(
                    "cycle",
                    f"Table {r.parent!r} refers to itself through {r.child_key!r}; cycles are not supported.",
                    table=r.parent,
                    column=r.child_key,
                )
            )
    if len(tables) > 1:
        related = {r.parent for r in relationships} | {r.child for r in relationships}
        for name in tables:
            if name not in related and not primary_keys.get(name):
                problems.append(
                    _problem(
                        "no_key",
                        f"Table {name!r} has no primary key and no foreign key: it is not part of the set.",
                        table=name,
                    )
                )
    return problems


def parse_metadata(metadata: object) -> RelationalSchema:
    """Read SDV multi-table metadata; raise RelationalError for keys that cannot hold a set together.

    Refused: no tables, relationships naming unknown tables or a column other than the parent's primary
    key, parents without a primary key, cycles, and (with several tables) tables with no key at all.
    """
    if (
        not isinstance(metadata, dict)
        or not isinstance(metadata.get("tables"), dict)
        or not metadata["tables"]
    ):
        raise RelationalError(
            [
                _problem(
                    "no_tables", "The metadata has no 'tables' mapping (SDV multi-table metadata expected)."
                )
            ]
        )
    tables = {
        str(name): (spec if isinstance(spec, dict) else {}) for name, spec in metadata["tables"].items()
    }
    primary_keys: dict[str, str | None] = {}
    problems: list[dict] = []
    for name, spec in tables.items():
        key = spec.get("primary_key")
        if key is not None and not isinstance(key, str):
            problems.append(
                _problem(
                    "no_primary_key",
                    f"Table {name!r} has a composite primary key, which is not supported.",
                    table=name,
                )
            )
            key = None
        primary_keys[name] = key
    relationships, relationship_problems = _read_relationships(metadata.get("relationships") or [], tables)
    problems += relationship_problems + _key_problems(tables, primary_keys, relationships)
    known = [r for r in relationships if r.parent in tables and r.child in tables and r.parent != r.child]
    order, cyclic = _topological(list(tables), known)
    if cyclic:
        problems.append(
            _problem(
                "cycle",
                f"The foreign keys form a cycle through the tables {', '.join(cyclic)}.",
                table=cyclic[0],
            )
        )
    if problems:
        raise RelationalError(problems)
    return RelationalSchema(
        tables=tables, primary_keys=primary_keys, relationships=tuple(relationships), order=order
    )


def _same_keys(values: pd.Series, keys: pd.Series) -> np.ndarray:
    """Whether each of ``values`` is one of ``keys`` (numbers compared as numbers, anything else as text)."""
    if pd.api.types.is_numeric_dtype(values) and pd.api.types.is_numeric_dtype(keys):
        return values.isin(keys).to_numpy()
    return values.astype(str).isin(keys.astype(str)).to_numpy()


def _table_problems(name: str, table: pd.DataFrame, schema: RelationalSchema, label: str) -> list[dict]:
    problems: list[dict] = []
    key = schema.primary_keys[name]
    columns = set(map(str, table.columns))
    needed = ([key] if key else []) + [r.child_key for r in schema.relationships if r.child == name]
    for column in needed:
        if column not in columns:
            problems.append(
                _problem(
                    "missing_column",
                    f"The {label} table {name!r} lacks its key column {column!r}.",
                    table=name,
                    column=column,
                )
            )
    if key and key in columns:
        empty = int(table[key].isna().sum())
        if empty:
            problems.append(
                _problem(
                    "missing_primary_key",
                    f"The {label} table {name!r} has {empty} rows without a primary key {key!r}.",
                    table=name,
                    column=key,
                    count=empty,
                )
            )
        duplicated = int(table[key].dropna().duplicated().sum())
        if duplicated:
            problems.append(
                _problem(
                    "duplicate_primary_key",
                    f"The {label} table {name!r} repeats {duplicated} primary key values in {key!r}.",
                    table=name,
                    column=key,
                    count=duplicated,
                )
            )
    return problems


def _orphan_problems(tables: Mapping[str, pd.DataFrame], schema: RelationalSchema, label: str) -> list[dict]:
    problems: list[dict] = []
    for r in schema.relationships:
        child, parent = tables[r.child], tables[r.parent]
        if r.child_key not in child.columns or r.parent_key not in parent.columns:
            continue
        found = _same_keys(child[r.child_key], parent[r.parent_key].dropna())
        orphans = int((~found).sum())
        if orphans:
            problems.append(
                _problem(
                    "orphan_rows",
                    f"{orphans} rows of the {label} table {r.child!r} have a {r.child_key!r} that is no {r.parent}.{r.parent_key} (orphans).",
                    table=r.child,
                    column=r.child_key,
                    count=orphans,
                )
            )
    return problems


def validate_tables(tables: Mapping[str, pd.DataFrame], schema: RelationalSchema, label: str) -> None:
    """Check one set (``label``: synthetic, train, holdout) against its metadata; raise RelationalError.

    Refused: a described table that is missing, a table the metadata does not describe, a missing key
    column, empty or repeated primary keys, and child rows whose foreign key finds no parent row (orphans).
    """
    problems = [
        _problem("missing_table", f"The {label} set lacks the table {name!r}.", table=name)
        for name in schema.order
        if name not in tables
    ]
    problems += [
        _problem(
            "unknown_table",
            f"The {label} set has a table {name!r} that the metadata does not describe.",
            table=str(name),
        )
        for name in tables
        if name not in schema.tables
    ]
    for name, table in tables.items():
        if name in schema.tables:
            if not isinstance(table, pd.DataFrame):
                raise EngineError(f"The {label} table {name!r} must be a pandas DataFrame.")
            problems += _table_problems(name, table, schema, label)
    if not problems:
        problems = _orphan_problems(tables, schema, label)
    if problems:
        raise RelationalError(problems)


def entity_table(
    tables: Mapping[str, pd.DataFrame], schema: RelationalSchema, chosen: str | None = None
) -> str:
    """The table whose rows are the entities: ``chosen``, or the first table (parents first) with children
    and at least ENTITY_MIN_ROWS rows, or else the table with children and the most rows."""
    if chosen is not None:
        if chosen not in schema.tables:
            raise RelationalError(
                [
                    _problem(
                        "missing_table", f"The entity table {chosen!r} is not in the metadata.", table=chosen
                    )
                ]
            )
        return chosen
    parents = [name for name in schema.order if schema.children(name)]
    if not parents:
        raise RelationalError(
            [
                _problem(
                    "no_relationships",
                    "The metadata declares no relationship: a set needs at least one foreign key.",
                )
            ]
        )
    for name in parents:
        if len(tables[name]) >= ENTITY_MIN_ROWS:
            return name
    return max(parents, key=lambda name: len(tables[name]))


def entity_ids(
    tables: Mapping[str, pd.DataFrame], schema: RelationalSchema, entity: str
) -> dict[str, np.ndarray]:
    """For the entity table and every table descending from it: each row's entity, as a position in the
    entity table. A table reached through several paths follows the first declared relationship."""
    positions = {entity: np.arange(len(tables[entity]))}
    for name in schema.order:
        if name in positions:
            continue
        link = next((r for r in schema.relationships if r.child == name and r.parent in positions), None)
        if link is None:
            continue
        parent = tables[link.parent]
        keys = parent[link.parent_key]
        child_keys = tables[name][link.child_key]
        if not (pd.api.types.is_numeric_dtype(keys) and pd.api.types.is_numeric_dtype(child_keys)):
            keys, child_keys = keys.astype(str), child_keys.astype(str)
        lookup = pd.Index(keys).get_indexer(child_keys)
        positions[name] = positions[link.parent][lookup]
    return positions


def split_by_entity(
    tables: Mapping[str, pd.DataFrame],
    metadata: dict,
    *,
    holdout_share: float = 0.2,
    seed: int = 0,
    entity: str | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Split a valid set into train and holdout sets **by entity**: a share ``holdout_share`` of the entity
    rows (seeded uniform choice) goes to holdout with every row that descends from it; tables that do not
    descend from the entity table (lookup tables) are copied whole into both. Row order is kept."""
    if not 0 < holdout_share < 1:
        raise ValueError("holdout_share must be between 0 and 1")
    schema = parse_metadata(metadata)
    validate_tables(tables, schema, "reference")
    chosen = entity_table(tables, schema, entity)
    count = len(tables[chosen])
    held = np.zeros(count, dtype=bool)
    held[np.random.default_rng(seed).permutation(count)[: int(round(count * holdout_share))]] = True
    train: dict[str, pd.DataFrame] = {}
    holdout: dict[str, pd.DataFrame] = {}
    for name, positions in entity_ids(tables, schema, chosen).items():
        mask = held[positions]
        train[name] = tables[name][~mask].reset_index(drop=True)
        holdout[name] = tables[name][mask].reset_index(drop=True)
    for name in schema.order:
        if name not in train:
            train[name] = tables[name].reset_index(drop=True)
            holdout[name] = tables[name].reset_index(drop=True)
    return train, holdout
