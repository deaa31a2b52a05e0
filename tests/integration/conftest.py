"""Integration tests on real servers: PostgreSQL, Redis and S3 (moto_server).

They run when the environment points at those servers (``make test-integration`` starts them with
``scripts/services.sh`` and exports ``DATABASE_URL``, ``CELERY_BROKER_URL``, ``SYNTHEX_S3_*``); on the embedded
default they are skipped. Every test here is marked ``integration``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from integration_support import HERE, PYTHON, REPO, free_port, services_configured, stop, wait_http  # noqa: F401


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    skip = pytest.mark.skip(reason="needs PostgreSQL, Redis and S3: run `make test-integration`")
    for item in items:
        if Path(str(item.fspath)).resolve().parent == HERE:
            item.add_marker(pytest.mark.integration)
            if not services_configured():
                item.add_marker(skip)


@pytest.fixture(scope="session")
def signing_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )


@pytest.fixture
def s3_keys() -> Callable[[], set[str]]:
    """Lists every object key in the test bucket."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=os.environ["SYNTHEX_S3_ENDPOINT_URL"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )

    def keys() -> set[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=os.environ["SYNTHEX_S3_BUCKET"])
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    return keys


@pytest.fixture
def production_env(signing_key_pem: str, tmp_path: Path, settings: Any) -> Callable[..., dict[str, str]]:
    """The environment of a production process on the test database (the one pytest-django made)."""

    def make(**extra: str) -> dict[str, str]:
        database = settings.DATABASES["default"]
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "marketplace.settings.production",
            "SECRET_KEY": "integration-" + "k3y-" * 16,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": (
                f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
            ),
            "SYNTHEX_SIGNING_KEY_PEM": signing_key_pem,
            "SECURE_SSL_REDIRECT": "0",
            "SYNTHEX_VAR_DIR": str(tmp_path / "var"),
            "STATIC_ROOT": str(tmp_path / "static"),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO),
            **extra,
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        return env

    return make


@pytest.fixture
def ledger_guarded(transactional_db: None) -> Iterator[None]:
    """The ledger guards in place for a ``transaction=True`` test, and the ledger emptied afterwards.

    Django's flush after such a test TRUNCATEs every table, which the guards refuse on PostgreSQL; they are
    dropped after the test and installed again before the next one.
    """
    from django.db import connection

    from exchange.ledger import schema

    schema.drop_guards(connection)
    schema.install_guards(connection)
    yield
    schema.purge_ledger(connection)
    schema.drop_guards(connection)


@pytest.fixture
def processes() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Starts processes from the repository root; stops every one at the end of the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        handle = log.open("wb")
        process = subprocess.Popen(args, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT)
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        stop(process)
