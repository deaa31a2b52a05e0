"""Upload sessions when files live on S3 (moto_server on 127.0.0.1): the client PUTs each chunk straight
to the store with a presigned multipart part URL, the server completes the multipart upload, a worker
hashes and validates the object, and attaching copies it inside the store. The web process never
receives the file's bytes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from marketplace.catalog.models import ProductVersion, Upload, VersionFile

pytestmark = pytest.mark.django_db

PART = 5 * 1024 * 1024  # S3's smallest part but the last


def keys(s3: Any) -> set[str]:
    client, bucket = s3
    return {item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", [])}


@pytest.fixture
def payload(small_tables: dict[str, Any]) -> bytes:
    """A CSV of two parts: one of 5 MiB and a shorter last one."""
    body = small_tables["synthetic"].to_csv(index=False).encode()
    header, rows = body.split(b"\n", 1)
    data = header + b"\n" + rows * (PART // len(rows) + 2)
    assert PART < len(data) < 2 * PART
    return data


def start(client: Any, payload: bytes, **extra: Any) -> dict[str, Any]:
    body = {"filename": "people.csv", "size": len(payload), "chunk_size": PART, **extra}
    response = client.post("/api/v1/uploads/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def put_part(url: str, data: bytes) -> None:
    assert url.startswith("http://127.0.0.1:") and "uploadId=" in url and "X-Amz-Signature=" in url
    response = httpx.put(url, content=data, timeout=60)
    assert response.status_code == 200, response.text


def test_parts_go_straight_to_the_store_resume_and_become_a_version(
    s3_files: Any,
    provider: Any,
    api_client_for: Callable[[Any], Any],
    product_factory: Callable[..., Any],
    payload: bytes,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = api_client_for(provider)
    product = product_factory(provider, "Straight to S3")
    upload = start(client, payload, product=product.slug)
    assert (upload["transport"], upload["chunks"], len(upload["part_urls"])) == ("s3", 2, 2)
    assert (upload["next_chunk"], upload["received_bytes"]) == (0, 0)
    # The server's chunk endpoint is not the way for this session.
    refused = client.generic(
        "PUT",
        f"/api/v1/uploads/{upload['id']}/chunks/0/",
        payload[:PART],
        content_type="application/octet-stream",
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "direct_upload")

    put_part(upload["part_urls"][0], payload[:PART])
    # A client killed here asks where to resume: the store's parts, with their MD5 to compare.
    resumed = client.get(f"/api/v1/uploads/{upload['id']}/").json()
    assert (resumed["next_chunk"], resumed["received_bytes"]) == (1, PART)
    assert resumed["chunk_md5"] == [hashlib.md5(payload[:PART]).hexdigest()]
    early = client.post(f"/api/v1/uploads/{upload['id']}/complete/")
    assert (early.status_code, early.json()["code"]) == (400, "incomplete_upload")

    put_part(resumed["part_urls"][1], payload[PART:])
    sha256 = hashlib.sha256(payload).hexdigest()
    with django_capture_on_commit_callbacks(execute=True) as queued:
        done = client.post(f"/api/v1/uploads/{upload['id']}/complete/", {"sha256": sha256}, format="json")
    assert done.status_code == 200, done.content
    assert len(queued) == 1  # the worker's validation, which hashes the assembled object
    checked = client.get(f"/api/v1/uploads/{upload['id']}/").json()
    assert (checked["status"], checked["sha256"], checked["validation"]["status"]) == (
        "complete",
        sha256,
        "valid",
    )
    incoming = f"reference/incoming/{upload['id']}"
    assert incoming in keys(s3_files)

    version = client.post(
        f"/api/v1/products/{product.slug}/versions/",
        {"synthetic": [upload["id"]], "submit": False},
        format="json",
    )
    assert version.status_code == 201, version.content
    stored = VersionFile.objects.get(version__product=product)
    assert (stored.sha256, stored.size_bytes) == (sha256, len(payload))
    copied = s3_files[0].get_object(Bucket=s3_files[1], Key=f"files/{stored.storage_name}")["Body"].read()
    assert copied == payload
    assert incoming not in keys(s3_files)  # copied into place inside the store, then dropped
    assert Upload.objects.get(pk=upload["id"]).status == "attached"


def test_a_file_other_than_announced_is_refused_by_the_check(
    s3_files: Any,
    provider: Any,
    api_client_for: Callable[[Any], Any],
    product_factory: Callable[..., Any],
    payload: bytes,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = api_client_for(provider)
    product = product_factory(provider, "Swapped")
    upload = start(client, payload)
    put_part(upload["part_urls"][0], payload[:PART])
    put_part(upload["part_urls"][1], payload[PART:-1] + b"#")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/api/v1/uploads/{upload['id']}/complete/",
            {"sha256": hashlib.sha256(payload).hexdigest()},
            format="json",
        )
    check = client.get(f"/api/v1/uploads/{upload['id']}/").json()["validation"]
    assert (check["status"], check["code"]) == ("invalid", "checksum_mismatch")
    attach = client.post(
        f"/api/v1/products/{product.slug}/versions/", {"synthetic": [upload["id"]]}, format="json"
    )
    assert (attach.status_code, attach.json()["code"]) == (400, "checksum_mismatch")
    assert ProductVersion.objects.count() == 0


def test_an_unchecked_upload_is_not_read_by_the_web_process(
    s3_files: Any,
    provider: Any,
    api_client_for: Callable[[Any], Any],
    product_factory: Callable[..., Any],
    payload: bytes,
) -> None:
    client = api_client_for(provider)
    product = product_factory(provider, "Waits for the worker")
    upload = start(client, payload)
    for index, url in enumerate(upload["part_urls"]):
        put_part(url, payload[index * PART : (index + 1) * PART])
    assert client.post(f"/api/v1/uploads/{upload['id']}/complete/").status_code == 200  # no worker ran
    attach = client.post(
        f"/api/v1/products/{product.slug}/versions/", {"synthetic": [upload["id"]]}, format="json"
    )
    assert (attach.status_code, attach.json()["code"]) == (409, "upload_validating")


def test_deleting_a_session_aborts_its_multipart_upload(
    s3_files: Any, provider: Any, api_client_for: Callable[[Any], Any], payload: bytes
) -> None:
    client = api_client_for(provider)
    upload = start(client, payload)
    put_part(upload["part_urls"][0], payload[:PART])
    stored = Upload.objects.get(pk=upload["id"])
    assert client.delete(f"/api/v1/uploads/{upload['id']}/").status_code == 204
    client_s3, bucket = s3_files
    pending = client_s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert stored.multipart_id not in {item["UploadId"] for item in pending}
    assert not Upload.objects.exists()


def test_small_chunks_are_refused_on_s3(
    s3_files: Any, provider: Any, api_client_for: Callable[[Any], Any], payload: bytes
) -> None:
    response = api_client_for(provider).post(
        "/api/v1/uploads/", {"filename": "p.csv", "size": len(payload), "chunk_size": 1 << 20}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (400, "bad_chunk_size")
    assert not Upload.objects.exists()
