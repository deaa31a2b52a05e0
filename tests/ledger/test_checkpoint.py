"""Signed tree heads: C2SP signed-note / tlog-checkpoint format with Ed25519."""

import base64
import hashlib
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from exchange.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    format_checkpoint,
    note_key_hash,
    parse_and_verify_checkpoint,
    parse_checkpoint_body,
    sign_checkpoint,
    sign_note,
    verify_note,
)
from marketplace.certification.signing import keys_document, load_keys_document, raw_public_key

# Reference vector of golang.org/x/mod/sumdb/note (note_test.go / package documentation): the signer key
# "PRIVATE+KEY+PeterNeumann+c74f20a3+<base64(0x01 || seed)>" and the note it signs. Ed25519 is
# deterministic, so signing the same text must reproduce the published note byte for byte.
GO_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
GO_PUBLIC = base64.b64decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")[1:]
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT
    + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)

KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"synthex test ledger key").digest())
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"another key").digest())
ROOT = hashlib.sha256(b"root").digest()
ORIGIN = "synthex.example/ledger"


def test_go_reference_note_is_reproduced_and_verifies():
    private_key = Ed25519PrivateKey.from_private_bytes(GO_SEED)
    public_key = Ed25519PublicKey.from_public_bytes(GO_PUBLIC)
    assert note_key_hash("PeterNeumann", public_key).hex() == "c74f20a3"
    assert sign_note(GO_TEXT, private_key, "PeterNeumann") == GO_NOTE
    assert verify_note(GO_NOTE, [public_key]) == GO_TEXT
    with pytest.raises(CheckpointError, match="does not match the note"):
        verify_note(GO_NOTE.replace("cryptography", "cryptographY"), [public_key])


def test_checkpoint_body_layout():
    assert format_checkpoint(ORIGIN, 42, ROOT) == f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}\n"


def test_signed_checkpoint_round_trips_with_time():
    issued_at = datetime(2026, 11, 2, 9, 30, 5, tzinfo=UTC)
    text = sign_checkpoint(ORIGIN, 1_000_000, ROOT, KEY, ORIGIN, issued_at=issued_at)
    body, signature_line = text.split("\n\n")
    assert body.splitlines() == [
        ORIGIN,
        "1000000",
        base64.b64encode(ROOT).decode(),
        "time 2026-11-02T09:30:05Z",
    ]
    blob = base64.b64decode(signature_line.removeprefix(f"\u2014 {ORIGIN} ").removesuffix("\n"))
    assert (
        blob[:4]
        == hashlib.sha256(ORIGIN.encode() + b"\n\x01" + raw_public_key(KEY.public_key())).digest()[:4]
    )
    assert len(blob) == 68
    checkpoint = parse_and_verify_checkpoint(text, [KEY.public_key()], origin=ORIGIN)
    assert checkpoint == Checkpoint(ORIGIN, 1_000_000, ROOT, ("time 2026-11-02T09:30:05Z",))
    assert checkpoint.issued_at == issued_at


def test_checkpoint_verifies_with_keys_from_keys_json():
    keys = load_keys_document(
        keys_document([(OTHER_KEY.public_key(), "active"), (KEY.public_key(), "retired")])
    )
    checkpoint = parse_and_verify_checkpoint(sign_checkpoint(ORIGIN, 0, ROOT, KEY, "synthex-ledger"), keys)
    assert (checkpoint.size, checkpoint.root, checkpoint.issued_at) == (0, ROOT, None)


def test_extra_signatures_by_unknown_keys_are_ignored():
    text = sign_checkpoint(ORIGIN, 5, ROOT, KEY, ORIGIN)
    cosigned = text + sign_note(format_checkpoint(ORIGIN, 5, ROOT), OTHER_KEY, "witness").split("\n\n")[1]
    assert parse_and_verify_checkpoint(cosigned, [KEY.public_key()]).size == 5


def _replace_line(text: str, number: int, value: str) -> str:
    lines = text.split("\n")
    lines[number] = value
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("forge", "message"),
    [
        (lambda t: _replace_line(t, 1, "6"), "does not match the note: it is forged or altered"),
        (
            lambda t: _replace_line(t, 2, base64.b64encode(b"\x00" * 32).decode()),
            "does not match the note: it is forged or altered",
        ),
        (lambda t: t.replace(ORIGIN, "evil.example/ledger", 1), "does not match the note"),
        (lambda t: sign_checkpoint(ORIGIN, 5, ROOT, OTHER_KEY, ORIGIN), "not signed by any published key"),
        (lambda t: t.replace("\u2014", "--"), "malformed signature line"),
        (lambda t: t.split("\n\n")[0] + "\n", "no signature lines"),
        (lambda t: t[:-1], "does not end with a newline"),
        (lambda t: t.replace(f"\u2014 {ORIGIN} ", f"\u2014 {ORIGIN} !!"), "malformed signature line"),
    ],
)
def test_forged_or_malformed_checkpoints_are_refused(forge, message):
    text = sign_checkpoint(ORIGIN, 5, ROOT, KEY, ORIGIN)
    with pytest.raises(CheckpointError, match=message):
        parse_and_verify_checkpoint(forge(text), [KEY.public_key()])


def test_a_checkpoint_for_another_log_is_refused():
    text = sign_checkpoint("other.example/log", 5, ROOT, KEY, ORIGIN)
    with pytest.raises(
        CheckpointError, match="is for the log 'other.example/log', not 'synthex.example/ledger'"
    ):
        parse_and_verify_checkpoint(text, [KEY.public_key()], origin=ORIGIN)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("o\n007\n" + base64.b64encode(ROOT).decode() + "\n", "without leading zeros"),
        ("o\n-1\n" + base64.b64encode(ROOT).decode() + "\n", "without leading zeros"),
        ("o\n1\n" + base64.b64encode(b"short").decode() + "\n", "root is 5 bytes, expected 32"),
        ("o\n1\nnot base64!\n", "is not base64"),
        ("o\n1\n", "needs origin, size and root lines"),
        ("\n1\n" + base64.b64encode(ROOT).decode() + "\n", "origin is empty"),
    ],
)
def test_malformed_bodies_are_refused(body, message):
    with pytest.raises(CheckpointError, match=message):
        parse_checkpoint_body(body)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("", 1, ROOT), "origin must be one non-empty line"),
        (("a\nb", 1, ROOT), "origin must be one non-empty line"),
        ((ORIGIN, -1, ROOT), "cannot be negative"),
        ((ORIGIN, 1, b"x"), "root must be 32 bytes, got 1"),
    ],
)
def test_format_checkpoint_refuses_bad_values(arguments, message):
    with pytest.raises(CheckpointError, match=message):
        format_checkpoint(*arguments)


@pytest.mark.parametrize("key_name", ["", "has space", "plus+sign"])
def test_key_names_follow_signed_note_rules(key_name):
    with pytest.raises(CheckpointError, match="a key name must be non-empty"):
        sign_checkpoint(ORIGIN, 1, ROOT, KEY, key_name)
