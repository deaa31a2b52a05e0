"""Stand-alone ledger verifier: ``python -m exchange.ledger.verify {receipt,proof,consistency,export} ...``.

Needs only ``cryptography``, ``rfc8785`` and the standard library (no Django). Every subcommand takes the
published keys with ``--keys keys.json`` or ``--key-url URL``. The JSON shapes are in docs/ledger-format.md.

- ``receipt RECEIPT.json`` — the receipt's signature (when present) and each entry's inclusion proof in
  the receipt's signed checkpoint;
- ``proof --leaf B64 --index N --proof HEX... --checkpoint CHECKPOINT`` — one inclusion proof;
- ``consistency OLD NEW --proof HEX...`` — that checkpoint NEW extends checkpoint OLD;
- ``export LOG.json`` — a full log export: rehash every leaf, check every checkpoint's signature and root,
  and consistency between successive checkpoints.

Exit status: 0 when every check holds; 1 when one fails (one plain reason per failure on stderr); 2 on a
usage error or unreadable input.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from exchange.ledger.checkpoint import Checkpoint, CheckpointError, parse_and_verify_checkpoint
from exchange.ledger.merkle import MerkleTree, leaf_hash, verify_consistency, verify_inclusion
from marketplace.certification.signing import verify_document_signature
from marketplace.certification.verify import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    InputError,
    add_key_arguments,
    load_keys_from_arguments,
    read_json_file,
)

PublicKeys = Mapping[str, Ed25519PublicKey]


@dataclass(frozen=True)
class Report:
    """Outcome of one verification: ``ok`` only when ``failures`` is empty; ``notes`` are facts checked."""

    failures: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failures


def _decode_base64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise InputError(f"{what} is not a base64 string.")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as error:
        raise InputError(f"{what} is not valid base64.") from error


def _decode_proof(values: Any, what: str) -> list[bytes]:
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise InputError(f"{what} is not a list of hex strings.")
    try:
        return [bytes.fromhex(value) for value in values]
    except ValueError as error:
        raise InputError(f"{what} holds a value that is not hex.") from error


def _index(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InputError(f"{what} is not a non-negative integer.")
    return value


def check_inclusion(leaf: bytes, index: int, proof: Sequence[bytes], checkpoint: Checkpoint) -> str | None:
    """Return None when ``leaf`` (canonical bytes) is entry ``index`` of the checkpoint's tree, else a reason."""
    if index >= checkpoint.size:
        return f"Entry {index} is beyond the checkpoint's {checkpoint.size} entries."
    if not verify_inclusion(leaf_hash(leaf), index, checkpoint.size, proof, checkpoint.root):
        return f"Entry {index} is not in the signed tree of {checkpoint.size} entries: its bytes or proof differ."
    return None


def _receipt_entries(document: Any) -> list[tuple[int, bytes, list[bytes]]]:
    """The (index, leaf bytes, proof) of each entry of a receipt; InputError when it lacks the receipt shape."""
    if not isinstance(document, dict) or not isinstance(document.get("entries"), list):
        raise InputError('The receipt must be an object with an "entries" list.')
    if not isinstance(document.get("checkpoint"), str):
        raise InputError('The receipt has no "checkpoint" text.')
    entries = []
    for position, entry in enumerate(document["entries"]):
        if not isinstance(entry, dict):
            raise InputError(f"Receipt entry {position} is not an object.")
        entries.append(
            (
                _index(entry.get("index"), f"Receipt entry {position}'s index"),
                _decode_base64(entry.get("leaf"), f"Receipt entry {position}'s leaf"),
                _decode_proof(entry.get("proof"), f"Receipt entry {position}'s proof"),
            )
        )
    return entries


def verify_receipt(document: Any, keys: PublicKeys) -> Report:
    """Check a receipt document (shape in docs/ledger-format.md) against the published keys.

    Raises InputError when the document does not have the receipt shape.
    """
    entries = _receipt_entries(document)
    failures: list[str] = []
    notes: list[str] = []
    if "signature" in document:
        signature = verify_document_signature(document, keys)
        failures.extend(f"Receipt signature: {reason}" for reason in signature.reasons)
        if signature.ok:
            notes.append(f"receipt signed by {signature.key_id}")
    try:
        checkpoint = parse_and_verify_checkpoint(document["checkpoint"], keys)
    except CheckpointError as error:
        failures.append(f"The receipt's checkpoint is not valid: {error}.")
        return Report(tuple(failures), tuple(notes))
    notes.append(f"checkpoint of {checkpoint.origin!r} at {checkpoint.size} entries is validly signed")
    if not entries:
        failures.append("The receipt lists no ledger entries.")
    for index, leaf, proof in entries:
        reason = check_inclusion(leaf, index, proof, checkpoint)
        if reason:
            failures.append(reason)
        else:
            notes.append(f"entry {index} is included")
    return Report(tuple(failures), tuple(notes))


def _export_parts(document: Any) -> tuple[str, list[Any], list[Any]]:
    """The origin, leaves and checkpoints of a log export; InputError when it lacks the export shape."""
    if not isinstance(document, dict):
        raise InputError("The export must be a JSON object.")
    origin = document.get("origin")
    if not isinstance(origin, str):
        raise InputError('The export has no "origin" text.')
    leaves = document.get("leaves")
    checkpoints = document.get("checkpoints")
    if not isinstance(leaves, list) or not isinstance(checkpoints, list):
        raise InputError('The export needs a "leaves" list and a "checkpoints" list.')
    return origin, leaves, checkpoints


def _against_entries(position: int, checkpoint: Checkpoint, tree: MerkleTree) -> str | None:
    """Why the checkpoint does not sign the root of the exported entries' prefix, or None when it does."""
    if checkpoint.size > tree.size:
        return f"Checkpoint {position} covers {checkpoint.size} entries but the export holds {tree.size}."
    if tree.root(checkpoint.size) != checkpoint.root:
        return (
            f"Checkpoint {position} (size {checkpoint.size}) does not match the exported entries: "
            "an entry before it was altered, removed or reordered."
        )
    return None


def _against_previous(
    position: int, checkpoint: Checkpoint, previous: Checkpoint, tree: MerkleTree
) -> str | None:
    """Why the checkpoint does not extend the one before it (a rollback, an inconsistent tree), or None."""
    if checkpoint.size < previous.size:
        return (
            f"Checkpoint {position} (size {checkpoint.size}) is smaller than the one before it "
            f"(size {previous.size}): the log was rolled back."
        )
    if not verify_consistency(
        previous.size,
        checkpoint.size,
        previous.root,
        checkpoint.root,
        tree.consistency_proof(previous.size, checkpoint.size),
    ):
        return f"Checkpoint {position} is not consistent with checkpoint {position - 1}."
    return None


def verify_export(document: Any, keys: PublicKeys) -> Report:
    """Check a full log export: every checkpoint validly signed, for this log, with the root of its prefix
    of the leaves, and each consistent with the one before. Raises InputError on a malformed export.
    """
    origin, leaves, checkpoints = _export_parts(document)
    tree = MerkleTree(leaf_hash(_decode_base64(leaf, f"Leaf {index}")) for index, leaf in enumerate(leaves))
    failures: list[str] = []
    previous: Checkpoint | None = None
    for position, text in enumerate(checkpoints):
        if not isinstance(text, str):
            raise InputError(f"Checkpoint {position} is not text.")
        try:
            checkpoint = parse_and_verify_checkpoint(text, keys, origin=origin)
        except CheckpointError as error:
            failures.append(f"Checkpoint {position} is not valid: {error}.")
            continue
        mismatch = _against_entries(position, checkpoint, tree)
        if mismatch:
            failures.append(mismatch)
            continue
        if previous is not None and (gap := _against_previous(position, checkpoint, previous, tree)):
            failures.append(gap)
        previous = checkpoint
    notes = [f"{tree.size} entries rehashed", f"{len(checkpoints)} checkpoints checked"]
    if previous is None:
        failures.append("The export has no valid checkpoint to check the entries against.")
    elif previous.size < tree.size:
        notes.append(f"entries {previous.size} to {tree.size - 1} are not yet covered by a checkpoint")
    return Report(tuple(failures), tuple(notes))


def verify_single_proof(
    leaf: bytes, index: int, proof: Sequence[bytes], checkpoint_text: str, keys: PublicKeys
) -> Report:
    """Check one inclusion proof of canonical leaf bytes against a signed checkpoint."""
    try:
        checkpoint = parse_and_verify_checkpoint(checkpoint_text, keys)
    except CheckpointError as error:
        return Report((f"The checkpoint is not valid: {error}.",), ())
    reason = check_inclusion(leaf, index, proof, checkpoint)
    if reason:
        return Report((reason,), ())
    return Report((), (f"entry {index} is included in the signed tree of {checkpoint.size} entries",))


def verify_checkpoint_consistency(
    old_text: str, new_text: str, proof: Sequence[bytes], keys: PublicKeys
) -> Report:
    """Check that the signed checkpoint ``new_text`` extends the signed checkpoint ``old_text``."""
    failures = []
    checkpoints = []
    for label, text in (("old", old_text), ("new", new_text)):
        try:
            checkpoints.append(parse_and_verify_checkpoint(text, keys))
        except CheckpointError as error:
            failures.append(f"The {label} checkpoint is not valid: {error}.")
    if failures:
        return Report(tuple(failures), ())
    old, new = checkpoints
    if old.origin != new.origin:
        return Report((f"The checkpoints are for different logs: {old.origin!r} and {new.origin!r}.",), ())
    if old.size > new.size:
        return Report((f"The new checkpoint ({new.size}) is smaller than the old one ({old.size}).",), ())
    if not verify_consistency(old.size, new.size, old.root, new.root, proof):
        return Report(
            (
                f"The tree of {new.size} entries does not extend the tree of {old.size}: the log was rewritten.",
            ),
            (),
        )
    return Report((), (f"the tree of {new.size} entries extends the tree of {old.size}",))


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"Cannot read {path}: {error}.") from error


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m exchange.ledger.verify",
        description="Verify Synthex ledger receipts, proofs and log exports against the published keys.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    receipt = commands.add_parser("receipt", help="check a buyer receipt")
    receipt.add_argument("receipt", metavar="RECEIPT.json")
    add_key_arguments(receipt)
    proof = commands.add_parser("proof", help="check one inclusion proof")
    proof.add_argument("--leaf", required=True, metavar="B64", help="the entry's canonical bytes, base64")
    proof.add_argument("--index", required=True, type=int, metavar="N")
    proof.add_argument("--proof", nargs="*", default=[], metavar="HEX", help="proof hashes, leaf to root")
    proof.add_argument("--checkpoint", required=True, metavar="FILE", help="signed checkpoint text")
    add_key_arguments(proof)
    consistency = commands.add_parser("consistency", help="check that a checkpoint extends an older one")
    consistency.add_argument("old", metavar="OLD_CHECKPOINT")
    consistency.add_argument("new", metavar="NEW_CHECKPOINT")
    consistency.add_argument("--proof", nargs="*", default=[], metavar="HEX")
    add_key_arguments(consistency)
    export = commands.add_parser("export", help="check a full log export")
    export.add_argument("export", metavar="LOG.json")
    add_key_arguments(export)
    return parser


def _run(arguments: argparse.Namespace) -> Report:
    keys = load_keys_from_arguments(arguments)
    if arguments.command == "receipt":
        return verify_receipt(read_json_file(arguments.receipt), keys)
    if arguments.command == "export":
        return verify_export(read_json_file(arguments.export), keys)
    if arguments.command == "proof":
        if arguments.index < 0:
            raise InputError("--index must not be negative.")
        return verify_single_proof(
            _decode_base64(arguments.leaf, "--leaf"),
            arguments.index,
            _decode_proof(arguments.proof, "--proof"),
            _read_text(arguments.checkpoint),
            keys,
        )
    return verify_checkpoint_consistency(
        _read_text(arguments.old), _read_text(arguments.new), _decode_proof(arguments.proof, "--proof"), keys
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the verifier; returns the exit status (0 verified, 1 failed, 2 usage or input error)."""
    try:
        arguments = _parser().parse_args(argv)
    except SystemExit as exit_request:
        return EXIT_OK if exit_request.code == 0 else EXIT_USAGE
    try:
        report = _run(arguments)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    for note in report.notes:
        print(f"ok: {note}")
    for failure in report.failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    if report.ok:
        print("OK: every check holds")
        return EXIT_OK
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
