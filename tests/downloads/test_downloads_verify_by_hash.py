"""A buyer's own copy verifies from its hash alone: the verify page, the API and the public receipt lookup
find its signed delivery receipt without being given it (issue 17 #5)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from marketplace.certification import keys
from marketplace.certification.models import Certificate
from marketplace.certification.signing import verify_document_signature

pytestmark = pytest.mark.django_db


def _copy(client: Any, entitlement: Any, fmt: str) -> tuple[dict[str, Any], bytes]:
    link = client.post(f"/api/v1/entitlements/{entitlement.id}/links/", {"format": fmt}, format="json").json()
    return link, b"".join(client.get(link["url"].split("testserver", 1)[1]).streaming_content)


def _certificate(entitlement: Any) -> bytes:
    return json.dumps(Certificate.objects.get(version=entitlement.version).document).encode()


def test_the_verify_page_accepts_the_buyers_copy_without_its_receipt(
    client: Any, bought: Any, buyer: Any, api_client_for: Any
) -> None:
    link, body = _copy(api_client_for(buyer), bought, "csv")
    response = client.post(
        "/certificates/verify/",
        {
            "certificate": SimpleUploadedFile("cert.json", _certificate(bought)),
            "data": SimpleUploadedFile("people.csv", body),
        },
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "✔ Valid" in page
    assert "your delivered copy of artifact people" in page
    assert f"delivery {link['delivery']}" in page
    assert f"{link['rows']} of the 1000 certified rows, values unchanged" in page
    altered = client.post(
        "/certificates/verify/",
        {
            "certificate": SimpleUploadedFile("cert.json", _certificate(bought)),
            "data": SimpleUploadedFile("people.csv", body + b"\n"),
        },
    ).content.decode()
    assert "✘ Not valid" in altered
    assert "people.csv (SHA-256" in altered and "/tmp" not in altered


def test_the_verify_api_finds_the_delivery_by_the_copys_hash(
    bought: Any, buyer: Any, api_client_for: Any
) -> None:
    link, body = _copy(api_client_for(buyer), bought, "parquet")
    answer = api_client_for(None).post(
        "/api/v1/certificates/verify/",
        {
            "certificate": SimpleUploadedFile("cert.json", _certificate(bought)),
            "data": SimpleUploadedFile("people.parquet", body),
        },
        format="multipart",
    )
    result = answer.json()
    assert answer.status_code == 200, result
    assert (result["valid"], result["reasons"]) == (True, [])
    [file] = result["files"]
    assert (file["matches"], file["artifact"], file["sha256"]) == (True, "people", link["sha256"])
    assert file["delivery"]["delivery"] == link["delivery"]
    assert file["delivery"]["transformation"]["rows_omitted"] == 1000 - link["rows"]


def test_anyone_holding_a_copy_gets_its_signed_receipt_by_hash(
    bought: Any, buyer: Any, api_client_for: Any
) -> None:
    link, _ = _copy(api_client_for(buyer), bought, "jsonl")
    anonymous = api_client_for(None)
    receipt = anonymous.get(f"/api/v1/deliveries/by-sha256/{link['sha256']}/receipt/").json()
    assert verify_document_signature(receipt, keys.keys_document()).ok
    body = receipt["receipt"]
    assert (body["delivery"], body["delivered_sha256"]) == (link["delivery"], link["sha256"])
    transformation = body["transformation"]
    assert (transformation["method"], transformation["source_rows"]) == ("row-subset", 1000)
    assert transformation["rows_omitted"] + body["rows"] == 1000
    assert "figures hold on this uniform subset" in transformation["statement"]
    missing = anonymous.get(f"/api/v1/deliveries/by-sha256/{'0' * 64}/receipt/")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_a_delivery")


def test_verify_certificate_command_needs_no_receipt(
    bought: Any, buyer: Any, api_client_for: Any, tmp_path: Any
) -> None:
    from django.core.management import call_command

    _, body = _copy(api_client_for(buyer), bought, "csv")
    (tmp_path / "cert.json").write_bytes(_certificate(bought))
    (tmp_path / "people.csv").write_bytes(body)
    out = io.StringIO()
    call_command(
        "verify_certificate", str(tmp_path / "cert.json"), "--data", str(tmp_path / "people.csv"), stdout=out
    )
    assert "is a delivered copy of artifact 'people'" in out.getvalue()
