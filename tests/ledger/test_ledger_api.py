"""The ledger API and pages: who sees what, proofs that verify, and an export the stand-alone verifier accepts."""

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from exchange.ledger import services, verify
from exchange.ledger.checkpoint import parse_checkpoint_body
from exchange.ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
from exchange.ledger.models import LogLeaf
from marketplace.certification import keys
from marketplace.certification.signing import load_published_keys

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def auditor(user_factory):
    return user_factory("auditor", is_auditor=True)


@pytest.fixture
def ledger(sale):
    for number in range(1, 6):
        sale(number)
    first = services.publish_tree_head()
    for number in range(6, 9):
        sale(number)
    services.record_event(idempotency_key="dl:1", kind="download", refs={"order": "ord_1"})
    second = services.publish_tree_head()
    return first, second


def test_head_is_404_before_the_first_head(db, api_client_for):
    response = api_client_for(None).get("/api/v1/ledger/head/")
    assert response.status_code == 404
    assert response.json() == {"detail": "No tree head has been published yet.", "code": "no_tree_head"}


def test_head_and_history_are_public(ledger, api_client_for):
    first, second = ledger
    client = api_client_for(None)
    head = client.get("/api/v1/ledger/head/").json()
    assert (head["id"], head["size"], head["checkpoint"]) == (second.pk, second.size, second.checkpoint)
    assert head["root"] == bytes(second.root).hex()
    history = client.get("/api/v1/ledger/heads/").json()
    assert [item["size"] for item in history["results"]] == [first.size, second.size]
    assert client.get("/api/v1/ledger/counts/").json() == {
        "entries": second.size,
        "accounts": 5,
        "transactions": 8,
        "events": 1,
        "tree_heads": 2,
    }


@pytest.mark.parametrize(
    ("who", "status"), [("anonymous", 401), ("buyer", 403), ("auditor", 200), ("staff", 200)]
)
def test_entries_are_for_auditors_and_staff(ledger, api_client_for, user_factory, who, status):
    user = None
    if who != "anonymous":
        user = user_factory(who, is_auditor=who == "auditor", is_staff=who == "staff")
    response = api_client_for(user).get("/api/v1/ledger/entries/5/")
    assert response.status_code == status
    if status == 200:
        leaf = LogLeaf.objects.get(index=5)
        assert response.json() == {
            "index": 5,
            "entry_type": "transaction",
            "leaf": base64.b64encode(bytes(leaf.canonical)).decode(),
            "leaf_hash": bytes(leaf.leaf_hash).hex(),
        }


def test_inclusion_proof_verifies_against_the_signed_head(ledger, api_client_for, auditor):
    _first, second = ledger
    client = api_client_for(auditor)
    for index in range(second.size):
        leaf = base64.b64decode(client.get(f"/api/v1/ledger/entries/{index}/").json()["leaf"])
        proof = client.get(f"/api/v1/ledger/entries/{index}/proof/").json()
        assert (proof["size"], proof["checkpoint"]) == (second.size, second.checkpoint)
        root = parse_checkpoint_body(second.checkpoint.split("\n\n")[0] + "\n").root
        assert verify_inclusion(
            leaf_hash(leaf), index, second.size, [bytes.fromhex(h) for h in proof["proof"]], root
        )


@pytest.mark.parametrize(
    ("query", "code"),
    [("?size=3", "bad_size"), ("?size=999", "bad_size"), ("?size=x", "bad_parameter")],
)
def test_proof_refuses_bad_sizes(ledger, api_client_for, query, code):
    response = api_client_for(None).get(f"/api/v1/ledger/entries/4/proof/{query}")
    assert (response.status_code, response.json()["code"]) == (400, code)


def test_consistency_proof_between_heads(ledger, api_client_for):
    first, second = ledger
    body = (
        api_client_for(None)
        .get(f"/api/v1/ledger/consistency/?first={first.size}&second={second.size}")
        .json()
    )
    assert body["first_root"] == bytes(first.root).hex()
    assert verify_consistency(
        first.size,
        second.size,
        bytes(first.root),
        bytes(second.root),
        [bytes.fromhex(h) for h in body["proof"]],
    )
    response = api_client_for(None).get(
        f"/api/v1/ledger/consistency/?first={second.size}&second={first.size}"
    )
    assert (response.status_code, response.json()["code"]) == (400, "bad_size")


def test_export_is_for_auditors_and_passes_the_standalone_verifier(ledger, api_client_for, auditor, tmp_path):
    assert api_client_for(None).get("/api/v1/ledger/export/").status_code == 401
    response = api_client_for(auditor).get("/api/v1/ledger/export/")
    document = json.loads(b"".join(response.streaming_content))
    assert len(document["leaves"]) == ledger[1].size
    assert len(document["checkpoints"]) == 2
    export_path = tmp_path / "log.json"
    export_path.write_text(json.dumps(document))
    keys_path = tmp_path / "keys.json"
    keys_path.write_text(json.dumps(keys.keys_document()))
    receipt = services.build_receipt(
        receipt={"order": "ord_1"},
        leaf_indexes=[entry.index for entry in services.entries_for("order", "ord_1")],
    )
    receipt_path = tmp_path / "receipt.json"
    receipt_path.write_text(json.dumps(receipt))
    for arguments in (["export", str(export_path)], ["receipt", str(receipt_path)]):
        result = subprocess.run(
            [sys.executable, "-m", "exchange.ledger.verify", *arguments, "--keys", str(keys_path)],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().endswith("OK: every check holds")


def test_tampered_export_fails_the_verifier(ledger, api_client_for, auditor):
    document = json.loads(b"".join(api_client_for(auditor).get("/api/v1/ledger/export/").streaming_content))
    document["leaves"][3] = base64.b64encode(b'{"forged":true}').decode()
    public = {key_id: entry.public_key for key_id, entry in load_published_keys(keys.keys_document()).items()}
    report = verify.verify_export(document, public)
    assert not report.ok


def test_explorer_is_for_auditors(ledger, client, user_factory, auditor):
    client.force_login(user_factory("someone"))
    assert client.get("/ledger/").status_code == 403
    client.force_login(auditor)
    page = client.get("/ledger/?ref=order=ord_1").content.decode()
    assert 'data-index="5"' in page
    assert 'href="/ledger/"' in page
    assert "ord_1" in page and "ord_2" not in page
    assert "js/ledger.js" in page


def test_provider_page_shows_the_organizations_accounts(books, sale, client, user_factory):
    from exchange.ledger.selectors import provider_summaries
    from exchange.ledger.services import Posting, post_transaction
    from marketplace.accounts.models import Membership

    sale(1)
    sale(2, amount=2000, fee=400)
    post_transaction(
        idempotency_key="payout:1",
        kind="payout",
        postings=[Posting(books.paid_out, 1500), Posting(books.clearing, -1500)],
    )
    [summary] = provider_summaries(books.organization)
    assert (
        summary.gross_sales_minor,
        summary.platform_fees_minor,
        summary.payable_minor,
        summary.paid_out_minor,
        summary.owed_minor,
    ) == (3000, 600, 2400, 1500, 900)
    member = user_factory("member")
    Membership.objects.create(user=member, organization=books.organization)
    client.force_login(member)
    page = client.get("/ledger/earnings/").content.decode()
    assert "Ledger Org" in page and 'href="/ledger/earnings/"' in page
    client.force_login(user_factory("outsider"))
    assert client.get("/ledger/earnings/").status_code == 403


def test_transparency_page_is_public_without_entries(ledger, client):
    page = client.get("/transparency/").content.decode()
    assert ledger[1].checkpoint.split("\n")[2] in page
    assert "ord_1" not in page
