"""The relational engine: validation of sets, the split by entity, relational figures, entity-level privacy."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from relational_data import independent, leak_entities, metadata, randhie, shuffle_children

from marketplace.certification.engine.relational import RelationalError, evaluate_relational, split_by_entity
from marketplace.certification.engine.relational_quality import child_counts, ks_complement
from marketplace.certification.engine.relational_schema import Relationship, parse_metadata, validate_tables


def _small() -> dict[str, pd.DataFrame]:
    return randhie(300)


def _problem(tables: dict, meta: dict | None = None) -> dict:
    meta = meta or metadata()
    with pytest.raises(RelationalError) as caught:
        validate_tables(tables, parse_metadata(meta), "synthetic")
    return caught.value.problems[0]


def test_a_valid_set_passes_validation() -> None:
    validate_tables(_small(), parse_metadata(metadata()), "synthetic")


def test_duplicate_primary_keys_are_named_with_their_count() -> None:
    tables = _small()
    tables["persons"].loc[[3, 4, 5], "person_id"] = tables["persons"].loc[2, "person_id"]
    problem = _problem(tables)
    assert (problem["code"], problem["table"], problem["column"], problem["count"]) == (
        "duplicate_primary_key",
        "persons",
        "person_id",
        3,
    )


def test_orphans_are_named_with_their_count() -> None:
    tables = _small()
    tables["years"].loc[:6, "person_id"] = 99_999_999
    problem = _problem(tables)
    assert (problem["code"], problem["table"], problem["column"], problem["count"]) == (
        "orphan_rows",
        "years",
        "person_id",
        7,
    )
    assert "7 rows of the synthetic table 'years'" in problem["message"]


def test_a_missing_table_and_an_unknown_table_are_refused() -> None:
    tables = _small()
    tables["visits"] = tables.pop("years")
    with pytest.raises(RelationalError) as caught:
        validate_tables(tables, parse_metadata(metadata()), "train")
    codes = {(p["code"], p["table"]) for p in caught.value.problems}
    assert codes == {("missing_table", "years"), ("unknown_table", "visits")}


def test_a_missing_key_column_is_refused() -> None:
    tables = _small()
    tables["years"] = tables["years"].drop(columns="person_id")
    problem = _problem(tables)
    assert (problem["code"], problem["table"], problem["column"]) == ("missing_column", "years", "person_id")


def _with_relationship(**changes: str) -> dict:
    meta = metadata()
    meta["relationships"].append(
        {
            "parent_table_name": "years",
            "parent_primary_key": "year_id",
            "child_table_name": "plans",
            "child_foreign_key": "plan_id",
        }
        | changes
    )
    return meta


@pytest.mark.parametrize(
    ("meta", "code", "table"),
    [
        (_with_relationship(), "cycle", "plans"),
        (
            _with_relationship(
                parent_table_name="plans", parent_primary_key="plan_id", child_table_name="plans"
            ),
            "cycle",
            "plans",
        ),
        (_with_relationship(parent_table_name="airports"), "missing_table", "airports"),
        (_with_relationship(parent_primary_key="year"), "broken_foreign_key", "plans"),
    ],
)
def test_broken_metadata_is_refused(meta: dict, code: str, table: str) -> None:
    with pytest.raises(RelationalError) as caught:
        parse_metadata(meta)
    assert (caught.value.problems[0]["code"], caught.value.problems[0]["table"]) == (code, table)


def test_tables_without_keys_are_refused() -> None:
    meta = metadata()
    del meta["tables"]["persons"]["primary_key"]
    meta["tables"]["notes"] = {"columns": {"text": {"sdtype": "categorical"}}}
    with pytest.raises(RelationalError) as caught:
        parse_metadata(meta)
    assert {(p["code"], p["table"]) for p in caught.value.problems} == {
        ("no_primary_key", "persons"),
        ("no_key", "notes"),
    }


def test_split_by_entity_keeps_every_person_with_all_their_years() -> None:
    tables = randhie()
    train, holdout = split_by_entity(tables, metadata(), holdout_share=0.2, seed=3)
    train_people, holdout_people = set(train["persons"]["person_id"]), set(holdout["persons"]["person_id"])
    assert not train_people & holdout_people
    assert len(holdout_people) == round(0.2 * len(tables["persons"]))
    assert set(holdout["years"]["person_id"]) <= holdout_people
    assert set(train["years"]["person_id"]) <= train_people
    assert len(train["years"]) + len(holdout["years"]) == len(tables["years"])
    assert train["plans"].equals(tables["plans"]) and holdout["plans"].equals(tables["plans"])
    again, _ = split_by_entity(tables, metadata(), holdout_share=0.2, seed=3)
    assert again["years"].equals(train["years"])


def test_cardinality_shape_similarity_is_sdmetrics_ks_complement() -> None:
    from sdmetrics.multi_table import CardinalityShapeSimilarity

    real, synthetic = _small(), shuffle_children(_small())
    synthetic["years"] = synthetic["years"].iloc[::2]
    relationship = Relationship("persons", "person_id", "years", "person_id")
    ours = ks_complement(child_counts(synthetic, relationship), child_counts(real, relationship))
    meta = metadata()
    meta["relationships"] = meta["relationships"][1:]
    theirs = CardinalityShapeSimilarity.compute_breakdown(real, synthetic, meta)[("persons", "years")][
        "score"
    ]
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_the_engine_imports_without_django_or_sdv() -> None:
    code = (
        "import sys, json; import marketplace.certification.engine.relational as r; "
        "print(json.dumps(sorted(m for m in ('django', 'sdv', 'torch', 'rest_framework') if m in sys.modules)))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(output.stdout) == []


@pytest.fixture(scope="module")
def reference_sets() -> tuple[dict, dict, dict]:
    train, holdout = split_by_entity(randhie(2500), metadata(), holdout_share=0.3, seed=0)
    fit_half, fresh_half = split_by_entity(train, metadata(), holdout_share=0.5, seed=1)
    return train, holdout, {"fit": fit_half, "fresh": fresh_half}


@pytest.mark.slow
def test_children_shuffled_across_parents_lower_the_relational_score(reference_sets) -> None:
    _, holdout, halves = reference_sets
    fresh = evaluate_relational(halves["fresh"], halves["fit"], holdout, metadata()).to_dict()["relational"]
    shuffled = evaluate_relational(
        shuffle_children(halves["fresh"]), halves["fit"], holdout, metadata()
    ).to_dict()["relational"]
    assert fresh["grade"] == "A"
    assert shuffled["joint_skill"] < fresh["joint_skill"] - 0.1
    assert shuffled["score"] < fresh["score"] - 0.05
    assert shuffled["cardinality_skill"] == fresh["cardinality_skill"]
    assert set(fresh["reference"]) == {
        "referential_integrity",
        "cardinality_shape_similarity",
        "pair_trends",
        "discriminator_auc",
    }


@pytest.mark.slow
def test_ten_percent_of_entities_copied_fail_entity_level_privacy(reference_sets) -> None:
    train, holdout, _ = reference_sets
    honest = independent(train)
    progress: list[tuple[str, int]] = []
    clean = evaluate_relational(
        honest, train, holdout, metadata(), progress=lambda s, p: progress.append((s, p))
    )
    leaked = evaluate_relational(leak_entities(honest, train, 0.1), train, holdout, metadata())
    clean_level, leaked_level = clean.privacy["entity_level"], leaked.privacy["entity_level"]
    assert clean_level["entity_table"] == "persons"
    assert clean_level["passed"] is True
    assert leaked_level["passed"] is False
    assert leaked.privacy["passed"] is False
    failed = {t["name"] for t in leaked_level["tests"] if not t["passed"]}
    assert {"entity_copies", "entity_quasi_copies"} <= failed
    assert progress[-1][1] == 100 and all(0 <= p <= 100 for _, p in progress)
    assert np.all(np.diff([p for _, p in progress]) >= 0)
    document = clean.to_dict()
    assert set(document["tables"]) == {"plans", "persons", "years"}
    assert json.loads(json.dumps(document, allow_nan=False)) == document
