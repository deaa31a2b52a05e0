"""Catalog, upload, certification and ledger paths on PostgreSQL + S3 (moto_server), tasks run eagerly;
readiness and metrics against the real Redis broker."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
import redis

from exchange.ledger.audit import run_audit
from exchange.ledger.services import Posting, account_for, post_transaction
from marketplace.catalog.models import ProductVersion, VersionFile
from marketplace.certification.models import Certificate

pytestmark = pytest.mark.django_db


def _named(frame: pd.DataFrame, name: str) -> io.BytesIO:
    handle = io.BytesIO(frame.to_csv(index=False).encode())
    handle.name = name
    return handle


def test_database_and_storage_are_the_real_services(settings: Any) -> None:
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    assert settings.STORAGES["default"]["BACKEND"] == "storages.backends.s3.S3Storage"
    assert settings.CELERY_BROKER_URL.startswith("redis://")


def test_upload_certify_and_search_on_postgres_and_s3(
    provider: Any,
    api_client_for: Callable[[Any], Any],
    small_tables: dict[str, pd.DataFrame],
    s3_keys: Callable[[], set[str]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = api_client_for(provider)
    created = client.post(
        "/api/v1/products/",
        {
            "title": "Integration Census",
            "summary": "Census-like rows on real services.",
            "domain": "census",
            "kind": "dataset",
            "licenses": [{"code": "standard", "price_minor": 4900, "currency": "USD"}],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    slug = created.json()["slug"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/v1/products/{slug}/versions/",
            {
                "synthetic": _named(small_tables["synthetic"], "people.csv"),
                "train": _named(small_tables["train"], "train.csv"),
                "holdout": _named(small_tables["holdout"], "holdout.csv"),
                "target": "class",
            },
            format="multipart",
        )
    assert response.status_code == 201, response.content
    version = ProductVersion.objects.get(product__slug=slug, number=1)
    assert version.status == "certified"
    certificate = Certificate.objects.get(version=version)
    document = json.loads(client.get(f"/api/v1/certificates/{certificate.id}/").content)
    synthetic = VersionFile.objects.get(version=version, role="synthetic")
    assert document["subject"]["artifacts"][0]["sha256"] == synthetic.sha256
    stored = {(f.storage_alias, f.storage_name) for f in version.files.all()}
    assert {alias for alias, _ in stored} == {"default", "reference"}
    prefixes = {"default": "files", "reference": "reference"}
    assert {f"{prefixes[alias]}/{name}" for alias, name in stored} <= s3_keys()
    found = client.get("/api/v1/products/", {"q": "census", "min_quality": 0}).json()
    assert [item["slug"] for item in found["results"]] == [slug]


@pytest.mark.usefixtures("ledger_checks_only")
def test_ledger_postings_are_idempotent_and_audit_clean_on_postgres() -> None:
    clearing = account_for("stripe_clearing", "USD")
    fees = account_for("platform_fee_revenue", "USD")
    legs = [Posting(clearing, 2500), Posting(fees, -2500)]
    first = post_transaction(
        idempotency_key="it:sale:1", kind="sale", postings=legs, refs={"order": "ord_it"}
    )
    again = post_transaction(
        idempotency_key="it:sale:1", kind="sale", postings=legs, refs={"order": "ord_it"}
    )
    assert again.pk == first.pk
    report = run_audit()
    assert report.ok, report.problems


def test_readyz_checks_postgres_redis_and_s3(client: Any) -> None:
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (
        200,
        {"status": "ok", "database": "ok", "broker": "ok", "storage": "ok"},
    )


def test_metrics_report_redis_queue_depth(client: Any, settings: Any) -> None:
    settings.SYNTHEX_METRICS_TOKEN = "scrape-token"
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("certify", "fit")
    broker.rpush("certify", b"one", b"two")
    broker.rpush("fit", b"one")
    try:
        body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token").content.decode()
    finally:
        broker.delete("certify", "fit")
    assert 'synthex_queue_depth{queue="certify"} 2.0' in body
    assert 'synthex_queue_depth{queue="fit"} 1.0' in body
    assert os.environ["CELERY_BROKER_URL"].startswith("redis://")
