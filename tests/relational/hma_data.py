"""Sets HMA can model (one level of parents), built from relational_data's randhie tables."""

from __future__ import annotations

import copy

import pandas as pd
from relational_data import metadata, randhie


def three_tables(persons: int = 300) -> tuple[dict[str, pd.DataFrame], dict]:
    """plans → years ← persons: each yearly row names its person and its plan (the plan moved from the
    person to the year), so no path is longer than one parent and one child."""
    tables = randhie(persons)
    plan_of = tables["persons"].set_index("person_id")["plan_id"]
    years = tables["years"].copy()
    years.insert(2, "plan_id", years["person_id"].map(plan_of).to_numpy())
    sets = {
        "plans": tables["plans"],
        "persons": tables["persons"].drop(columns=["plan_id"]),
        "years": years,
    }
    described = metadata()
    described["tables"]["persons"]["columns"].pop("plan_id")
    described["tables"]["years"]["columns"]["plan_id"] = {"sdtype": "id"}
    described["relationships"] = [
        {
            "parent_table_name": "persons",
            "parent_primary_key": "person_id",
            "child_table_name": "years",
            "child_foreign_key": "person_id",
        },
        {
            "parent_table_name": "plans",
            "parent_primary_key": "plan_id",
            "child_table_name": "years",
            "child_foreign_key": "plan_id",
        },
    ]
    return sets, described


def chain(persons: int = 300) -> tuple[dict[str, pd.DataFrame], dict]:
    """plans → persons → years: three tables in a chain, deeper than HMA models."""
    return randhie(persons), copy.deepcopy(metadata())


def two_tables(persons: int = 300) -> tuple[dict[str, pd.DataFrame], dict]:
    """persons → years (the quickest set to fit)."""
    tables, described = three_tables(persons)
    years = tables["years"].drop(columns=["plan_id"])
    described["tables"].pop("plans")
    described["tables"]["years"]["columns"].pop("plan_id")
    described["relationships"] = described["relationships"][:1]
    return {"persons": tables["persons"], "years": years}, described


def csv_files(tables: dict[str, pd.DataFrame]) -> list:
    """Each table as an in-memory CSV upload named after it."""
    import io

    files = []
    for name, frame in tables.items():
        handle = io.BytesIO(frame.to_csv(index=False).encode())
        handle.name = f"{name}.csv"
        files.append(handle)
    return files
