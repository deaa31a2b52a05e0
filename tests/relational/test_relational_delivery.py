"""Delivering table sets: every table of a relational version (or of an HMA draw) in one zip, fingerprinted by
entity, with one signed receipt; refusals deliver nothing."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any

import pandas as pd
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from hma_data import certified_relational_version, two_tables

from exchange.delivery.services import grant_entitlement, revoke_entitlement
from exchange.downloads.models import Delivery
from exchange.ledger.models import LedgerEvent
from marketplace.catalog.models import FileRole, VersionFile
from marketplace.generators import hma
from marketplace.generators.models import GeneratorModel, SampleDraw

pytestmark = pytest.mark.django_db


@pytest.fixture
def certified_set(provider: Any, product_factory: Any, tmp_path: Any) -> Any:
    return certified_relational_version(provider, product_factory(provider, "RAND persons"), tmp_path)


def _synthetic(version: Any) -> dict[str, pd.DataFrame]:
    return {
        f.table_name: pd.read_csv(storages[f.storage_alias].path(f.storage_name))
        for f in version.files.filter(role=FileRole.SYNTHETIC)
    }


def _fetch(client: Any, url: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 200, response
    assert response["Content-Type"] == "application/zip"
    return b"".join(response.streaming_content)


def _read(member: bytes, fmt: str) -> pd.DataFrame:
    if fmt == "csv":
        return pd.read_csv(io.BytesIO(member))
    if fmt == "jsonl":
        return pd.read_json(io.BytesIO(member), lines=True)
    return pd.read_parquet(io.BytesIO(member))


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_a_buyer_gets_every_table_in_one_zip_of_whole_entities_with_one_receipt(
    certified_set: Any, buyer: Any, api_client_for: Any, fmt: str
) -> None:
    entitlement = grant_entitlement(
        buyer=buyer, version=certified_set, license_code="standard", source="order:o1"
    )
    client = api_client_for(buyer)
    link = client.post(f"/api/v1/entitlements/{entitlement.id}/sets/", {"format": fmt}, format="json")
    assert link.status_code == 201, link.json()
    body = link.json()
    assert body["filename"] == f"{certified_set.product.slug}-v1.{fmt}.zip"
    payload = _fetch(client, body["url"])
    assert hashlib.sha256(payload).hexdigest() == body["sha256"]
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        assert sorted(archive.namelist()) == [f"{name}.{fmt}" for name in ("persons", "plans", "years")]
        copy = {name.rsplit(".", 1)[0]: _read(archive.read(name), fmt) for name in archive.namelist()}
    source = _synthetic(certified_set)
    assert 0 < len(source["persons"]) - len(copy["persons"]) <= 0.1 * len(source["persons"])
    assert len(copy["plans"]) == len(source["plans"])  # a lookup table is delivered whole
    assert copy["years"]["person_id"].isin(copy["persons"]["person_id"]).all()  # no orphan
    kept_years = source["years"][source["years"]["person_id"].isin(copy["persons"]["person_id"])]
    assert len(copy["years"]) == len(kept_years)  # an entity comes with every row below it
    merged = copy["persons"].merge(source["persons"], on="person_id", suffixes=("", "_source"))
    assert len(merged) == len(copy["persons"])
    assert (merged["fmde"] - merged["fmde_source"]).abs().max() < 1e-9  # values as certified

    [delivery] = Delivery.objects.filter(entitlement=entitlement)
    receipt = delivery.receipt["receipt"]
    certified = {f.table_name: f.sha256 for f in certified_set.files.filter(role=FileRole.SYNTHETIC)}
    assert [(t["name"], t["certified_sha256"]) for t in receipt["tables"]] == sorted(certified.items())
    assert [t["rows"] for t in receipt["tables"]] == [len(copy[n]) for n in ("persons", "plans", "years")]
    assert (receipt["delivered_sha256"], receipt["transformation"]["method"]) == (
        body["sha256"],
        "entity-subset",
    )
    assert receipt["certificate"] == certified_set.certificates.get().id
    event = LedgerEvent.objects.get(kind="delivery.issued")
    assert event.refs["delivered_sha256"] == body["sha256"]
    again = client.post(f"/api/v1/entitlements/{entitlement.id}/sets/", {"format": fmt}, format="json").json()
    assert (again["delivery"], Delivery.objects.count()) == (body["delivery"], 1)


def test_two_buyers_get_different_copies_and_a_leaked_entity_table_names_its_buyer(
    certified_set: Any, buyer: Any, user_factory: Any, api_client_for: Any
) -> None:
    from exchange.downloads import formats
    from exchange.downloads.selectors import trace_table

    copies = {}
    for person in (buyer, user_factory("second-buyer")):
        entitlement = grant_entitlement(
            buyer=person, version=certified_set, license_code="standard", source=f"order:{person.pk}"
        )
        client = api_client_for(person)
        body = client.post(
            f"/api/v1/entitlements/{entitlement.id}/sets/", {"format": "csv"}, format="json"
        ).json()
        with zipfile.ZipFile(io.BytesIO(_fetch(client, body["url"]))) as archive:
            copies[entitlement.id] = archive.read("persons.csv")
    assert len(set(copies.values())) == 2
    leaked_by = next(iter(copies))
    import pathlib
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "leak.csv"
        path.write_bytes(copies[leaked_by])
        suspects, _ = trace_table(formats.read_any(path))
    assert suspects[0].entitlement_id == leaked_by


def test_refused_set_requests_deliver_nothing(
    certified_set: Any, buyer: Any, api_client_for: Any, provider: Any, product_factory: Any
) -> None:
    entitlement = grant_entitlement(
        buyer=buyer, version=certified_set, license_code="standard", source="order:o2"
    )
    client = api_client_for(buyer)
    url = f"/api/v1/entitlements/{entitlement.id}/sets/"
    bad_format = client.post(url, {"format": "xlsx"}, format="json")
    assert bad_format.status_code == 400
    missing = client.post(url, {"format": "csv", "version": 7}, format="json")
    assert (missing.status_code, missing.json()["code"]) == (404, "version_not_found")
    curl = client.get(f"/api/v1/entitlements/{entitlement.id}/sets/1.xlsx")
    assert (curl.status_code, curl.json()["code"]) == (400, "invalid_format")
    revoke_entitlement(entitlement, reason="refund", idempotency_key="refund-1")
    revoked = client.post(url, {"format": "csv"}, format="json")
    assert (revoked.status_code, revoked.json()["code"]) == (403, "revoked")
    assert Delivery.objects.count() == 0


def test_a_single_table_version_is_not_a_set(
    buyer: Any, api_client_for: Any, certified_factory_single: Any
) -> None:
    entitlement = grant_entitlement(
        buyer=buyer, version=certified_factory_single, license_code="standard", source="order:o3"
    )
    response = api_client_for(buyer).post(
        f"/api/v1/entitlements/{entitlement.id}/sets/", {"format": "csv"}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (400, "not_a_table_set")
    assert Delivery.objects.count() == 0


@pytest.fixture
def certified_factory_single(provider: Any, product_factory: Any) -> Any:
    from marketplace.catalog.models import ProductVersion

    version = ProductVersion.objects.create(
        product=product_factory(provider, "One table"), number=1, status="certified", created_by=provider
    )
    storages["default"].save("files/one.csv", ContentFile(b"age\n1\n2\n"))
    VersionFile.objects.create(
        version=version,
        role="synthetic",
        table_name="one",
        original_filename="one.csv",
        format="csv",
        storage_name="files/one.csv",
        sha256=hashlib.sha256(b"age\n1\n2\n").hexdigest(),
        size_bytes=8,
        rows=2,
        column_count=1,
    )
    return version


# -- a draw from an HMA generator --------------------------------------------------------------------------------


def test_an_hma_draw_is_delivered_as_a_zip_cut_back_to_the_entities_asked_for(
    provider: Any, buyer: Any, product_factory: Any, api_client_for: Any
) -> None:
    from marketplace.catalog.models import ProductVersion

    tables, described = two_tables(120)
    version = ProductVersion.objects.create(
        product=product_factory(provider, "RAND generator", kind="generator"),
        number=1,
        status="certified",
        created_by=provider,
        sdv_metadata=described,
    )
    generator = GeneratorModel.objects.create(
        version=version,
        kind="fitted",
        synthesizer="hma",
        status="ready",
        sdv_metadata=described,
        parameters={"entity_table": "persons"},
    )
    entitlement = grant_entitlement(buyer=buyer, version=version, license_code="standard", source="order:o4")
    buffer = io.BytesIO()
    hma.write_set(tables, buffer)
    stored = storages["default"].save("samples/draw_set.zip", ContentFile(buffer.getvalue()))
    draw = SampleDraw.objects.create(
        id="draw_set",
        generator=generator,
        entitlement_id=entitlement.id,
        buyer=buyer,
        rows=100,
        seed=1,
        seed_sha256="0" * 64,
        commit_hook="exchange.delivery.samples.consume_quota",
        status="succeeded",
        storage_name=stored,
        sha256=hashlib.sha256(buffer.getvalue()).hexdigest(),
        size_bytes=len(buffer.getvalue()),
    )
    client = api_client_for(buyer)
    response = client.get(f"/api/v1/entitlements/{entitlement.id}/samples/{draw.id}/?download=1&as=jsonl")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="draw_set.jsonl.zip"'
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        persons = pd.read_json(io.BytesIO(archive.read("persons.jsonl")), lines=True)
        years = pd.read_json(io.BytesIO(archive.read("years.jsonl")), lines=True)
    assert len(persons) == 100
    assert years["person_id"].isin(persons["person_id"]).all()
    expected = tables["years"][tables["years"]["person_id"].isin(persons["person_id"])]
    assert len(years) == len(expected)
    receipt = Delivery.objects.get(draw=draw).receipt["receipt"]
    assert (receipt["draw"], receipt["draw_sha256"], receipt["rows"]) == (draw.id, draw.sha256, 100)
    assert json.dumps(receipt["tables"]).count("delivered_sha256") == 2


def test_the_library_page_offers_the_whole_set_and_its_button_delivers_it(
    certified_set: Any, buyer: Any, client: Any
) -> None:
    entitlement = grant_entitlement(
        buyer=buyer, version=certified_set, license_code="standard", source="order:o5"
    )
    client.force_login(buyer)
    page = client.get("/library/").content.decode()
    assert f"/library/{entitlement.id}/sets/1/parquet/" in page
    response = client.post(f"/library/{entitlement.id}/sets/1/parquet/")
    assert response.status_code == 302
    served = client.get(response["Location"])
    with zipfile.ZipFile(io.BytesIO(b"".join(served.streaming_content))) as archive:
        assert sorted(archive.namelist()) == ["persons.parquet", "plans.parquet", "years.parquet"]
    refused = client.post(f"/library/{entitlement.id}/sets/1/xlsx/", follow=True)
    assert "Unknown format" in refused.content.decode()
    assert Delivery.objects.count() == 1
