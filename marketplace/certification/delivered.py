"""Checking a file against a certificate when it may be a buyer's delivered copy.

A buyer's copy is not byte-identical to the certified file (another format, a per-buyer fingerprint), so
its SHA-256 is not an artifact of the certificate. Its signed delivery receipt binds the copy's hash to the
certified file's; the receipt is found from the copy's hash alone. Deliveries live on the exchange side,
which the supply side does not import: it is reached through ``settings.SYNTHEX_RECEIPT_FINDER``, the
dotted path of a function ``sha256 -> signed receipt | None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from marketplace.certification import keys, signing
from marketplace.certification.verify import verify_delivered_file


@dataclass(frozen=True)
class FileCheck:
    """One file checked against a certificate: ``match`` as the signing module reports it; ``delivery``
    is the receipt body when the file is a delivered copy (else ``None``)."""

    match: signing.ArtifactMatch
    delivery: Mapping[str, Any] | None

    @property
    def ok(self) -> bool:
        return self.match.ok

    @property
    def sha256(self) -> str:
        return self.match.sha256

    @property
    def artifact_name(self) -> str | None:
        return self.match.artifact_name

    @property
    def reasons(self) -> tuple[str, ...]:
        return self.match.reasons


def find_receipt(sha256: str) -> dict[str, Any] | None:
    """The signed delivery receipt of the copy whose SHA-256 is ``sha256``, or ``None``."""
    finder = settings.SYNTHEX_RECEIPT_FINDER
    return import_string(finder)(sha256) if finder else None


def _named(match: signing.ArtifactMatch, shown_name: str) -> signing.ArtifactMatch:
    """``match`` with the temporary file's name replaced by the name the user knows the file by."""
    temporary = Path(match.path).name
    reasons = tuple(reason.replace(temporary, shown_name) for reason in match.reasons)
    return signing.ArtifactMatch(match.ok, shown_name, match.sha256, match.artifact_name, reasons)


def check_file(document: Mapping[str, Any], path: str | Path, *, name: str, receipt: Any = None) -> FileCheck:
    """Check the file at ``path`` (shown as ``name``) against the certificate ``document``: an artifact by
    SHA-256, else a delivered copy through ``receipt`` when given or the receipt found by the file's hash.
    Raises OSError when the file cannot be read."""
    if receipt is None:
        match = signing.verify_artifact(dict(document), None, path)
        if match.ok:
            return FileCheck(_named(match, name), None)
        receipt = find_receipt(match.sha256)
        if receipt is None:
            return FileCheck(_named(match, name), None)
    checked = verify_delivered_file(dict(document), receipt, keys.keys_document(), path)
    body = receipt.get("receipt") if isinstance(receipt, dict) else None
    return FileCheck(_named(checked, name), body if isinstance(body, dict) else None)
