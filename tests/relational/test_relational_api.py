"""Relational versions through the REST API: upload a 3-table set, confirm keys, certify; bad sets refused."""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.urls import reverse
from relational_data import independent, metadata, randhie

from marketplace.catalog.models import ProductVersion, VersionFile
from marketplace.certification import signing
from marketplace.certification.engine.relational import split_by_entity

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def sets() -> dict[str, dict[str, pd.DataFrame]]:
    train, holdout = split_by_entity(randhie(900), metadata(), holdout_share=0.3, seed=0)
    return {"synthetic": independent(train), "train": train, "holdout": holdout}


def _file(name: str, frame: pd.DataFrame) -> io.BytesIO:
    handle = io.BytesIO(frame.to_csv(index=False).encode())
    handle.name = f"{name}.csv"
    return handle


def _post_draft(client: Any, product: Any, sets: dict) -> None:
    """Upload the three tables with their metadata as an unsubmitted draft (version 1)."""
    response = client.post(
        f"/api/v1/products/{product.slug}/versions/",
        _body(sets, metadata=metadata(), submit="false"),
        format="multipart",
    )
    assert response.status_code == 201, response.content


def _body(sets: dict, **extra: object) -> dict:
    body: dict = {
        role: [_file(name, frame) for name, frame in tables.items()] for role, tables in sets.items()
    }
    return body | {
        key: json.dumps(value) if isinstance(value, dict) else value for key, value in extra.items()
    }


def test_a_three_table_set_is_detected_confirmed_and_certified(
    provider, product_factory, api_client_for, sets, django_capture_on_commit_callbacks
):
    product = product_factory(provider, "RAND persons")
    client = api_client_for(provider)
    response = client.post(
        f"/api/v1/products/{product.slug}/versions/", _body(sets, submit="false"), format="multipart"
    )
    assert response.status_code == 201, response.json()
    version = ProductVersion.objects.get(product=product)
    detected = version.sdv_metadata
    assert {
        (r["parent_table_name"], r["child_table_name"], r["child_foreign_key"])
        for r in detected["relationships"]
    } == {
        ("plans", "persons", "plan_id"),
        ("persons", "years", "person_id"),
    }
    assert {t: spec["primary_key"] for t, spec in detected["tables"].items()} == {
        "plans": "plan_id",
        "persons": "person_id",
        "years": "year_id",
    }
    assert sorted((f.role, f.table_name) for f in version.files.all()) == sorted(
        (role, name) for role in ("synthetic", "train", "holdout") for name in ("plans", "persons", "years")
    )
    corrected = json.loads(json.dumps(detected))
    corrected["tables"]["persons"]["columns"]["hlthg"] = {"sdtype": "categorical"}
    url = f"/api/v1/products/{product.slug}/versions/{version.number}/"
    assert client.put(url + "metadata/", {"metadata": corrected}, format="json").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url + "submit/", {}, format="json")
    assert response.status_code == 200, response.json()
    version.refresh_from_db()
    assert version.status == "certified", version.jobs.get().error
    document = version.certificates.get().document
    synthetic_files = {f.table_name: f for f in version.files.filter(role="synthetic")}
    assert document["subject"]["artifacts"] == [
        {"name": name, "sha256": item.sha256, "rows": item.rows, "columns": item.column_count}
        for name, item in sorted(synthetic_files.items())
    ]
    relational = document["relational"]
    assert relational["referential_integrity"] == 1.0
    assert 0 <= relational["cardinality_shape_similarity"] <= 1
    assert set(relational["reference"]) >= {"referential_integrity", "cardinality_shape_similarity"}
    assert set(document["tables"]) == {"plans", "persons", "years"}
    assert document["privacy"]["entity_level"]["entity_table"] == "persons"
    assert signing.signed_bytes(document) == bytes(version.certificates.get().signed_bytes)
    page = client.get(reverse("certification:detail", args=[document["id"]]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "data-relational" in text and "<code>years.person_id</code>" in text


def _orphans(sets: dict) -> dict:
    broken = {role: dict(tables) for role, tables in sets.items()}
    years = broken["synthetic"]["years"].copy()
    years.loc[:4, "person_id"] = -1
    broken["synthetic"]["years"] = years
    return broken


def _duplicates(sets: dict) -> dict:
    broken = {role: dict(tables) for role, tables in sets.items()}
    persons = broken["train"]["persons"].copy()
    persons.loc[1:3, "person_id"] = persons.loc[0, "person_id"]
    broken["train"]["persons"] = persons
    return broken


def _missing_table(sets: dict) -> dict:
    broken = {role: dict(tables) for role, tables in sets.items()}
    del broken["holdout"]["years"]
    return broken


@pytest.mark.parametrize(
    ("breaking", "code", "table", "column", "count"),
    [
        (_orphans, "orphan_rows", "years", "person_id", 5),
        (_duplicates, "duplicate_primary_key", "persons", "person_id", 3),
        (_missing_table, "reference_tables_differ", "years", None, None),
    ],
)
def test_a_broken_set_is_refused_naming_table_column_and_count_and_leaves_nothing(
    provider, product_factory, api_client_for, sets, breaking, code, table, column, count
):
    product = product_factory(provider)
    response = api_client_for(provider).post(
        f"/api/v1/products/{product.slug}/versions/",
        _body(breaking(sets), metadata=metadata()),
        format="multipart",
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == code
    problem = body["problems"][0]
    assert problem["table"] == table
    assert problem.get("column") == column and problem.get("count") == count
    assert ProductVersion.objects.count() == 0 and VersionFile.objects.count() == 0


def test_metadata_with_a_cycle_is_refused_on_confirmation(provider, product_factory, api_client_for, sets):
    product = product_factory(provider)
    client = api_client_for(provider)
    _post_draft(client, product, sets)
    cyclic = metadata()
    cyclic["relationships"].append(
        {
            "parent_table_name": "years",
            "parent_primary_key": "year_id",
            "child_table_name": "plans",
            "child_foreign_key": "plan_id",
        }
    )
    response = client.put(
        f"/api/v1/products/{product.slug}/versions/1/metadata/", {"metadata": cyclic}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "cycle"
    assert ProductVersion.objects.get(product=product).sdv_metadata == metadata()


def test_a_swapped_stored_table_is_refused_on_confirmation_and_certifies_nothing(
    provider, product_factory, api_client_for, sets, django_capture_on_commit_callbacks
):
    product = product_factory(provider)
    client = api_client_for(provider)
    _post_draft(client, product, sets)
    version = ProductVersion.objects.get(product=product)
    item = version.files.get(role="synthetic", table_name="plans")
    store = storages[item.storage_alias]
    with store.open(item.storage_name, "rb") as handle:
        original = handle.read()
    url = f"/api/v1/products/{product.slug}/versions/1/"
    # Other tests store the same bytes under the same content-addressed name: put them back afterwards.
    store.delete(item.storage_name)
    store.save(item.storage_name, ContentFile(original[: original.rindex(b"\n", 0, -1) + 1]))
    try:
        refused = client.put(url + "metadata/", {"metadata": metadata()}, format="json")
        with django_capture_on_commit_callbacks(execute=True):
            submitted = client.post(url + "submit/", {}, format="json")
    finally:
        store.delete(item.storage_name)
        store.save(item.storage_name, ContentFile(original))
    assert refused.status_code == 409
    assert refused.json()["code"] == "integrity"
    assert submitted.status_code == 200, submitted.json()
    version.refresh_from_db()
    assert version.status == "failed"
    assert version.jobs.get().error == (
        "A stored table of this version no longer matches the SHA-256 recorded at upload; it was not used. "
        "Contact the team."
    )
    assert not version.certificates.exists()
