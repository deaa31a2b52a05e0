"""``synthex download``: a bought version's file, and a partial copy resumed with an HTTP Range request."""

from __future__ import annotations

import hashlib

import blake3
import pytest

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def bought(cli, local_payments, provider, buyer, token_for, product_factory, version_factory):
    """A certified dataset version with real stored files, bought by ``buyer``; returns the entitlement id."""
    from django.utils import timezone

    from marketplace.certification.services import issue_certificate

    product = product_factory(provider, "Downloadable")
    product.is_listed, product.published_at = True, timezone.now()
    product.save(update_fields=["is_listed", "published_at"])
    version = version_factory(product, provider)
    evaluation = {
        "quality": {"score": 0.9, "grade": "A", "column_shapes": 0.9, "column_pair_trends": 0.9},
        "plausibility": {
            "score": 1.0,
            "grade": "A",
            "rows_violating_any": 0.0,
            "holdout_rows_violating_any": 0.0,
            "rules": [],
        },
        "privacy": {"grade": "A", "passed": True, "exact_match_rate": 0.0, "dcr_share": 0.5},
        "charts": {},
        "parameters": {},
        "engine": {"name": "synthex-certify", "version": "test"},
    }
    issue_certificate(version, evaluation, list(version.files.filter(role="synthetic")))
    order = cli("buy", version.pk, "--license", "standard", "--json", token=token_for(buyer))
    assert order.code == 0, order.err + order.out
    return order.json()["entitlement"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_download_and_resume_with_range(cli, bought, buyer, token_for, tmp_path, fmt):
    from exchange.downloads.models import Delivery, Download

    token = token_for(buyer)
    first = tmp_path / f"whole.{fmt}"
    whole = cli("download", bought, "--format", fmt, "-o", first, "--json", token=token)
    assert whole.code == 0, whole.err
    body = whole.json()
    payload = first.read_bytes()
    assert (body["sha256"], body["bytes"], body["resumed_from_byte"]) == (
        hashlib.sha256(payload).hexdigest(),
        len(payload),
        0,
    )
    # Checked with the BLAKE3 the server computed with the copy's SHA-256 when it made it.
    assert body["checked_with"] == "blake3"
    assert Delivery.objects.get(pk=body["delivery"]).blake3 == blake3.blake3(payload).hexdigest()
    # A copy cut off half way (as by a killed process) is completed with a Range request.
    second = tmp_path / f"resumed.{fmt}"
    half = len(payload) // 2
    (tmp_path / f"resumed.{fmt}.{body['sha256'][:16]}.part").write_bytes(payload[:half])
    resumed = cli("download", bought, "--format", fmt, "-o", second, "--json", token=token)
    assert resumed.code == 0
    assert (resumed.json()["resumed_from_byte"], resumed.json()["sent_bytes"]) == (half, len(payload) - half)
    assert second.read_bytes() == payload
    served = Download.objects.filter(outcome="served")
    assert sorted((d.range_start, d.range_end) for d in served) == [
        (0, len(payload) - 1),
        (half, len(payload) - 1),
    ]
    # --sha256 checks the hash the receipt signs instead.
    again = cli("download", bought, "--format", fmt, "-o", first, "--sha256", "--json", token=token)
    assert again.code == 0, again.err
    assert again.json()["checked_with"] == "sha256"


def test_download_of_someone_elses_entitlement_is_refused(cli, bought, provider, token_for, tmp_path):
    refused = cli("download", bought, "-o", tmp_path / "x.parquet", token=token_for(provider))
    assert refused.code == 3
    assert "(HTTP 404, code not_found)" in refused.err
    assert list(tmp_path.glob("x.parquet*")) == []


@pytest.mark.parametrize("offered", ["blake3", "none"])
def test_a_copy_that_differs_from_the_announced_hash_is_not_kept(
    cli, bought, buyer, token_for, tmp_path, offered
):
    """The same refusal whichever hash checks the transfer: a link without BLAKE3 (a copy made before the
    server offered it) is checked with the SHA-256."""
    from exchange.downloads.models import Delivery

    token = token_for(buyer)
    good = cli("download", bought, "--format", "csv", "-o", tmp_path / "good.csv", "--json", token=token)
    assert good.code == 0, good.err
    delivery = Delivery.objects.get(pk=good.json()["delivery"])
    wrong = "0" * 64
    if offered == "blake3":
        Delivery.objects.filter(pk=delivery.pk).update(blake3=wrong)
    else:
        Delivery.objects.filter(pk=delivery.pk).update(blake3="")
        plain = cli(
            "download", bought, "--format", "csv", "-o", tmp_path / "plain.csv", "--json", token=token
        )
        assert plain.code == 0, plain.err
        assert plain.json()["checked_with"] == "sha256"
        Delivery.objects.filter(pk=delivery.pk).update(sha256=wrong)
    bad = cli("download", bought, "--format", "csv", "-o", tmp_path / "bad.csv", token=token)
    assert bad.code == 1
    assert f"not {wrong}; download it again" in bad.err
    assert ("BLAKE3" if offered == "blake3" else "SHA-256") in bad.err
    assert list(tmp_path.glob("bad.csv*")) == []


def test_certificate_verify_accepts_the_buyers_own_copy_by_its_hash(cli, bought, buyer, token_for, tmp_path):
    """Issue 17 #5: a bought copy (fingerprinted, another format) verifies without its receipt: the CLI
    looks the signed delivery receipt up by the copy's SHA-256."""
    from marketplace.certification.models import Certificate

    copy = tmp_path / "people.csv"
    downloaded = cli("download", bought, "--format", "csv", "-o", copy, "--json", token=token_for(buyer))
    assert downloaded.code == 0, downloaded.err
    certificate = tmp_path / "cert.json"
    got = cli(
        "certificate", "get", Certificate.objects.get(version__entitlements__id=bought).id, "-o", certificate
    )
    assert got.code == 0, got.err
    checked = cli("certificate", "verify", certificate, "--data", copy, "--json")
    assert checked.code == 0, checked.err + checked.out
    [file] = checked.json()["files"]
    assert (file["artifact"], file["delivery"]) == ("people", downloaded.json()["delivery"])
    copy.write_bytes(copy.read_bytes() + b"\n")
    altered = cli("certificate", "verify", certificate, "--data", copy)
    assert altered.code == 1
    assert "does not match any artifact" in altered.err
