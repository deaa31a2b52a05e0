from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from marketplace.accounts.models import User
from marketplace.accounts.services import api_token_for


class Command(BaseCommand):
    help = "Print the API token of USER (created on first use). Use it as 'Authorization: Token <key>'."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = User.objects.get(username=options["username"])
        except User.DoesNotExist:
            raise CommandError(f"No user named {options['username']!r}.") from None
        self.stdout.write(api_token_for(user))
