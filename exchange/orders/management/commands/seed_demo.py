from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from marketplace.accounts.models import User


class Command(BaseCommand):
    help = (
        "Create demo providers, buyers, certified products (from real public tables) and sales "
        "(users demo-provider, demo-buyer, demo-auditor, demo-staff; password SYNTHEX_DEMO_PASSWORD)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when the demo data exists.")
        parser.add_argument(
            "--no-certify", action="store_true", help="Leave the versions queued for the worker."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("seed_demo refuses to run with DEBUG off: demo users have a known password.")
        from exchange.orders.demo import seed_sales
        from marketplace.demo import products as demo

        titles = [p.title for p in demo.PRODUCTS]
        if (
            options["if_empty"]
            and User.objects.filter(username="demo-provider").exists()
            and demo.Product.objects.filter(title__in=titles).count() == len(titles)
        ):
            self.stdout.write("Demo data already present.")
            return
        self.stdout.write("Seeding demo data (a few minutes the first time)…")
        products = demo.seed(certify=not options["no_certify"], log=self.stdout.write)
        orders = seed_sales(log=self.stdout.write) if not options["no_certify"] else []
        self.stdout.write(
            self.style.SUCCESS(f"Demo ready: {len(products)} products, {len(orders)} new sales.")
        )
