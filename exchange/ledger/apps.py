from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "exchange.ledger"
    label = "ledger"
    verbose_name = "Ledger"
