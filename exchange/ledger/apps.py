from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "exchange.ledger"
    label = "ledger"
    verbose_name = "Ledger"

    def ready(self) -> None:
        from exchange.ledger import privacy  # noqa: F401  (registers the ε ledger's audit check)
