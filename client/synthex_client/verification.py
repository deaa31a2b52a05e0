"""Offline checks of certificates, receipts and the ledger's signed tree heads.

The arithmetic is not re-implemented here: it is the repository's stand-alone verifiers
(``marketplace.certification.signing`` / ``verify`` and ``exchange.ledger.verify``), which need only
``cryptography`` and ``rfc8785``. The keys are the published ``/.well-known/synthex/keys.json`` document.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

_REPO = Path(__file__).resolve().parents[2]


def _module(name: str) -> ModuleType:
    """Import a pure verifier module of the Synthex repository (the client lives in its ``client/``)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        if not (_REPO / "exchange" / "ledger" / "verify.py").is_file():
            raise
        sys.path.append(str(_REPO))
        return importlib.import_module(name)


@dataclass(frozen=True)
class Outcome:
    """``ok`` only when ``failures`` is empty; ``notes`` are the facts that were checked and held."""

    failures: tuple[str, ...]
    notes: tuple[str, ...]
    facts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


def public_keys(keys_document: Mapping[str, Any]) -> dict[str, Any]:
    """``{key_id: Ed25519PublicKey}`` from a keys.json document (retired keys included)."""
    return _module("marketplace.certification.signing").load_keys_document(keys_document)


def verify_certificate(
    certificate: Mapping[str, Any],
    keys_document: Mapping[str, Any],
    data: Sequence[Path] = (),
    *,
    receipt: Mapping[str, Any] | None = None,
    find_receipt: Callable[[str], Mapping[str, Any] | None] | None = None,
) -> Outcome:
    """The certificate's Ed25519 signature over its JCS bytes, and that each file in ``data`` is one of
    its artifacts by SHA-256 or a buyer's delivered copy of one: a file that is no artifact is checked
    through ``receipt``, else through the receipt ``find_receipt`` returns for its SHA-256 (the server's
    lookup by hash), by ``verify_delivered_file`` (signature, the two hashes, the ledger leaf). Raises
    OSError when a data file cannot be read."""
    signing = _module("marketplace.certification.signing")
    delivered = _module("marketplace.certification.verify").verify_delivered_file
    keys = public_keys(keys_document)
    signature = signing.verify_certificate_signature(certificate, keys)
    failures = list(signature.reasons)
    notes = [f"certificate {certificate.get('id')!r} is signed by {signature.key_id}"] if signature.ok else []
    files = []
    for path in data:
        match = signing.verify_artifact(certificate, None, path)
        found = None
        if not match.ok:
            found = receipt if receipt is not None else (find_receipt(match.sha256) if find_receipt else None)
            if found is not None:
                match = delivered(dict(certificate), found, keys, path)
        failures.extend(match.reasons)
        body = found.get("receipt") if isinstance(found, Mapping) else None
        delivery = body.get("delivery") if isinstance(body, Mapping) else None
        entry = {"path": str(path), "sha256": match.sha256, "artifact": match.artifact_name}
        files.append({**entry, "delivery": delivery} if delivery else entry)
        if match.ok and delivery:
            notes.append(
                f"{path} is your delivered copy {delivery} of artifact {match.artifact_name!r} "
                f"(SHA-256 {match.sha256}; signed receipt and ledger entry checked)"
            )
        elif match.ok:
            notes.append(f"{path} is artifact {match.artifact_name!r} (SHA-256 {match.sha256})")
    return Outcome(tuple(failures), tuple(notes), {"key_id": signature.key_id, "files": files})


def verify_receipt(receipt: Mapping[str, Any], keys_document: Mapping[str, Any]) -> Outcome:
    """The receipt's signature and each entry's inclusion proof in its signed checkpoint.

    Raises ValueError when the document is not a receipt."""
    ledger = _module("exchange.ledger.verify")
    try:
        report = ledger.verify_receipt(receipt, public_keys(keys_document))
    except ledger.InputError as error:
        raise ValueError(str(error)) from None
    return Outcome(report.failures, report.notes)


def parse_checkpoint(text: str, keys_document: Mapping[str, Any]) -> Any:
    """A verified checkpoint (``origin``, ``size``, ``root`` bytes); raises ValueError when it does not verify."""
    checkpoint = _module("exchange.ledger.checkpoint")
    try:
        return checkpoint.parse_and_verify_checkpoint(text, public_keys(keys_document))
    except checkpoint.CheckpointError as error:
        raise ValueError(str(error)) from None


def verify_extension(
    old_text: str, new_text: str, proof_hex: Sequence[str], keys_document: Mapping[str, Any]
) -> Outcome:
    """That the signed checkpoint ``new_text`` extends ``old_text`` under the RFC 9162 consistency proof."""
    ledger = _module("exchange.ledger.verify")
    proof = [bytes.fromhex(value) for value in proof_hex]
    report = ledger.verify_checkpoint_consistency(old_text, new_text, proof, public_keys(keys_document))
    return Outcome(report.failures, report.notes)


def _signed_heads(
    heads: list[dict[str, Any]], keys_document: Mapping[str, Any], failures: list[str]
) -> list[tuple[str, Any]]:
    """(checkpoint text, parsed checkpoint) of each head validly signed and listing its signed size and root,
    oldest first; each other head's reason is added to ``failures``."""
    checked: list[tuple[str, Any]] = []
    for head in heads:
        try:
            checkpoint = parse_checkpoint(head["checkpoint"], keys_document)
        except ValueError as error:
            failures.append(f"Tree head {head['id']} is not validly signed: {error}.")
            continue
        if checkpoint.size != head["size"] or checkpoint.root.hex() != head["root"]:
            failures.append(f"Tree head {head['id']} lists a size or root other than the signed ones.")
            continue
        checked.append((head["checkpoint"], checkpoint))
    return checked


def _check_remembered(
    api: Any,
    keys_document: Mapping[str, Any],
    remembered: str,
    newest: tuple[str, Any],
    failures: list[str],
    notes: list[str],
) -> None:
    """Whether the ``newest`` head extends the checkpoint verified last time; adds to ``failures`` or
    ``notes``."""
    try:
        earlier = parse_checkpoint(remembered, keys_document)
    except ValueError as error:
        failures.append(f"The tree head verified last time no longer verifies: {error}.")
        return
    reasons = _extension_failures(api, keys_document, remembered, earlier, *newest)
    failures.extend(f"Since last time: {reason}" for reason in reasons)
    if not reasons:
        notes.append(f"the newest head extends the one verified last time ({earlier.size} entries)")


def verify_heads(
    api: Any, keys_document: Mapping[str, Any], *, remembered: str | None = None, last: int = 0
) -> Outcome:
    """Check the server's signed tree heads (``last`` newest ones, or all with 0): each checkpoint's
    signature, that its listed size and root are the signed ones, that sizes never shrink, and, through
    consistency proofs fetched from the server, that each head extends the one before it. ``remembered``
    (a checkpoint this client verified earlier) must be extended by the newest head too: a server that
    rewrote or forked its log since then is caught. ``facts["checkpoint"]`` is the newest checkpoint."""
    heads = api.ledger_heads()
    if last:
        heads = heads[-last:]
    if not heads:
        return Outcome(("The server has published no signed tree head yet.",), ())
    failures: list[str] = []
    notes: list[str] = []
    checked = _signed_heads(heads, keys_document, failures)
    notes.append(f"{len(checked)} of {len(heads)} tree heads are validly signed")
    extensions = 0
    for (old_text, old), (new_text, new) in zip(checked, checked[1:], strict=False):
        reasons = _extension_failures(api, keys_document, old_text, old, new_text, new)
        failures.extend(reasons)
        extensions += not reasons and new.size > old.size
    notes.append(f"{extensions} consistency proofs between successive heads hold")
    if remembered is not None and checked:
        _check_remembered(api, keys_document, remembered, checked[-1], failures, notes)
    newest = checked[-1] if checked else None
    facts = {
        "heads": len(heads),
        "size": newest[1].size if newest else None,
        "root": newest[1].root.hex() if newest else None,
        "checkpoint": newest[0] if newest else None,
    }
    return Outcome(tuple(failures), tuple(notes), facts)


def _extension_failures(
    api: Any, keys_document: Mapping[str, Any], old_text: str, old: Any, new_text: str, new: Any
) -> list[str]:
    """Why the signed head ``new`` does not extend ``old`` (empty when it does)."""
    if new.size < old.size:
        return [f"The log shrank from {old.size} to {new.size} entries: it was rolled back."]
    if new.size == old.size:
        if new.root != old.root:
            return [f"Two signed heads of {new.size} entries have different roots: the log forked."]
        return []
    proof = api.ledger_consistency(old.size, new.size)
    return list(verify_extension(old_text, new_text, proof["proof"], keys_document).failures)
