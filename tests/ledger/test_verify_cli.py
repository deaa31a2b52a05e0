"""The stand-alone ledger verifier: receipts, single proofs, consistency and full log exports."""

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from exchange.ledger import verify
from exchange.ledger.checkpoint import sign_checkpoint
from exchange.ledger.merkle import MerkleTree, leaf_hash
from marketplace.certification.signing import keys_document, sign_document

REPO = Path(__file__).resolve().parents[2]
ORIGIN = "synthex.example/ledger"
KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"ledger cli key").digest())
INTRUDER = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"intruder").digest())
LEAVES = [
    rfc8785.dumps(
        {"kind": "journal", "transaction": f"txn_{index}", "amount_minor": 100 * index, "currency": "EUR"}
    )
    for index in range(10)
]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _tree(leaves=LEAVES) -> MerkleTree:
    return MerkleTree(leaf_hash(leaf) for leaf in leaves)


def _checkpoint(size: int, leaves=LEAVES, key=KEY) -> str:
    return sign_checkpoint(ORIGIN, size, _tree(leaves).root(size), key, ORIGIN)


@pytest.fixture
def keys_path(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(keys_document([(KEY.public_key(), "active")])))
    return path


def _receipt(indexes=(2, 3), size=7, signed=True) -> dict:
    tree = _tree()
    document = {
        "receipt": {"order": "ord_42", "amount_minor": 1999, "currency": "EUR"},
        "entries": [
            {
                "index": index,
                "leaf": _b64(LEAVES[index]),
                "proof": [h.hex() for h in tree.inclusion_proof(index, size)],
            }
            for index in indexes
        ],
        "checkpoint": _checkpoint(size),
    }
    return sign_document(document, KEY) if signed else document


def _write(tmp_path, name, document) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document, indent=2) if not isinstance(document, str) else document)
    return str(path)


@pytest.mark.parametrize("signed", [True, False])
def test_genuine_receipt_verifies(tmp_path, keys_path, capsys, signed):
    path = _write(tmp_path, "receipt.json", _receipt(signed=signed))
    assert verify.main(["receipt", path, "--keys", str(keys_path)]) == 0
    output = capsys.readouterr().out.splitlines()
    assert output[-3:] == ["ok: entry 2 is included", "ok: entry 3 is included", "OK: every check holds"]


def _alter_leaf(document):
    document["entries"][0]["leaf"] = _b64(LEAVES[2].replace(b"txn_2", b"txn_9"))


def _alter_proof(document):
    document["entries"][1]["proof"][0] = "00" * 32


def _alter_index(document):
    document["entries"][1]["index"] = 4


@pytest.mark.parametrize(
    ("alter", "signed", "failures"),
    [
        (_alter_leaf, False, ["Entry 2 is not in the signed tree of 7 entries: its bytes or proof differ."]),
        (_alter_proof, False, ["Entry 3 is not in the signed tree of 7 entries: its bytes or proof differ."]),
        (_alter_index, False, ["Entry 4 is not in the signed tree of 7 entries: its bytes or proof differ."]),
        (
            lambda d: d.__setitem__("checkpoint", _checkpoint(7, key=INTRUDER)),
            False,
            ["The receipt's checkpoint is not valid: the note is not signed by any published key."],
        ),
        (
            lambda d: d["receipt"].__setitem__("amount_minor", 1),
            True,
            [
                "Receipt signature: The signature does not match the document: "
                "it was altered or signed by another key."
            ],
        ),
    ],
)
def test_altered_receipts_fail_with_plain_reasons(tmp_path, keys_path, capsys, alter, signed, failures):
    document = _receipt(signed=signed)
    alter(document)
    path = _write(tmp_path, "receipt.json", document)
    assert verify.main(["receipt", path, "--keys", str(keys_path)]) == 1
    assert capsys.readouterr().err.splitlines() == [f"FAILED: {failure}" for failure in failures]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"entries": "x", "checkpoint": "c"}, 'must be an object with an "entries" list'),
        ({"entries": [], "checkpoint": 5}, 'has no "checkpoint" text'),
        (
            {"entries": [{"index": -1, "leaf": "", "proof": []}], "checkpoint": "c"},
            "not a non-negative integer",
        ),
        ({"entries": [{"index": 0, "leaf": "%%", "proof": []}], "checkpoint": "c"}, "not valid base64"),
        ({"entries": [{"index": 0, "leaf": "", "proof": ["zz"]}], "checkpoint": "c"}, "not hex"),
    ],
)
def test_malformed_receipts_exit_2(tmp_path, keys_path, capsys, document, message):
    path = _write(tmp_path, "receipt.json", document)
    assert verify.main(["receipt", path, "--keys", str(keys_path)]) == 2
    assert message in capsys.readouterr().err


def test_single_proof_verifies_and_a_wrong_index_fails(tmp_path, keys_path, capsys):
    checkpoint = _write(tmp_path, "head.txt", _checkpoint(10))
    proof = [h.hex() for h in _tree().inclusion_proof(6, 10)]
    arguments = ["proof", "--leaf", _b64(LEAVES[6]), "--proof", *proof, "--checkpoint", checkpoint]
    assert verify.main([*arguments, "--index", "6", "--keys", str(keys_path)]) == 0
    assert verify.main([*arguments, "--index", "7", "--keys", str(keys_path)]) == 1
    assert verify.main([*arguments, "--index", "10", "--keys", str(keys_path)]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert errors == [
        "FAILED: Entry 7 is not in the signed tree of 10 entries: its bytes or proof differ.",
        "FAILED: Entry 10 is beyond the checkpoint's 10 entries.",
    ]


def test_consistency_between_checkpoints(tmp_path, keys_path, capsys):
    old = _write(tmp_path, "old.txt", _checkpoint(3))
    new = _write(tmp_path, "new.txt", _checkpoint(10))
    proof = [h.hex() for h in _tree().consistency_proof(3, 10)]
    assert verify.main(["consistency", old, new, "--proof", *proof, "--keys", str(keys_path)]) == 0
    rewritten = [LEAVES[0], b"rewritten", *LEAVES[2:]]
    forked = _write(tmp_path, "forked.txt", _checkpoint(10, leaves=rewritten))
    assert verify.main(["consistency", old, forked, "--proof", *proof, "--keys", str(keys_path)]) == 1
    assert verify.main(["consistency", new, old, "--keys", str(keys_path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "FAILED: The tree of 10 entries does not extend the tree of 3: the log was rewritten.",
        "FAILED: The new checkpoint (3) is smaller than the old one (10).",
    ]


def _export(leaves=LEAVES, checkpoints=None) -> dict:
    return {
        "origin": ORIGIN,
        "leaves": [_b64(leaf) for leaf in leaves],
        "checkpoints": checkpoints
        if checkpoints is not None
        else [_checkpoint(3), _checkpoint(7), _checkpoint(9)],
    }


def test_full_export_verifies(tmp_path, keys_path, capsys):
    path = _write(tmp_path, "log.json", _export())
    assert verify.main(["export", path, "--keys", str(keys_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "ok: 10 entries rehashed",
        "ok: 3 checkpoints checked",
        "ok: entries 9 to 9 are not yet covered by a checkpoint",
        "OK: every check holds",
    ]


@pytest.mark.parametrize(
    ("document", "failures"),
    [
        (
            _export(leaves=[*LEAVES[:5], b"altered", *LEAVES[6:]]),
            [
                "Checkpoint 1 (size 7) does not match the exported entries: "
                "an entry before it was altered, removed or reordered.",
                "Checkpoint 2 (size 9) does not match the exported entries: "
                "an entry before it was altered, removed or reordered.",
            ],
        ),
        (
            _export(checkpoints=[_checkpoint(7), _checkpoint(3)]),
            ["Checkpoint 1 (size 3) is smaller than the one before it (size 7): the log was rolled back."],
        ),
        (
            _export(checkpoints=[_checkpoint(3), _checkpoint(11, leaves=[*LEAVES, b"future"])]),
            ["Checkpoint 1 covers 11 entries but the export holds 10."],
        ),
        (
            _export(checkpoints=[_checkpoint(3), _checkpoint(7, key=INTRUDER)]),
            ["Checkpoint 1 is not valid: the note is not signed by any published key."],
        ),
        (
            _export(checkpoints=[sign_checkpoint("other.example/log", 3, _tree().root(3), KEY, ORIGIN)]),
            [
                "Checkpoint 0 is not valid: the checkpoint is for the log 'other.example/log', "
                "not 'synthex.example/ledger'.",
                "The export has no valid checkpoint to check the entries against.",
            ],
        ),
    ],
)
def test_tampered_exports_name_each_broken_checkpoint(tmp_path, keys_path, capsys, document, failures):
    path = _write(tmp_path, "log.json", document)
    assert verify.main(["export", path, "--keys", str(keys_path)]) == 1
    assert capsys.readouterr().err.splitlines() == [f"FAILED: {failure}" for failure in failures]


@pytest.mark.parametrize(
    "arguments",
    [
        [],
        ["export"],
        ["export", "{missing}", "--keys", "{keys}"],
        ["export", "{log}", "--keys", "{missing}"],
        ["receipt", "{log}", "--keys", "{keys}"],
        ["proof", "--leaf", "AA==", "--index", "-1", "--checkpoint", "{log}", "--keys", "{keys}"],
    ],
)
def test_usage_errors_exit_2(tmp_path, keys_path, arguments):
    names = {
        "keys": keys_path,
        "missing": tmp_path / "missing.json",
        "log": _write(tmp_path, "log.json", _export()),
    }
    assert verify.main([argument.format(**names) for argument in arguments]) == 2


def test_verifier_runs_without_django(tmp_path, keys_path):
    path = _write(tmp_path, "receipt.json", _receipt())
    probe = (
        "import sys, runpy; sys.argv = sys.argv[1:]; code = 0\n"
        "try:\n runpy.run_module('exchange.ledger.verify', run_name='__main__')\n"
        "except SystemExit as exit_request:\n code = exit_request.code\n"
        "loaded = sorted(name for name in sys.modules if name.split('.')[0] in ('django', 'rest_framework', 'celery'))\n"
        "print('FRAMEWORKS', loaded); sys.exit(code)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe, "verify", "receipt", path, "--keys", str(keys_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert "FRAMEWORKS []" in completed.stdout
