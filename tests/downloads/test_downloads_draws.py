"""Generator draws delivered like catalog files: fingerprinted copies, signed receipts, links, ledger events.

Draws are made the cheap way: a ready generator row without a model and a succeeded ``SampleDraw`` whose
Parquet file (1,000 real Adult rows) is stored directly; no model is fitted or run.
"""

from __future__ import annotations

import hashlib
import io
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import call_command
from django.db import transaction

from exchange.downloads.models import Delivery, Download
from exchange.ledger.models import LedgerEvent
from exchange.ledger.selectors import entries_for
from marketplace.certification.keys import keys_document
from marketplace.certification.signing import verify_document_signature
from marketplace.generators.models import GeneratorModel, SampleDraw

pytestmark = pytest.mark.django_db
_numbers = itertools.count(1)


@pytest.fixture
def generator_version(provider: Any, product_factory: Callable[..., Any]) -> Any:
    """A certified generator version with a ready generator row (no stored model: nothing is sampled)."""
    from marketplace.catalog.services import LicensePrice
    from marketplace.generators.services import setup

    product = product_factory(
        provider, "Census generator", kind="generator", licenses=[LicensePrice("standard", 4900, "USD")]
    )
    with transaction.atomic():
        version = setup.new_generator_version(product, provider)
        version.status = "certified"
        version.save()
        GeneratorModel.objects.create(
            version=version,
            kind=GeneratorModel.Kind.UPLOADED,
            synthesizer="uploaded",
            status=GeneratorModel.Status.READY,
            sdv_metadata={},
            row_quotas={"standard": 5000},
        )
    return version


@pytest.fixture
def draw_rows(adult_rows: pd.DataFrame) -> bytes:
    """The Parquet bytes every draw in these tests holds (the same seed gives the same file)."""
    sink = io.BytesIO()
    adult_rows.to_parquet(sink, index=False)
    return sink.getvalue()


@pytest.fixture
def succeeded_draw(
    generator_version: Any, entitlement_factory: Callable[..., Any], draw_rows: bytes
) -> Callable[..., SampleDraw]:
    """``make(buyer, status=...)``: an entitlement of ``buyer`` to the generator and a draw under it."""

    def make(buyer: Any, status: str = SampleDraw.Status.SUCCEEDED) -> SampleDraw:
        entitlement = entitlement_factory(buyer, generator_version)
        number = next(_numbers)
        done = status == SampleDraw.Status.SUCCEEDED
        name = (
            storages["default"].save(f"draws/test-{number}.parquet", ContentFile(draw_rows)) if done else ""
        )
        return SampleDraw.objects.create(
            id=f"draw_test{number}",
            generator=generator_version.generator,
            entitlement_id=entitlement.id,
            buyer=buyer,
            rows=1000,
            seed=7,
            seed_sha256="0" * 64,
            commit_hook="",
            status=status,
            storage_name=name,
            sha256=hashlib.sha256(draw_rows).hexdigest() if done else "",
            size_bytes=len(draw_rows) if done else None,
        )

    return make


def _body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def _download(client: Any, draw: SampleDraw, query: str = "") -> Any:
    return client.get(f"/api/v1/entitlements/{draw.entitlement_id}/samples/{draw.id}/?download=1{query}")


def test_a_draw_download_is_a_marked_copy_that_trace_leak_pins_on_its_buyer(
    buyer: Any,
    user_factory: Any,
    api_client_for: Any,
    succeeded_draw: Callable[..., SampleDraw],
    draw_rows: bytes,
    adult_rows: pd.DataFrame,
    tmp_path: Path,
) -> None:
    mine = succeeded_draw(buyer)
    others = [succeeded_draw(user_factory()) for _ in range(2)]
    copies = {}
    for draw in [mine, *others]:
        response = _download(api_client_for(draw.buyer), draw)
        assert response.status_code == 200
        assert response["Content-Disposition"] == f'attachment; filename="{draw.id}.parquet"'
        copies[draw.id] = _body(response)
    frame = pd.read_parquet(io.BytesIO(copies[mine.id]))
    assert 1000 - 60 <= len(frame) < len(adult_rows)  # a keyed ~4 % of the rows left out, values untouched
    assert list(frame.columns) == list(adult_rows.columns)
    assert copies[mine.id] != draw_rows
    assert frame.merge(adult_rows, how="left", indicator=True)["_merge"].eq("both").all()
    assert len(set(copies.values())) == 3
    leaked = frame.sample(frac=0.5, random_state=1)
    path = tmp_path / "found-on-a-forum.csv"
    leaked.to_csv(path, index=False)
    out = io.StringIO()
    call_command("trace_leak", str(path), stdout=out)
    assert f"LEAKED BY: entitlement {mine.entitlement_id} buyer {buyer.username}" in out.getvalue()
    assert all(other.entitlement_id not in out.getvalue() for other in others)


def test_a_served_draw_is_a_download_on_the_ledger_naming_the_draw(
    buyer: Any, api_client_for: Any, succeeded_draw: Callable[..., SampleDraw]
) -> None:
    draw = succeeded_draw(buyer)
    _body(_download(api_client_for(buyer), draw))
    served = Download.objects.get()
    delivery = Delivery.objects.get()
    assert (served.outcome, served.delivery_id, delivery.draw_id, delivery.version_file_id) == (
        "served",
        delivery.id,
        draw.id,
        None,
    )
    [event] = entries_for("draw", draw.id)
    assert (event.kind, event.index) == ("download", served.ledger_index)
    assert event.refs == {
        "download": served.id,
        "delivery": delivery.id,
        "entitlement": draw.entitlement_id,
        "draw": draw.id,
        "sha256": delivery.sha256,
        "user": str(buyer.pk),
        "range": f"0-{delivery.size_bytes - 1}",
    }
    [issued] = LedgerEvent.objects.filter(kind="delivery.issued")
    assert issued.refs["draw_sha256"] == draw.sha256
    assert issued.refs["delivered_sha256"] == delivery.sha256


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_link_to_a_draw_serves_the_copy_its_signed_receipt_binds_to_the_draw(
    buyer: Any, api_client_for: Any, succeeded_draw: Callable[..., SampleDraw], fmt: str
) -> None:
    draw = succeeded_draw(buyer)
    client = api_client_for(buyer)
    link = client.post(
        f"/api/v1/entitlements/{draw.entitlement_id}/links/", {"format": fmt, "draw": draw.id}, format="json"
    ).json()
    assert (link["draw"], link["file"], link["format"]) == (draw.id, None, fmt)
    assert 1000 - 60 <= link["rows"] < 1000
    body = _body(client.get(link["url"].split("testserver", 1)[1], HTTP_RANGE="bytes=0-"))
    assert hashlib.sha256(body).hexdigest() == link["sha256"]
    receipt = client.get(f"/api/v1/deliveries/{link['delivery']}/receipt/").json()
    assert verify_document_signature(receipt, keys_document()).ok
    assert receipt["receipt"]["draw"] == draw.id
    assert receipt["receipt"]["draw_sha256"] == draw.sha256
    assert receipt["receipt"]["delivered_sha256"] == link["sha256"]
    assert "certified_sha256" not in receipt["receipt"]
    tampered = {**receipt, "receipt": {**receipt["receipt"], "draw_sha256": "0" * 64}}
    assert not verify_document_signature(tampered, keys_document()).ok


def test_the_same_draw_copy_is_cached_per_format(
    buyer: Any, api_client_for: Any, succeeded_draw: Callable[..., SampleDraw]
) -> None:
    draw = succeeded_draw(buyer)
    client = api_client_for(buyer)
    first = _body(_download(client, draw, "&as=csv"))
    again = _body(_download(client, draw, "&as=csv"))
    assert first == again
    assert Delivery.objects.count() == 1
    assert LedgerEvent.objects.filter(kind="delivery.issued").count() == 1
    assert [e.kind for e in entries_for("draw", draw.id)] == ["download", "download"]


def test_someone_elses_draw_is_refused_and_nothing_is_delivered(
    buyer: Any, user_factory: Any, api_client_for: Any, succeeded_draw: Callable[..., SampleDraw]
) -> None:
    theirs = succeeded_draw(user_factory())
    mine = succeeded_draw(buyer)
    client = api_client_for(buyer)
    direct = _download(client, theirs)
    assert direct.status_code == 404
    via_link = client.post(
        f"/api/v1/entitlements/{mine.entitlement_id}/links/",
        {"format": "csv", "draw": theirs.id},
        format="json",
    )
    assert (via_link.status_code, via_link.json()["code"]) == (404, "draw_not_found")
    assert Delivery.objects.count() == 0
    assert list(Download.objects.values_list("outcome", "reason")) == [("refused", "draw_not_found")]
    assert entries_for("draw", theirs.id) == []


@pytest.mark.parametrize(
    ("status", "query", "code", "http"),
    [
        (SampleDraw.Status.RUNNING, "", "draw_not_ready", 409),
        (SampleDraw.Status.FAILED, "", "draw_not_ready", 409),
        (SampleDraw.Status.SUCCEEDED, "&as=xlsx", "invalid_format", 400),
    ],
)
def test_unfinished_draws_and_unknown_formats_are_refused(
    buyer: Any,
    api_client_for: Any,
    succeeded_draw: Callable[..., SampleDraw],
    status: str,
    query: str,
    code: str,
    http: int,
) -> None:
    draw = succeeded_draw(buyer, status=status)
    response = _download(api_client_for(buyer), draw, query)
    assert (response.status_code, response.json()["code"]) == (http, code)
    assert Delivery.objects.count() == 0
    assert list(Download.objects.values_list("outcome", "reason")) == [("refused", code)]


def test_a_file_and_a_draw_together_are_refused(
    buyer: Any, api_client_for: Any, succeeded_draw: Callable[..., SampleDraw]
) -> None:
    draw = succeeded_draw(buyer)
    response = api_client_for(buyer).post(
        f"/api/v1/entitlements/{draw.entitlement_id}/links/",
        {"format": "csv", "draw": draw.id, "file": 1},
        format="json",
    )
    assert response.status_code == 400
    assert Delivery.objects.count() == 0
