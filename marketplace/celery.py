"""The Celery application. Queues: ``default``, ``certify``, ``fit``, ``sample`` (routing in settings)."""

import os

from celery import Celery

from marketplace.core import broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")

app = Celery("synthex")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def ensure_broker_folders() -> None:
    """Create the embedded broker's file and table (a no-op on Redis or RabbitMQ)."""
    url = str(app.conf.broker_url or "")
    if url.startswith(f"{broker.SCHEME}+sqlite://"):
        broker.connect(broker.database_path(url)).close()
