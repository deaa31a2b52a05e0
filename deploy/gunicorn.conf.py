"""gunicorn settings for Synthex web hosts (``gunicorn -c deploy/gunicorn.conf.py marketplace.wsgi``).

Environment: ``SYNTHEX_BIND`` (127.0.0.1:8000), ``WEB_CONCURRENCY`` (workers, default 2 per core),
``GUNICORN_THREADS`` (4), ``GUNICORN_TIMEOUT`` (seconds, 60), ``GUNICORN_PRELOAD`` (1: import the application in the
master and fork the workers from it; 0: each worker imports it). With ``PROMETHEUS_MULTIPROC_DIR`` set, the folder is
emptied at start and each worker's samples are dropped when it exits.
"""

import multiprocessing
import os
from pathlib import Path

bind = os.environ.get("SYNTHEX_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", str(2 * multiprocessing.cpu_count())))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Uploads stream to disk and downloads stream from storage: a request may legitimately take a while, the
# worker heartbeat keeps gunicorn from killing such a worker.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# The application and every view are imported once, in the master (when_ready below), and workers are forked
# from it: a worker replaced by max_requests serves within milliseconds instead of spending seconds of CPU on
# imports (pandas, scikit-learn, SciPy) while its siblings serve a full load; the code pages are shared.
# GUNICORN_PRELOAD=0 imports in each worker instead.
preload_app = os.environ.get("GUNICORN_PRELOAD", "1") != "0"
# A worker is replaced after this many requests (a bound on slow leaks); the jitter is wide enough that two
# workers are rarely replaced at once.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = max_requests // 2
# gunicorn's control socket defaults to one path per user (~/.gunicorn/gunicorn.ctl), which two instances on a
# host would share: each instance keeps its own under its var dir.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET") or str(
    Path(os.environ.get("SYNTHEX_VAR_DIR") or Path(__file__).resolve().parents[1] / "var") / "gunicorn.ctl"
)


def on_starting(server):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for stale in Path(folder).glob("*.db"):
            stale.unlink()


def child_exit(server, worker):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def when_ready(server):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    if server.cfg.preload_app:
        # Preloaded: import every view in the master, before the workers are forked. No connection opened
        # here may be inherited by them (each worker opens its own).
        from django.db import connections
        from django.urls import get_resolver

        patterns = get_resolver().url_patterns
        connections.close_all()
        server.log.info("application preloaded: %d URL patterns", len(patterns))


def post_worker_init(worker):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    # Import every view (the URLconf reaches pandas, scikit-learn and SciPy: seconds of imports) before this
    # worker accepts its first request (nothing left to import when the master preloaded them).
    from django.urls import get_resolver

    patterns = get_resolver().url_patterns
    worker.log.debug("worker %s warmed up: %d URL patterns", worker.pid, len(patterns))
