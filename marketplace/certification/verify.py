"""Stand-alone certificate verifier: ``python -m marketplace.certification.verify CERT.json [options]``.

Needs only ``cryptography``, ``rfc8785`` and the standard library (no Django). Options:

- ``--keys keys.json`` — the published keys file, or ``--key-url URL`` to fetch it over HTTP(S);
- ``--data FILE`` (repeatable) — a file that must be one of the certificate's artifacts (by SHA-256).

Exit status: 0 when the signature holds and every given file matches an artifact; 1 when a check fails (one
plain reason per failure on stderr); 2 on a usage error or unreadable input.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from marketplace.certification.signing import (
    ArtifactMatch,
    load_keys_document,
    sha256_file,
    verify_artifact,
    verify_certificate_signature,
    verify_document_signature,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_FETCH_TIMEOUT_SECONDS = 20
_MAX_KEYS_BYTES = 1 << 20


class InputError(Exception):
    """An input could not be read or parsed; the message is a plain sentence."""


def read_json_file(path: str) -> Any:
    """Read and parse a JSON file; raises InputError with a plain message."""
    try:
        return json.loads(Path(path).read_bytes())
    except OSError as error:
        raise InputError(f"Cannot read {path}: {error.strerror or error}.") from error
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path} is not valid JSON: {error}.") from error


def fetch_json(url: str) -> Any:
    """Fetch and parse a JSON document over HTTP(S); raises InputError with a plain message."""
    if not url.startswith(("https://", "http://")):
        raise InputError(f"The key URL must start with https:// or http://, got {url!r}.")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=_FETCH_TIMEOUT_SECONDS) as response:
            body = response.read(_MAX_KEYS_BYTES + 1)
    except OSError as error:
        raise InputError(f"Cannot fetch {url}: {error}.") from error
    if len(body) > _MAX_KEYS_BYTES:
        raise InputError(f"{url} returned more than {_MAX_KEYS_BYTES} bytes.")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{url} did not return valid JSON: {error}.") from error


def verify_delivered_file(
    certificate: dict[str, Any], receipt: Any, keys: Any, file_path: str | Path
) -> ArtifactMatch:
    """Check a delivered copy (another format, fingerprinted) against a certificate through its delivery
    receipt: the receipt's Ed25519 signature holds under ``keys``; it binds ``delivered_sha256`` (which must
    be the file's SHA-256) to ``certified_sha256`` (which must be one of the certificate's artifacts); and its
    ledger entry records the same two hashes. The receipt's Merkle inclusion proof is checked by
    ``python -m exchange.ledger.verify receipt``. Raises OSError when the file cannot be read.
    """
    digest = sha256_file(file_path)
    reasons: list[str] = []
    body = receipt.get("receipt") if isinstance(receipt, dict) else None
    if not isinstance(body, dict):
        return ArtifactMatch(False, str(file_path), digest, None, ("The receipt has no receipt body.",))
    reasons.extend(verify_document_signature(receipt, keys).reasons)
    if body.get("delivered_sha256") != digest:
        reasons.append(
            f"{Path(file_path).name} (SHA-256 {digest}) is not the copy this receipt was issued for."
        )
    certified = body.get("certified_sha256")
    subject = certificate.get("subject")
    artifacts = subject.get("artifacts") if isinstance(subject, dict) else None
    named = [a for a in artifacts or [] if isinstance(a, dict) and a.get("sha256") == certified]
    if not named:
        reasons.append("The receipt's certified file is not an artifact of this certificate.")
    logged = []
    for entry in receipt.get("entries") or []:
        try:
            logged.append(json.loads(base64.b64decode(entry["leaf"])).get("refs", {}))
        except (KeyError, TypeError, ValueError):
            continue
    if not any(
        r.get("delivered_sha256") == digest and r.get("certified_sha256") == certified for r in logged
    ):
        reasons.append("The receipt's ledger entry does not record this delivery.")
    name = named[0].get("name") if named else None
    return ArtifactMatch(not reasons, str(file_path), digest, name, tuple(reasons))


def add_key_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the mutually exclusive ``--keys FILE`` / ``--key-url URL`` options (one is required)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--keys", metavar="KEYS.json", help="published keys file (keys.json)")
    source.add_argument(
        "--key-url", metavar="URL", help="URL of keys.json, e.g. https://HOST/.well-known/synthex/keys.json"
    )


def load_keys_from_arguments(arguments: argparse.Namespace) -> dict[str, Any]:
    """Load ``{key_id: public key}`` from ``--keys`` or ``--key-url``; raises InputError on bad input."""
    document = read_json_file(arguments.keys) if arguments.keys else fetch_json(arguments.key_url)
    try:
        return load_keys_document(document)
    except (ValueError, TypeError, AttributeError) as error:
        raise InputError(f"The keys document is not usable: {error}") from error


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m marketplace.certification.verify",
        description="Verify a Synthex certificate's Ed25519 signature and the files it covers.",
    )
    parser.add_argument("certificate", metavar="CERT.json")
    add_key_arguments(parser)
    parser.add_argument(
        "--data", metavar="FILE", action="append", default=[], help="a certified file (repeatable)"
    )
    parser.add_argument(
        "--receipt",
        metavar="RECEIPT.json",
        help="a delivery receipt: each --data file is then checked as the delivered copy it names",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the verifier; returns the exit status (0 verified, 1 failed, 2 usage or input error)."""
    parser = _parser()
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as exit_request:
        return EXIT_OK if exit_request.code == 0 else EXIT_USAGE
    try:
        certificate, keys, receipt = _read_inputs(arguments)
        signature = verify_certificate_signature(certificate, keys)
        failures = [*signature.reasons, *_check_data_files(certificate, keys, receipt, arguments.data)]
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if failures:
        for reason in failures:
            print(f"FAILED: {reason}", file=sys.stderr)
        return EXIT_FAILED
    print(f"OK: certificate {certificate.get('id')!r} is signed by {signature.key_id}")
    return EXIT_OK


def _read_inputs(arguments: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """(certificate, keys document, receipt or None) from the arguments; InputError when one cannot be read or
    a ``--data`` file is missing."""
    certificate = read_json_file(arguments.certificate)
    if not isinstance(certificate, dict):
        raise InputError(f"{arguments.certificate} is not a JSON object.")
    keys = load_keys_from_arguments(arguments)
    receipt = read_json_file(arguments.receipt) if arguments.receipt else None
    for path in arguments.data:
        if not Path(path).is_file():
            raise InputError(f"Cannot read {path}: no such file.")
    return certificate, keys, receipt


def _check_data_files(
    certificate: dict[str, Any], keys: dict[str, Any], receipt: Any, paths: Sequence[str]
) -> list[str]:
    """Check each data file as an artifact (or, with a receipt, as the delivered copy it names), printing each
    match; returns the reasons of those that fail. InputError when a file cannot be read."""
    failures: list[str] = []
    for path in paths:
        try:
            match = (
                verify_artifact(certificate, None, path)
                if receipt is None
                else verify_delivered_file(certificate, receipt, keys, path)
            )
        except OSError as error:
            raise InputError(f"Cannot read {path}: {error.strerror or error}.") from None
        failures.extend(match.reasons)
        if match.ok:
            print(f"{path}: matches artifact {match.artifact_name!r} (SHA-256 {match.sha256})")
    return failures


if __name__ == "__main__":
    sys.exit(main())
