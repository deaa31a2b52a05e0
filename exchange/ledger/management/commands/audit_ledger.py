"""``manage.py audit_ledger [--keys keys.json] [--checkpoint FILE ...]``: exit 0 only when every ledger
invariant holds; otherwise exit 1 with one plain line per broken entry."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from exchange.ledger.audit import run_audit
from marketplace.certification.signing import load_published_keys


class Command(BaseCommand):
    help = "Audit the ledger: balances, stored balances, leaves, Merkle root, signed heads and their consistency."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--keys", help="keys.json to trust (default: every key the platform recorded)")
        parser.add_argument(
            "--checkpoint",
            action="append",
            default=[],
            help="a signed head kept outside the database (repeatable)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        keys = None
        if options["keys"]:
            try:
                document = json.loads(Path(options["keys"]).read_text(encoding="utf-8"))
                keys = {key_id: entry.public_key for key_id, entry in load_published_keys(document).items()}
            except (OSError, ValueError) as error:
                raise CommandError(f"cannot read the keys: {error}") from error
        try:
            outside = [Path(path).read_text(encoding="utf-8") for path in options["checkpoint"]]
        except OSError as error:
            raise CommandError(f"cannot read a checkpoint: {error}") from error
        report = run_audit(keys=keys, outside_checkpoints=outside)
        self.stdout.write(report.text())
        if not report.ok:
            sys.exit(1)
