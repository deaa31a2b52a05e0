import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from marketplace.certification import keys, signing
from marketplace.certification.delivered import check_file
from marketplace.certification.models import Revocation


class Command(BaseCommand):
    help = (
        "Verify a certificate's signature against this platform's published keys and, with --data, that "
        "each file is one the certificate covers. Exit 0 only when everything holds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("certificate", metavar="CERT.json")
        parser.add_argument(
            "--data", metavar="FILE", action="append", default=[], help="a certified file (repeatable)"
        )
        parser.add_argument(
            "--receipt",
            metavar="RECEIPT.json",
            help="a delivery receipt for delivered copies (optional: a copy is found by its SHA-256)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        document = _read_certificate(Path(options["certificate"]))
        failures = list(signing.verify_certificate_signature(document, keys.keys_document()).reasons)
        receipt = _read_receipt(options.get("receipt"))
        for data in options["data"]:
            failures.extend(self._check_data(document, data, receipt))
        revocation = Revocation.objects.filter(certificate_id=document.get("id")).first()
        if revocation is not None:
            failures.append(
                f"The certificate was revoked on {revocation.revoked_at:%Y-%m-%d}: {revocation.reason}"
            )
        if failures:
            for reason in failures:
                self.stderr.write(f"FAILED: {reason}")
            raise SystemExit(1)
        self.stdout.write(
            f"OK: certificate {document.get('id')!r} is valid and signed by {document['signature']['key_id']}"
        )

    def _check_data(self, document: dict[str, Any], data: str, receipt: Any) -> list[str]:
        """Check one --data file, writing its match; returns its failure reasons."""
        if not Path(data).is_file():
            raise CommandError(f"Cannot read {data}: no such file.")
        # A buyer's copy is found by its own hash (its delivery receipt); --receipt is optional.
        match = check_file(document, data, name=data, receipt=receipt)
        if match.ok:
            what = "is a delivered copy of" if match.delivery else "matches"
            self.stdout.write(f"{data}: {what} artifact {match.artifact_name!r} (SHA-256 {match.sha256})")
        return list(match.reasons)


def _read_certificate(path: Path) -> dict[str, Any]:
    """The certificate at ``path`` as a JSON object; CommandError when it cannot be read or is not one."""
    try:
        document = json.loads(path.read_bytes())
    except OSError as error:
        raise CommandError(f"Cannot read {path}: {error.strerror or error}.") from error
    except ValueError:
        raise CommandError(f"{path} is not JSON.") from None
    if not isinstance(document, dict):
        raise CommandError(f"{path} is not a certificate (not a JSON object).")
    return document


def _read_receipt(path: str | None) -> Any:
    """The delivery receipt at ``path`` (parsed JSON), None without one; CommandError when unreadable."""
    if not path:
        return None
    try:
        return json.loads(Path(path).read_bytes())
    except (OSError, ValueError) as error:
        raise CommandError(f"Cannot read the receipt {path}: {error}") from error
