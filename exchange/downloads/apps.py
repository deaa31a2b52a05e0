from django.apps import AppConfig


class DownloadsConfig(AppConfig):
    name = "exchange.downloads"
    label = "downloads"
    verbose_name = "Downloads"

    def ready(self) -> None:
        from exchange.downloads import ledger_checks  # noqa: F401  (registers the audit check)
