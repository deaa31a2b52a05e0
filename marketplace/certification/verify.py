"""Stand-alone certificate verifier: ``python -m marketplace.certification.verify CERT.json [options]``.

Needs only ``cryptography``, ``rfc8785`` and the standard library (no Django). Options:

- ``--keys keys.json`` — the published keys file, or ``--key-url URL`` to fetch it over HTTP(S);
- ``--data FILE`` (repeatable) — a file that must be one of the certificate's artifacts (by SHA-256).

Exit status: 0 when the signature holds and every given file matches an artifact; 1 when a check fails (one
plain reason per failure on stderr); 2 on a usage error or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from marketplace.certification.signing import (
    load_keys_document,
    verify_artifact,
    verify_certificate_signature,
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the verifier; returns the exit status (0 verified, 1 failed, 2 usage or input error)."""
    parser = _parser()
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as exit_request:
        return EXIT_OK if exit_request.code == 0 else EXIT_USAGE
    try:
        certificate = read_json_file(arguments.certificate)
        if not isinstance(certificate, dict):
            raise InputError(f"{arguments.certificate} is not a JSON object.")
        keys = load_keys_from_arguments(arguments)
        for path in arguments.data:
            if not Path(path).is_file():
                raise InputError(f"Cannot read {path}: no such file.")
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE

    failures: list[str] = []
    signature = verify_certificate_signature(certificate, keys)
    failures.extend(signature.reasons)
    for path in arguments.data:
        try:
            match = verify_artifact(certificate, None, path)
        except OSError as error:
            print(f"error: Cannot read {path}: {error.strerror or error}.", file=sys.stderr)
            return EXIT_USAGE
        failures.extend(match.reasons)
        if match.ok:
            print(f"{path}: matches artifact {match.artifact_name!r} (SHA-256 {match.sha256})")

    if failures:
        for reason in failures:
            print(f"FAILED: {reason}", file=sys.stderr)
        return EXIT_FAILED
    print(f"OK: certificate {certificate.get('id')!r} is signed by {signature.key_id}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
