"""``manage.py localstripe [--port P] [--webhook-url URL]``: localstripe on loopback, state in memory, with
the webhook registered and signed with ``STRIPE_WEBHOOK_SECRET`` (what ``make run`` starts)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from exchange.orders import localstripe_server


class Command(BaseCommand):
    help = "Run localstripe on 127.0.0.1 (in memory) and register the Synthex webhook."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8420)
        parser.add_argument(
            "--webhook-url", default="", help="e.g. http://127.0.0.1:8000/api/v1/stripe/webhook/"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["webhook_url"] and not settings.STRIPE_WEBHOOK_SECRET:
            raise CommandError("Set STRIPE_WEBHOOK_SECRET: localstripe signs the webhooks with it.")
        self.stdout.write(
            f"localstripe on http://127.0.0.1:{options['port']} → {options['webhook_url'] or 'no webhook'}"
        )
        localstripe_server.serve(
            port=options["port"],
            webhook_url=options["webhook_url"],
            webhook_secret=settings.STRIPE_WEBHOOK_SECRET,
        )
