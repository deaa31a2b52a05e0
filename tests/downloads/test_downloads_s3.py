"""S3 backend: after the same checks, the download route redirects to a short-lived presigned URL
(moto_server on 127.0.0.1; moto does not check presigned expiry, so expiry is tested on our own links)."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx
import pytest


@pytest.fixture
def s3_storage(settings: Any, moto_url: str) -> str:
    import boto3

    bucket = f"synthex-{time.monotonic_ns()}"
    boto3.client(
        "s3",
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    options = {
        "bucket_name": bucket,
        "endpoint_url": moto_url,
        "access_key": "testing",
        "secret_key": "testing",
        "region_name": "us-east-1",
        "signature_version": "s3v4",
        "addressing_style": "path",
        "file_overwrite": False,
        "querystring_auth": True,
    }
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {**options, "location": "files"}},
    }
    return moto_url


@pytest.mark.django_db
def test_s3_download_redirects_to_presigned_url(
    s3_storage: str, bought: Any, buyer: Any, user_factory: Any, api_client_for: Any
) -> None:
    from django.core.files.storage import storages

    from exchange.downloads.models import Download

    assert storages["default"].exists(bought.version.files.get().storage_name)
    client = api_client_for(buyer)
    link = client.post(
        f"/api/v1/entitlements/{bought.id}/links/", {"format": "parquet"}, format="json"
    ).json()
    path = link["url"].split("testserver", 1)[1]
    refused = api_client_for(user_factory()).get(path)
    assert refused.status_code == 403
    response = client.get(path)
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(s3_storage) and "X-Amz-Expires=60" in location
    body = httpx.get(location, timeout=10).content
    assert hashlib.sha256(body).hexdigest() == link["sha256"]
    assert sorted(Download.objects.values_list("outcome", "reason")) == [
        ("refused", "wrong_buyer"),
        ("served", ""),
    ]
