from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "marketplace.core"
    label = "core"
    verbose_name = "Synthex core"

    def ready(self) -> None:
        # Loading the Celery app here makes it the current app in every Django process (web, worker,
        # management commands) without importing Celery from the pure packages.
        import marketplace.celery  # noqa: F401
        from marketplace.core.metrics import connect_task_signals

        connect_task_signals()
