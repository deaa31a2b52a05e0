from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from exchange.delivery.models import Entitlement
from exchange.downloads import selectors
from exchange.downloads.formats import read_any
from exchange.downloads.models import Delivery


class Command(BaseCommand):
    help = (
        "Name the entitlement (buyer, order, time) whose fingerprinted copy FILE (CSV, Parquet or JSON Lines; "
        "whole or partial, rows and columns in any order) was made from. Exit 0 when one is named, 1 when "
        "none scores beyond chance."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", metavar="FILE")
        parser.add_argument("--all", action="store_true", help="also list candidates that were not named")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"Cannot read {path}: no such file.")
        try:
            table = read_any(path)
        except Exception as error:
            raise CommandError(
                f"{path} is not a readable CSV, Parquet or JSON Lines table: {error}"
            ) from error
        suspects, tried = selectors.trace_table(table)
        self.stdout.write(
            f"{path}: {table.num_rows} rows, {table.num_columns} columns; {tried} candidate copies"
        )
        named = [suspect for suspect in suspects if suspect.accused]
        for suspect in suspects if options["all"] else named:
            entitlement = Entitlement.objects.select_related("buyer", "version__product").get(
                pk=suspect.entitlement_id
            )
            deliveries = Delivery.objects.filter(fingerprint_id=suspect.fingerprint_id).order_by("created_at")
            verdict = "LEAKED BY" if suspect.accused else "not named"
            self.stdout.write(
                f"{verdict}: entitlement {entitlement.id} buyer {entitlement.buyer.username} "
                f"(user {entitlement.buyer_id}) {entitlement.source} granted {entitlement.granted_at:%Y-%m-%dT%H:%M:%SZ} "
                f"product {entitlement.version.product.slug} v{entitlement.version.number} "
                f"fingerprint {suspect.fingerprint_id}: {suspect.score.matches} of {suspect.score.checks} rows in "
                f"the set it omits (z={suspect.score.z:.1f}), "
                f"chance bound {min(1.0, suspect.score.p_bound * max(1, tried)):.1e}"
            )
            for delivery in deliveries:
                self.stdout.write(
                    f"    delivered {delivery.id} {delivery.format} sha256 {delivery.sha256} "
                    f"at {delivery.created_at:%Y-%m-%dT%H:%M:%SZ}"
                )
        if not named:
            self.stdout.write("No copy scores beyond chance: no entitlement is named.")
            raise SystemExit(1)
