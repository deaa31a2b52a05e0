"""Prometheus metrics: request latency (web), task durations (workers), queue depth and certificates issued.

- ``synthex_http_request_duration_seconds{method,route,status}``: histogram of the time Django spent on a
  request, ``route`` being the URL pattern name (never the raw path, which would explode cardinality).
- ``synthex_task_duration_seconds{task,state}``: histogram of Celery task run times in seconds, recorded in
  the worker processes (their own /metrics endpoint: ``SYNTHEX_WORKER_METRICS_PORT``).
- ``synthex_queue_depth{queue}``: messages waiting per Celery queue, read from the broker at scrape time.
- ``synthex_certificates_issued_total``: certificates stored, counted in the database at scrape time, so
  every web host reports the same figure and it survives restarts.

With several processes per host (gunicorn workers, Celery's prefork pool) set ``PROMETHEUS_MULTIPROC_DIR``
to an empty folder before the processes start: each writes its samples there and the scrape sums them.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)
request_logger = logging.getLogger("synthex.request")

QUEUES = ("default", "certify", "fit", "sample")
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_TASK_BUCKETS = (0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)

REQUEST_LATENCY = Histogram(
    "synthex_http_request_duration_seconds",
    "Time spent handling an HTTP request in Django, in seconds.",
    ["method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
)
TASK_DURATION = Histogram(
    "synthex_task_duration_seconds",
    "Run time of a Celery task in a worker, in seconds.",
    ["task", "state"],
    buckets=_TASK_BUCKETS,
)


def queue_depths() -> dict[str, int]:
    """Messages waiting per queue on the configured broker (Redis lists, or the embedded SQLite broker's
    messages not yet taken). Raises on a broker error."""
    url = settings.CELERY_BROKER_URL
    if url.startswith("redis://") or url.startswith("rediss://"):
        import redis

        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            with client.pipeline(transaction=False) as pipe:
                for queue in QUEUES:
                    pipe.llen(queue)
                return dict(zip(QUEUES, (int(n) for n in pipe.execute()), strict=True))
        finally:
            client.close()
    if url.startswith("synthex+sqlite://"):
        from marketplace.core import broker

        waiting = broker.queue_depths(url)
        return {queue: waiting.get(queue, 0) for queue in QUEUES}
    return {}


class ScrapeTimeCollector(Collector):
    """Figures read from the broker and the database when Prometheus scrapes."""

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "synthex_queue_depth", "Celery messages waiting in a queue.", labels=["queue"]
        )
        try:
            for queue, waiting in queue_depths().items():
                depth.add_metric([queue], waiting)
        except Exception:
            logger.warning("queue depth unavailable", exc_info=True)
        yield depth
        from marketplace.certification.models import Certificate

        yield CounterMetricFamily(
            "synthex_certificates_issued",
            "Signed certificates stored (revoked ones included).",
            value=Certificate.objects.count(),
        )


def render() -> tuple[bytes, str]:
    """The exposition text of every metric of this host (all processes in multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    scrape = CollectorRegistry()
    scrape.register(ScrapeTimeCollector())
    return generate_latest(registry) + generate_latest(scrape), CONTENT_TYPE_LATEST


def _allowed(request: HttpRequest) -> bool:
    token = settings.SYNTHEX_METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "")
        return secrets.compare_digest(sent.encode(), f"Bearer {token}".encode())
    # Without a token only a direct loopback caller (a Prometheus on the same host, not a proxied request).
    if "X-Forwarded-For" in request.headers:
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics: with ``SYNTHEX_METRICS_TOKEN`` set, only for ``Authorization: Bearer <token>``;
    without it, only for direct connections from loopback. Anyone else gets 404 (no hint it exists)."""
    if not _allowed(request):
        return HttpResponse(status=404)
    body, content_type = render()
    return HttpResponse(body, content_type=content_type)


class MetricsMiddleware:
    """Times each request into ``synthex_http_request_duration_seconds`` and writes one log line per request
    (logger ``synthex.request``: method, path, route, status, duration_ms)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        match = getattr(request, "resolver_match", None)
        route = (match.view_name if match is not None else "") or "unmatched"
        REQUEST_LATENCY.labels(request.method or "", route, str(response.status_code)).observe(elapsed)
        request_logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "route": route,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )
        return response


_task_started: dict[str, float] = {}


def _on_task_prerun(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _task_started[task_id] = time.perf_counter()


def _on_task_postrun(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    started = _task_started.pop(task_id or "", None)
    if started is not None and task is not None:
        TASK_DURATION.labels(task.name, state or "UNKNOWN").observe(time.perf_counter() - started)


def _on_worker_ready(**_: Any) -> None:
    port = os.environ.get("SYNTHEX_WORKER_METRICS_PORT")
    if not port:
        return
    from prometheus_client import start_http_server

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        start_http_server(
            int(port), addr=os.environ.get("SYNTHEX_WORKER_METRICS_ADDR", "127.0.0.1"), registry=registry
        )
    else:
        start_http_server(int(port), addr=os.environ.get("SYNTHEX_WORKER_METRICS_ADDR", "127.0.0.1"))


def connect_task_signals() -> None:
    """Record task durations in this process; a worker with ``SYNTHEX_WORKER_METRICS_PORT`` serves them."""
    from celery import signals

    signals.task_prerun.connect(_on_task_prerun, weak=False)
    signals.task_postrun.connect(_on_task_postrun, weak=False)
    signals.worker_ready.connect(_on_worker_ready, weak=False)
