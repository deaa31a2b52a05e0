"""Relational test sets built from data installed with statsmodels (nothing downloaded).

RAND Health Insurance Experiment (statsmodels ``randhie``): consecutive rows with the same person-level
attributes are one person's yearly records. Three tables: ``plans`` (insurance plan cells: coinsurance,
individual deductible, participation incentive) → ``persons`` (health attributes) → ``years``
(yearly physician visits). Plus the bad and adversarial variants the tests need.
"""

from __future__ import annotations

import copy
from functools import cache

import numpy as np
import pandas as pd

PLAN_COLUMNS = ["lncoins", "idp"]
PERSON_COLUMNS = ["lpi", "fmde", "physlm", "disea", "hlthg", "hlthf", "hlthp"]

METADATA = {
    "METADATA_SPEC_VERSION": "V1",
    "tables": {
        "plans": {
            "primary_key": "plan_id",
            "columns": {
                "plan_id": {"sdtype": "id"},
                "lncoins": {"sdtype": "numerical"},
                "idp": {"sdtype": "categorical"},
            },
        },
        "persons": {
            "primary_key": "person_id",
            "columns": {
                "person_id": {"sdtype": "id"},
                "plan_id": {"sdtype": "id"},
                "lpi": {"sdtype": "numerical"},
                "fmde": {"sdtype": "numerical"},
                "physlm": {"sdtype": "numerical"},
                "disea": {"sdtype": "numerical"},
                "hlthg": {"sdtype": "categorical"},
                "hlthf": {"sdtype": "categorical"},
                "hlthp": {"sdtype": "categorical"},
            },
        },
        "years": {
            "primary_key": "year_id",
            "columns": {
                "year_id": {"sdtype": "id"},
                "person_id": {"sdtype": "id"},
                "year": {"sdtype": "numerical"},
                "mdvis": {"sdtype": "numerical"},
            },
        },
    },
    "relationships": [
        {
            "parent_table_name": "plans",
            "parent_primary_key": "plan_id",
            "child_table_name": "persons",
            "child_foreign_key": "plan_id",
        },
        {
            "parent_table_name": "persons",
            "parent_primary_key": "person_id",
            "child_table_name": "years",
            "child_foreign_key": "person_id",
        },
    ],
}


def metadata() -> dict:
    return copy.deepcopy(METADATA)


@cache
def _randhie() -> dict[str, pd.DataFrame]:
    import statsmodels.api as sm

    data = sm.datasets.randhie.load_pandas().data
    keys = PLAN_COLUMNS + PERSON_COLUMNS
    person = (data[keys] != data[keys].shift()).any(axis=1).cumsum().to_numpy() - 1
    plan_codes, plan_index = np.unique(data[PLAN_COLUMNS].to_numpy(), axis=0, return_inverse=True)
    plans = pd.DataFrame(plan_codes, columns=PLAN_COLUMNS)
    plans.insert(0, "plan_id", np.arange(len(plans)) + 1)
    plans["idp"] = plans["idp"].astype(int).astype(str)
    first = pd.Series(np.arange(len(data))).groupby(person).first().to_numpy()
    persons = data.iloc[first][PERSON_COLUMNS].reset_index(drop=True)
    for column in ("hlthg", "hlthf", "hlthp"):
        persons[column] = persons[column].astype(int).astype(str)
    persons.insert(0, "plan_id", plan_index.ravel()[first] + 1)
    persons.insert(0, "person_id", np.arange(len(persons)) + 1000)
    years = pd.DataFrame(
        {
            "year_id": np.arange(len(data)) + 1,
            "person_id": person + 1000,
            "year": pd.Series(person).groupby(person).cumcount().to_numpy() + 1,
            "mdvis": data["mdvis"].to_numpy(),
        }
    )
    return {"plans": plans, "persons": persons, "years": years}


def randhie(persons: int | None = None) -> dict[str, pd.DataFrame]:
    """plans (a lookup of the plan cells) → persons (5,294) → years (20,190), fresh copies."""
    tables = {name: table.copy() for name, table in _randhie().items()}
    if persons is not None:
        kept = tables["persons"]["person_id"].iloc[:persons]
        tables["persons"] = tables["persons"].iloc[:persons].reset_index(drop=True)
        tables["years"] = tables["years"][tables["years"]["person_id"].isin(kept)].reset_index(drop=True)
    return tables


def shuffle_children(tables: dict[str, pd.DataFrame], seed: int = 0) -> dict[str, pd.DataFrame]:
    """Every person's yearly rows given to random persons: the counts per person stay, the links break."""
    result = {name: table.copy() for name, table in tables.items()}
    rng = np.random.default_rng(seed)
    years = result["years"]
    years["person_id"] = rng.permutation(years["person_id"].to_numpy())
    years["year"] = years.groupby("person_id").cumcount() + 1
    return result


def independent(tables: dict[str, pd.DataFrame], seed: int = 1) -> dict[str, pd.DataFrame]:
    """A cheap honest generator: plans kept (a lookup), persons drawn column by column from train, each with
    a child count drawn from train's, yearly visits drawn from train's marginal. No row is copied."""
    rng = np.random.default_rng(seed)
    persons_train, years_train = tables["persons"], tables["years"]
    rows = len(persons_train)
    persons = pd.DataFrame(
        {
            name: persons_train[name].sample(rows, replace=True, random_state=seed + i).to_numpy()
            for i, name in enumerate(persons_train)
        }
    )
    persons["person_id"] = np.arange(rows) + 500_000
    counts = years_train["person_id"].value_counts().reindex(persons_train["person_id"]).fillna(0).astype(int)
    drawn = rng.choice(counts.to_numpy(), rows)
    owner = np.repeat(persons["person_id"].to_numpy(), drawn)
    years = pd.DataFrame(
        {
            "year_id": np.arange(len(owner)) + 1,
            "person_id": owner,
            "year": pd.Series(owner).groupby(owner).cumcount().to_numpy() + 1,
            "mdvis": rng.choice(years_train["mdvis"].to_numpy(), len(owner)),
        }
    )
    return {"plans": tables["plans"].copy(), "persons": persons, "years": years}


def leak_entities(
    synthetic: dict[str, pd.DataFrame], train: dict[str, pd.DataFrame], share: float = 0.1, seed: int = 2
) -> dict[str, pd.DataFrame]:
    """Replace ``share`` of the synthetic persons by train persons copied with all their yearly rows."""
    rng = np.random.default_rng(seed)
    persons, years = synthetic["persons"], synthetic["years"]
    count = int(round(len(persons) * share))
    dropped = persons["person_id"].to_numpy()[:count]
    copied = train["persons"].iloc[rng.choice(len(train["persons"]), count, replace=False)].copy()
    copied_years = train["years"][train["years"]["person_id"].isin(copied["person_id"])].copy()
    # New keys (the generator's own may overlap train's); keys are ids, left out of every figure.
    new_ids = dict(
        zip(copied["person_id"], int(persons["person_id"].max()) + 1 + np.arange(count), strict=True)
    )
    copied["person_id"] = copied["person_id"].map(new_ids)
    copied_years["person_id"] = copied_years["person_id"].map(new_ids)
    copied_years["year_id"] = int(years["year_id"].max()) + 1 + np.arange(len(copied_years))
    result = {name: table.copy() for name, table in synthetic.items()}
    result["persons"] = pd.concat([persons[~persons["person_id"].isin(dropped)], copied], ignore_index=True)
    result["years"] = pd.concat([years[~years["person_id"].isin(dropped)], copied_years], ignore_index=True)
    return result
