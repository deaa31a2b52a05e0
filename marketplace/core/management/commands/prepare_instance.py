from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from marketplace.celery import ensure_broker_folders
from marketplace.certification import keys


class Command(BaseCommand):
    help = "Make what a fresh instance needs besides migrations: the signing key and the broker folders."

    def handle(self, *args: Any, **options: Any) -> None:
        ensure_broker_folders()
        key = keys.active_private_key()
        from marketplace.certification import signing

        self.stdout.write(
            f"Instance ready under {settings.VAR_DIR}; signing key {signing.key_id(key.public_key())}."
        )
