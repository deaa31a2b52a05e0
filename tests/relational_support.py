"""Relational versions for page tests: the demo's schema (plans → years ← persons, RAND HIE bundled with
statsmodels) with a cheap honest synthetic set, and a set of the same shape whose every reference value is
recognisable (no reference value may reach a page)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

Sets = dict[str, dict[str, pd.DataFrame]]


def demo_like_sets(persons: int = 300) -> tuple[Sets, dict[str, Any]]:
    """The demo's tables for ``persons`` persons split by entity (a fifth held out), and a synthetic set:
    plans kept (a lookup), persons drawn column by column from train, each with a number of years drawn
    from train's, yearly visits and plans drawn from train's. New keys; no row copied."""
    from marketplace.certification.engine.relational_schema import split_by_entity
    from marketplace.datasets.randhie import randhie_tables

    tables, metadata = randhie_tables(persons)
    train, holdout = split_by_entity(tables, metadata, holdout_share=0.2, seed=0, entity="persons")
    rng = np.random.default_rng(1)
    people = train["persons"]
    synthetic_persons = pd.DataFrame(
        {name: rng.choice(people[name].to_numpy(), len(people)) for name in people.columns}
    )
    synthetic_persons["person_id"] = np.arange(len(people)) + 500_000
    counts = train["years"]["person_id"].value_counts().reindex(people["person_id"]).fillna(0).astype(int)
    owner = np.repeat(synthetic_persons["person_id"].to_numpy(), rng.choice(counts.to_numpy(), len(people)))
    years = pd.DataFrame(
        {
            "year_id": np.arange(len(owner)) + 1,
            "person_id": owner,
            "plan_id": rng.choice(train["years"]["plan_id"].to_numpy(), len(owner)),
            "year": pd.Series(owner).groupby(owner).cumcount().to_numpy() + 1,
            "mdvis": rng.choice(train["years"]["mdvis"].to_numpy(), len(owner)),
        }
    )
    synthetic = {"plans": train["plans"].copy(), "persons": synthetic_persons, "years": years}
    return {"synthetic": synthetic, "train": train, "holdout": holdout}, metadata


MARKED_METADATA: dict[str, Any] = {
    "METADATA_SPEC_VERSION": "V1",
    "tables": {
        "plans": {
            "primary_key": "plan_id",
            "columns": {
                "plan_id": {"sdtype": "id"},
                "plan_name": {"sdtype": "categorical"},
                "coinsurance": {"sdtype": "numerical"},
            },
        },
        "persons": {
            "primary_key": "person_id",
            "columns": {
                "person_id": {"sdtype": "id"},
                "nickname": {"sdtype": "categorical"},
                "score": {"sdtype": "numerical"},
            },
        },
        "years": {
            "primary_key": "year_id",
            "columns": {
                "year_id": {"sdtype": "id"},
                "person_id": {"sdtype": "id"},
                "plan_id": {"sdtype": "id"},
                "note": {"sdtype": "categorical"},
                "visits": {"sdtype": "numerical"},
            },
        },
    },
    "relationships": [
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
    ],
}


def _marked(prefix: str, first_id: int, first_number: float, persons: int) -> dict[str, pd.DataFrame]:
    """plans (4) → years ← persons, every string starting with ``prefix``, every key from ``first_id`` on
    and every measure from ``first_number`` on: the values of one set appear in no other."""
    plans = pd.DataFrame(
        {
            "plan_id": first_id + np.arange(1, 5),
            "plan_name": [f"{prefix}-plan-{i}" for i in range(4)],
            "coinsurance": first_number + np.arange(4) + 0.25,
        }
    )
    people = pd.DataFrame(
        {
            "person_id": first_id + 100 + np.arange(persons),
            "nickname": [f"{prefix}-person-{i}" for i in range(persons)],
            "score": first_number + 10 * np.arange(persons) + 0.5,
        }
    )
    rows = 3 * persons
    years = pd.DataFrame(
        {
            "year_id": first_id + 5000 + np.arange(rows),
            "person_id": np.repeat(people["person_id"].to_numpy(), 3),
            "plan_id": plans["plan_id"].to_numpy()[np.arange(rows) % 4],
            "note": [f"{prefix}-visit-{j}" for j in range(rows)],
            "visits": first_number + np.arange(rows) + 0.75,
        }
    )
    return {"plans": plans, "persons": people, "years": years}


def marked_sets() -> tuple[Sets, dict[str, Any]]:
    """A synthetic set and train and holdout sets of the demo's shape whose values are told apart by sight:
    reference keys from 660,000 and 880,000, reference measures above 60,000, strings "train-…" and
    "holdout-…"; the synthetic set's keys start at 1,000, its measures at 10, its strings "synthetic-…"."""
    import copy

    sets = {
        "synthetic": _marked("synthetic", 1000, 10.0, 60),
        "train": _marked("train", 880_000, 71_000.0, 60),
        "holdout": _marked("holdout", 660_000, 62_000.0, 20),
    }
    return sets, copy.deepcopy(MARKED_METADATA)


def relational_version(product: Any, user: Any, sets: Sets, metadata: dict[str, Any], folder: Path) -> Any:
    """A version of ``product`` holding ``sets`` (through the upload service, as a provider's upload),
    marked submitted so that every visitor sees it (certification is not what these tests look at)."""
    from marketplace.catalog import relational
    from marketplace.catalog.models import ProductVersion, VersionStatus
    from marketplace.catalog.uploads import local_upload

    files: dict[str, list[Any]] = {}
    for role, tables in sets.items():
        (folder / role).mkdir(parents=True, exist_ok=True)
        for name, frame in tables.items():
            path = folder / role / f"{name}.csv"
            frame.to_csv(path, index=False)
            files.setdefault(role, []).append(local_upload(path, name=f"{name}.csv"))
    version = relational.create_relational_version(product, user=user, metadata=metadata, **files)
    ProductVersion.objects.filter(pk=version.pk).update(status=VersionStatus.SUBMITTED)
    version.refresh_from_db()
    return version
