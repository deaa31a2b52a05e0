"""The RAND Health Insurance Experiment as three related tables, from the copy bundled with statsmodels
(``statsmodels.datasets.randhie``, public domain; nothing is downloaded).

statsmodels ships 20,190 yearly records; consecutive records with the same person-level attributes are one
person's years. The set: ``plans`` (the insurance plan cells: log coinsurance, individual deductible),
``persons`` (health attributes, participation incentive) and ``years`` (physician visits in one year), each
yearly record naming its person and its plan — one level of parents, so SDV's HMASynthesizer can model it.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd

PLAN_COLUMNS = ["lncoins", "idp"]
PERSON_COLUMNS = ["lpi", "fmde", "physlm", "disea", "hlthg", "hlthf", "hlthp"]

METADATA: dict[str, Any] = {
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
                **{name: {"sdtype": "numerical"} for name in ["lpi", "fmde", "physlm", "disea"]},
                **{name: {"sdtype": "categorical"} for name in ["hlthg", "hlthf", "hlthp"]},
            },
        },
        "years": {
            "primary_key": "year_id",
            "columns": {
                "year_id": {"sdtype": "id"},
                "person_id": {"sdtype": "id"},
                "plan_id": {"sdtype": "id"},
                "year": {"sdtype": "numerical"},
                "mdvis": {"sdtype": "numerical"},
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


def randhie_tables(persons: int | None = None) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """(tables, SDV multi-table metadata): plans (6), persons (5,294, or the first ``persons``) and their
    years (20,190 in all)."""
    import statsmodels.api as sm

    data = sm.datasets.randhie.load_pandas().data
    keys = PLAN_COLUMNS + PERSON_COLUMNS
    person = (data[keys] != data[keys].shift()).any(axis=1).cumsum().to_numpy() - 1
    plan_codes, plan_index = np.unique(data[PLAN_COLUMNS].to_numpy(), axis=0, return_inverse=True)
    plans = pd.DataFrame(plan_codes, columns=PLAN_COLUMNS)
    plans.insert(0, "plan_id", np.arange(len(plans)) + 1)
    plans["idp"] = plans["idp"].astype(int).astype(str)
    first = pd.Series(np.arange(len(data))).groupby(person).first().to_numpy()
    people = data.iloc[first][PERSON_COLUMNS].reset_index(drop=True)
    for column in ("hlthg", "hlthf", "hlthp"):
        people[column] = people[column].astype(int).astype(str)
    people.insert(0, "person_id", np.arange(len(people)) + 1000)
    years = pd.DataFrame(
        {
            "year_id": np.arange(len(data)) + 1,
            "person_id": person + 1000,
            "plan_id": plan_index.ravel() + 1,
            "year": pd.Series(person).groupby(person).cumcount().to_numpy() + 1,
            "mdvis": data["mdvis"].to_numpy(),
        }
    )
    if persons is not None:
        people = people.iloc[:persons].reset_index(drop=True)
        years = years[years["person_id"].isin(people["person_id"])].reset_index(drop=True)
    return {"plans": plans, "persons": people, "years": years}, copy.deepcopy(METADATA)
