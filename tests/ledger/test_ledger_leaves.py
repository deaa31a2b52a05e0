"""Leaf bytes: the fast canonical JSON equals RFC 8785, and refs refuse anything but ids and hashes."""

import random
from datetime import UTC, datetime

import pytest
import rfc8785

from exchange.ledger import leaves

MOMENT = datetime(2026, 11, 2, 9, 30, 5, 123456, tzinfo=UTC)


def test_canonical_json_equals_rfc8785_on_random_documents():
    rng = random.Random(7)
    alphabet = 'abcXYZ019_.:/-"\\\n\t\x01\x1f\x7f é€😀\u2028'
    for _ in range(2000):
        document = {
            "type": rng.choice(["transaction", "event", "account"]),
            "id": rng.randrange(-(2**53) + 1, 2**53),
            "postings": [[rng.randrange(10**6), rng.randrange(-(10**12), 10**12), "EUR"] for _ in range(3)],
            "refs": {
                "".join(rng.choice("abz_09") for _ in range(5)): "".join(
                    rng.choice(alphabet) for _ in range(8)
                )
                for _ in range(3)
            },
        }
        assert leaves.canonical_json(document) == rfc8785.dumps(document)


def test_transaction_leaf_bytes():
    data = leaves.transaction_leaf(
        transaction_id=4,
        kind="sale",
        key_sha256="ab" * 32,
        postings=[leaves.LeafPosting(0, 1000, "EUR"), leaves.LeafPosting(2, -1000, "EUR")],
        refs={"order": "ord_1"},
        memo_sha256=None,
        time=MOMENT,
    )
    assert data == (
        b'{"id":4,"key":"' + b"ab" * 32 + b'","kind":"sale","postings":[[0,1000,"EUR"],[2,-1000,"EUR"]],'
        b'"refs":{"order":"ord_1"},"time":"2026-11-02T09:30:05.123456Z","type":"transaction"}'
    )


@pytest.mark.parametrize(
    "refs",
    [
        {"buyer": "ada@example.com"},
        {"buyer": "Ada Lovelace"},
        {"Order": "ord_1"},
        {"order": ""},
        {"order": 42},
        {"order": "x" * 201},
    ],
)
def test_refs_refuse_names_emails_and_non_ids(refs):
    with pytest.raises(leaves.LeafError):
        leaves.check_refs(refs)


def test_refs_accept_ids_and_hashes():
    refs = {"order": "ord_42", "payment_intent": "pi_3Nx-9", "sha256": "ab" * 32, "url": "s3:/bucket/key.csv"}
    assert leaves.check_refs(refs) == refs
