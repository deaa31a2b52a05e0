"""Chain of trust (receipts with verify_certificate and the verify page) and the library page."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from exchange.downloads.models import Delivery
from marketplace.certification import keys
from marketplace.certification.models import Certificate
from marketplace.certification.verify import verify_delivered_file

pytestmark = pytest.mark.django_db


def _download(client: Any, entitlement: Any, fmt: str, tmp_path: Path) -> tuple[Path, Path, Path]:
    link = client.post(f"/api/v1/entitlements/{entitlement.id}/links/", {"format": fmt}, format="json").json()
    data = tmp_path / f"copy.{fmt}"
    data.write_bytes(b"".join(client.get(link["url"].split("testserver", 1)[1]).streaming_content))
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps(client.get(f"/api/v1/deliveries/{link['delivery']}/receipt/").json()))
    certificate = tmp_path / "cert.json"
    certificate.write_text(json.dumps(Certificate.objects.get(version=entitlement.version).document))
    return data, receipt, certificate


def test_verify_certificate_accepts_a_delivered_copy_with_or_without_its_receipt(
    bought: Any, buyer: Any, api_client_for: Any, tmp_path: Path
) -> None:
    data, receipt, certificate = _download(api_client_for(buyer), bought, "jsonl", tmp_path)
    out = io.StringIO()
    call_command(
        "verify_certificate", str(certificate), "--data", str(data), "--receipt", str(receipt), stdout=out
    )
    assert "is a delivered copy of artifact 'people'" in out.getvalue()
    out = io.StringIO()
    call_command("verify_certificate", str(certificate), "--data", str(data), stdout=out)  # found by its hash
    assert "is a delivered copy of artifact 'people'" in out.getvalue()
    data.write_bytes(data.read_bytes() + b"\n")
    with pytest.raises(SystemExit) as refused:
        call_command(
            "verify_certificate",
            str(certificate),
            "--data",
            str(data),
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
    assert refused.value.code == 1


@pytest.mark.parametrize("tamper", ["file", "receipt_hash", "signature"])
def test_delivered_copy_check_fails_when_anything_is_altered(
    bought: Any, buyer: Any, api_client_for: Any, tmp_path: Path, tamper: str
) -> None:
    data, receipt_path, certificate_path = _download(api_client_for(buyer), bought, "csv", tmp_path)
    receipt = json.loads(receipt_path.read_text())
    certificate = json.loads(certificate_path.read_text())
    if tamper == "file":
        data.write_bytes(data.read_bytes() + b"\n")
    elif tamper == "receipt_hash":
        receipt["receipt"]["delivered_sha256"] = "0" * 64
    else:
        receipt["receipt"]["rows"] = 1
    match = verify_delivered_file(certificate, receipt, keys.keys_document(), data)
    assert not match.ok
    assert match.reasons


def test_standalone_verifier_accepts_receipt(
    bought: Any, buyer: Any, api_client_for: Any, tmp_path: Path
) -> None:
    from marketplace.certification.verify import main

    data, receipt, certificate = _download(api_client_for(buyer), bought, "parquet", tmp_path)
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps(keys.keys_document()))
    assert (
        main([str(certificate), "--keys", str(keys_file), "--data", str(data), "--receipt", str(receipt)])
        == 0
    )
    assert main([str(certificate), "--keys", str(keys_file), "--data", str(data)]) == 1


def test_verify_page_accepts_receipt(
    bought: Any, buyer: Any, api_client_for: Any, client: Any, tmp_path: Path
) -> None:
    data, receipt, certificate = _download(api_client_for(buyer), bought, "csv", tmp_path)
    with certificate.open("rb") as c, data.open("rb") as d, receipt.open("rb") as r:
        response = client.post("/certificates/verify/", {"certificate": c, "data": d, "receipt": r})
    assert response.status_code == 200
    assert "✔ Valid" in response.content.decode()


def test_library_lists_files_formats_curl_and_updates(
    bought: Any, buyer: Any, provider: Any, certified_table_factory: Any, client: Any, api_client_for: Any
) -> None:
    from marketplace.accounts.services import api_token_for

    newer = certified_table_factory(provider, product=bought.version.product)
    client.force_login(buyer)
    page = client.get("/library/").content.decode()
    token = api_token_for(buyer)
    assert bought.id in page
    assert (
        f'curl -fL -H "Authorization: Token $SYNTHEX_TOKEN" -o people.parquet http://testserver/api/v1/entitlements/{bought.id}/files/'
        in page
    )
    # The token itself is never printed on the library page: one link shows it on request (issue 17 #11).
    assert token not in page
    assert page.count('href="/accounts/token/"') == 1
    assert f"Update: version {newer.number} is available and included in your license." in page
    assert 'href="/library/"' in page
    file_id = newer.files.get().pk
    response = client.post(f"/library/{bought.id}/files/{file_id}/csv/")
    assert response.status_code == 302
    assert client.get(response["Location"]).status_code == 200
    assert Delivery.objects.get().version_file_id == file_id


def test_library_update_not_included_under_research_license(
    provider: Any, buyer: Any, certified_table_factory: Any, entitlement_factory: Any, client: Any
) -> None:
    version = certified_table_factory(provider, license_code="research")
    entitlement = entitlement_factory(buyer, version, "research")
    newer = certified_table_factory(provider, product=version.product)
    client.force_login(buyer)
    page = client.get("/library/").content.decode()
    assert (
        f"A newer version (v{newer.number}) is available; your Research license does not include it." in page
    )
    response = client.post(f"/library/{entitlement.id}/files/{newer.files.get().pk}/csv/")
    assert response.status_code == 302 and response["Location"] == "/library/"
    assert Delivery.objects.count() == 0
