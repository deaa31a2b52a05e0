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


EVALUATION = {
    "quality": {"score": 0.9, "grade": "A", "column_shapes": 0.9, "column_pair_trends": 0.9},
    "plausibility": {
        "score": 1.0,
        "grade": "A",
        "rows_violating_any": 0.0,
        "holdout_rows_violating_any": 0.0,
    },
    "privacy": {"grade": "A", "passed": True},
    "charts": {},
    "parameters": {},
    "engine": {"name": "synthex-certify", "version": "test"},
}


def certified_relational_version(owner: object, product: object, folder: object) -> object:
    """A certified 3-table version of ``product`` (plans → persons → years, 600 persons; a stand-in
    certificate: delivery tests need a signed one, not a measured one)."""
    from pathlib import Path

    from relational_data import independent

    from marketplace.catalog import relational
    from marketplace.catalog.models import FileRole
    from marketplace.catalog.uploads import local_upload
    from marketplace.certification.engine.relational import split_by_entity
    from marketplace.certification.services import issue_certificate

    train, _ = split_by_entity(randhie(750), metadata(), holdout_share=0.2, seed=0)
    files: dict[str, list] = {}
    for role, tables in {"synthetic": independent(train), "train": train}.items():
        (Path(str(folder)) / role).mkdir()
        for name, frame in tables.items():
            path = Path(str(folder)) / role / f"{name}.csv"
            frame.to_csv(path, index=False)
            files.setdefault(role, []).append(local_upload(path, name=f"{name}.csv"))
    version = relational.create_relational_version(product, user=owner, metadata=metadata(), **files)  # type: ignore[arg-type]
    synthetic = list(version.files.filter(role=FileRole.SYNTHETIC).order_by("table_name"))
    issue_certificate(version, EVALUATION, synthetic)
    version.status = "certified"
    version.save(update_fields=["status"])
    return version
