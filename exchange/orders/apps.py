from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "exchange.orders"
    label = "orders"
    verbose_name = "Orders and payments"

    def ready(self) -> None:
        from exchange.orders import ledger_checks  # noqa: F401  (registers the audit check)
