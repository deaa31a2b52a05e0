"""Production settings and the operations surface: `check --deploy` is clean with the required environment,
each missing requirement stops the process, CSP on every page, /metrics only for its token or loopback,
/readyz names the failing part, logs are one JSON object per line."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PEM = (
    "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIDrTn6l4JPi3Qa0rZ2m0aJqZ4D5r8xR0Vq2a3Yd2Wm8P\n"
    "-----END PRIVATE KEY-----"
)
REQUIRED = {
    "SECRET_KEY": "deploy-test-" + "x7Qp" * 12,
    "ALLOWED_HOSTS": "synthex.example",
    "DATABASE_URL": "postgres://synthex@127.0.0.1:1/synthex",
    "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
    "SYNTHEX_S3_BUCKET": "synthex-files",
    "SYNTHEX_SIGNING_KEY_PEM": PEM,
}


def _manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in REQUIRED and not k.startswith(("SYNTHEX_", "CELERY_", "DJANGO_"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "marketplace.settings.production",
            "SYNTHEX_VAR_DIR": str(tmp_path),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_check_deploy_is_clean_with_the_required_environment(tmp_path: Path) -> None:
    result = _manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **REQUIRED)
    assert (result.returncode, result.stdout.strip()) == (
        0,
        "System check identified no issues (0 silenced).",
    ), result.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY is required"),
        ({"SECRET_KEY": "short"}, "at least 50 characters"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS is required"),
        ({"DATABASE_URL": "sqlite:////tmp/x.db"}, "must be a postgres:// URL"),
        ({"CELERY_BROKER_URL": "filesystem://"}, "must be a redis:// or amqp:// URL"),
        ({"SYNTHEX_S3_BUCKET": ""}, "SYNTHEX_S3_BUCKET is required"),
        ({"SYNTHEX_SIGNING_KEY_PEM": ""}, "SYNTHEX_SIGNING_KEY_PEM is required"),
        ({"SYNTHEX_DOWNLOAD_RATE": "lots"}, "SYNTHEX_DOWNLOAD_RATE must look like 30/min"),
    ],
)
def test_production_refuses_to_start_without_each_requirement(
    tmp_path: Path, change: dict[str, str], message: str
) -> None:
    env = {k: v for k, v in {**REQUIRED, **change}.items() if v}
    result = _manage(tmp_path, "check", **env)
    assert result.returncode == 1
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/api/v1/products/", "/accounts/login/", "/api/v1/docs/"])
def test_every_response_carries_a_csp_without_inline_script(client: Any, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    policy = dict(part.split(" ", 1) for part in response["Content-Security-Policy"].split("; "))
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"


def test_no_template_has_inline_script_or_event_handlers() -> None:
    offenders = []
    for template in (REPO / "templates").rglob("*.html"):
        text = template.read_text()
        for tag in re.finditer(r"<script\b[^>]*>", text):
            if "src=" not in tag.group(0):
                offenders.append(f"{template.name}: {tag.group(0)}")
        if re.search(r"\son[a-z]+\s*=", text):
            offenders.append(f"{template.name}: inline event handler")
        if "<style" in text:
            offenders.append(f"{template.name}: <style>")
    assert offenders == []


@pytest.mark.django_db
def test_api_docs_script_is_served_from_a_url_not_inline(client: Any) -> None:
    page = client.get("/api/v1/docs/").content.decode()
    assert "<script>" not in page
    script = client.get("/api/v1/docs/?script=")
    assert (script.status_code, script["Content-Type"].split(";")[0]) == (200, "application/javascript")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("token", "headers", "remote", "status"),
    [
        ("", {}, "127.0.0.1", 200),
        ("", {}, "10.0.0.7", 404),
        ("", {"HTTP_X_FORWARDED_FOR": "203.0.113.9"}, "127.0.0.1", 404),
        ("s3cret", {}, "127.0.0.1", 404),
        ("s3cret", {"HTTP_AUTHORIZATION": "Bearer wrong"}, "10.0.0.7", 404),
        ("s3cret", {"HTTP_AUTHORIZATION": "Bearer s3cret"}, "10.0.0.7", 200),
    ],
)
def test_metrics_only_for_the_token_or_direct_loopback(
    client: Any, settings: Any, token: str, headers: dict[str, str], remote: str, status: int
) -> None:
    settings.SYNTHEX_METRICS_TOKEN = token
    assert client.get("/metrics", REMOTE_ADDR=remote, **headers).status_code == status


@pytest.mark.django_db
def test_metrics_expose_latency_queue_depth_and_certificates(client: Any) -> None:
    client.get("/healthz")
    body = client.get("/metrics").content.decode()
    assert 'synthex_http_request_duration_seconds_count{method="GET",route="healthz",status="200"}' in body
    assert 'synthex_queue_depth{queue="certify"} 0.0' in body
    assert "synthex_certificates_issued_total 0.0" in body
    assert "# TYPE synthex_task_duration_seconds histogram" in body


@pytest.mark.django_db
def test_task_durations_are_recorded_per_task_and_state() -> None:
    from exchange.ledger.tasks import publish_tree_head_task
    from marketplace.core.metrics import TASK_DURATION

    name = "exchange.ledger.tasks.publish_tree_head_task"

    def count() -> float:
        samples = TASK_DURATION.collect()[0].samples
        return sum(s.value for s in samples if s.name.endswith("_count") and s.labels["task"] == name)

    before = count()
    publish_tree_head_task.apply()
    assert count() == before + 1


@pytest.mark.django_db
def test_readyz_names_the_failing_part(client: Any, monkeypatch: Any) -> None:
    from marketplace.core import views

    def down() -> None:
        raise ConnectionError("broker down")

    monkeypatch.setitem(views.CHECKS, "broker", down)
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (
        503,
        {"status": "unavailable", "database": "ok", "broker": "unavailable", "storage": "ok"},
    )
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_is_ok_on_the_embedded_services(client: Any) -> None:
    assert client.get("/readyz").json() == {"status": "ok", "database": "ok", "broker": "ok", "storage": "ok"}


def test_json_log_lines_carry_extra_fields_and_tracebacks() -> None:
    from marketplace.core.logging import JsonFormatter

    record = logging.LogRecord("synthex.request", logging.INFO, __file__, 1, "GET %s", ("/x",), None)
    record.status = 200
    record.duration_ms = 1.5
    line = json.loads(JsonFormatter().format(record))
    assert {k: line[k] for k in ("level", "logger", "message", "status", "duration_ms")} == {
        "level": "INFO",
        "logger": "synthex.request",
        "message": "GET /x",
        "status": 200,
        "duration_ms": 1.5,
    }
    assert line["ts"].endswith("+00:00")
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    text = JsonFormatter().format(failed)
    assert "\n" not in text
    assert "ValueError: boom" in json.loads(text)["exception"]
