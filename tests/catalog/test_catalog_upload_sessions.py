from __future__ import annotations

import hashlib

import pytest

from marketplace.catalog.models import ProductVersion, Upload
from marketplace.catalog.upload_sessions import MIN_CHUNK_SIZE, part_path

pytestmark = pytest.mark.django_db


@pytest.fixture
def csv_payload(small_tables) -> bytes:
    payload = small_tables["synthetic"].to_csv(index=False).encode()
    while len(payload) < 2 * MIN_CHUNK_SIZE + 1000:
        payload += payload.split(b"\n", 1)[1]
    return payload


def chunks(payload: bytes, size: int) -> list[bytes]:
    return [payload[i : i + size] for i in range(0, len(payload), size)]


def put_chunk(client, upload_id: str, index: int, body: bytes, **headers):
    return client.generic(
        "PUT",
        f"/api/v1/uploads/{upload_id}/chunks/{index}/",
        body,
        content_type="application/octet-stream",
        **headers,
    )


def start(client, payload: bytes, **extra):
    body = {"filename": "people.csv", "size": len(payload), "chunk_size": MIN_CHUNK_SIZE, **extra}
    return client.post("/api/v1/uploads/", body, format="json")


def test_chunked_upload_resumes_and_becomes_a_version(provider, api_client_for, product_factory, csv_payload):
    client = api_client_for(provider)
    product = product_factory(provider, "Chunky")
    started = start(client, csv_payload, sha256=hashlib.sha256(csv_payload).hexdigest())
    assert started.status_code == 201
    upload_id = started.json()["id"]
    parts = chunks(csv_payload, MIN_CHUNK_SIZE)
    assert started.json()["chunks"] == len(parts) >= 3
    first = put_chunk(
        client, upload_id, 0, parts[0], HTTP_X_CHUNK_SHA256=hashlib.sha256(parts[0]).hexdigest()
    )
    assert first.json()["next_chunk"] == 1
    # A killed client comes back: it asks where to resume and re-sends only what is missing.
    state = client.get(f"/api/v1/uploads/{upload_id}/").json()
    assert (state["received_bytes"], state["next_chunk"]) == (MIN_CHUNK_SIZE, 1)
    assert put_chunk(client, upload_id, 0, parts[0]).status_code == 200  # a duplicate is harmless
    for index in range(1, len(parts)):
        assert put_chunk(client, upload_id, index, parts[index]).status_code == 200
    done = client.post(f"/api/v1/uploads/{upload_id}/complete/")
    assert done.json()["status"] == "complete"
    assert done.json()["sha256"] == hashlib.sha256(csv_payload).hexdigest()
    # The chunk hash the client sent was checked and kept; chunks sent without one list "".
    assert done.json()["chunk_sha256"] == [hashlib.sha256(parts[0]).hexdigest()] + [""] * (len(parts) - 1)
    version = client.post(
        f"/api/v1/products/{product.slug}/versions/",
        {"synthetic": [upload_id], "submit": False},
        format="json",
    )
    assert version.status_code == 201, version.content
    assert version.json()["files"][0]["sha256"] == hashlib.sha256(csv_payload).hexdigest()
    assert Upload.objects.get(pk=upload_id).status == "attached"
    again = client.post(
        f"/api/v1/products/{product.slug}/versions/", {"synthetic": [upload_id]}, format="json"
    )
    assert again.status_code == 409
    assert ProductVersion.objects.count() == 1


@pytest.mark.parametrize(
    ("index", "body", "headers", "status", "code"),
    [
        (1, b"x" * MIN_CHUNK_SIZE, {}, 409, "chunk_out_of_order"),
        (0, b"x" * 10, {}, 400, "bad_chunk"),
        (9, b"x", {}, 400, "bad_chunk"),
        (0, b"x" * MIN_CHUNK_SIZE, {"HTTP_X_CHUNK_SHA256": "0" * 64}, 400, "chunk_corrupted"),
        (0, b"x" * MIN_CHUNK_SIZE, {"HTTP_X_CHUNK_SHA256": "not-a-hash"}, 400, "bad_sha256"),
    ],
)
def test_bad_chunks_are_refused_and_change_nothing(
    provider, api_client_for, csv_payload, index, body, headers, status, code
):
    client = api_client_for(provider)
    upload_id = start(client, csv_payload).json()["id"]
    response = put_chunk(client, upload_id, index, body, **headers)
    assert response.status_code == status
    assert response.json()["code"] == code
    upload = Upload.objects.get(pk=upload_id)
    assert (upload.received_bytes, upload.chunk_sha256) == (0, [])
    assert part_path(upload).stat().st_size == 0


def test_resent_chunk_with_other_bytes_is_a_conflict(provider, api_client_for, csv_payload):
    client = api_client_for(provider)
    upload_id = start(client, csv_payload).json()["id"]
    put_chunk(client, upload_id, 0, csv_payload[:MIN_CHUNK_SIZE])
    response = put_chunk(client, upload_id, 0, b"y" * MIN_CHUNK_SIZE)
    assert response.status_code == 409
    assert response.json()["code"] == "chunk_mismatch"
    # Differing in the last byte only, and with a correct hash of its own bytes, is still a conflict.
    changed = csv_payload[: MIN_CHUNK_SIZE - 1] + b"#"
    response = put_chunk(
        client, upload_id, 0, changed, HTTP_X_CHUNK_SHA256=hashlib.sha256(changed).hexdigest()
    )
    assert response.status_code == 409
    assert response.json()["code"] == "chunk_mismatch"
    assert part_path(Upload.objects.get(pk=upload_id)).read_bytes() == csv_payload[:MIN_CHUNK_SIZE]


def test_complete_checks_size_and_whole_file_hash(provider, api_client_for, csv_payload):
    client = api_client_for(provider)
    upload_id = start(client, csv_payload, sha256="a" * 64).json()["id"]
    early = client.post(f"/api/v1/uploads/{upload_id}/complete/")
    assert early.status_code == 400
    assert early.json()["code"] == "incomplete_upload"
    for index, part in enumerate(chunks(csv_payload, MIN_CHUNK_SIZE)):
        put_chunk(client, upload_id, index, part)
    wrong = client.post(f"/api/v1/uploads/{upload_id}/complete/")
    assert wrong.status_code == 400
    assert wrong.json()["code"] == "checksum_mismatch"
    assert not Upload.objects.filter(pk=upload_id).exists()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"filename": "x.csv", "size": 0}, "min_value"),
        ({"filename": "x.csv", "size": 10, "chunk_size": 10}, "bad_chunk_size"),
        ({"filename": "x.csv", "size": 10, "sha256": "nothex"}, "invalid"),
    ],
)
def test_bad_upload_requests(provider, api_client_for, body, code):
    response = api_client_for(provider).post("/api/v1/uploads/", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert not Upload.objects.exists()


def test_someone_elses_upload_is_invisible(provider, buyer, api_client_for, product_factory, csv_payload):
    upload_id = start(api_client_for(provider), csv_payload).json()["id"]
    other = api_client_for(buyer)
    assert other.get(f"/api/v1/uploads/{upload_id}/").status_code == 404
    assert put_chunk(other, upload_id, 0, csv_payload[:MIN_CHUNK_SIZE]).status_code == 404
    product = product_factory(provider, "Not via others")
    response = api_client_for(provider).post(
        f"/api/v1/products/{product.slug}/versions/", {"synthetic": ["upl_doesnotexist"]}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_upload"


@pytest.mark.parametrize("forget_running_hash", [False, True])
def test_whole_file_hash_is_right_with_or_without_the_running_hash(
    provider, api_client_for, csv_payload, forget_running_hash
):
    from marketplace.catalog import upload_sessions

    client = api_client_for(provider)
    upload_id = start(client, csv_payload, sha256=hashlib.sha256(csv_payload).hexdigest()).json()["id"]
    for index, part in enumerate(chunks(csv_payload, MIN_CHUNK_SIZE)):
        assert put_chunk(client, upload_id, index, part).status_code == 200
        put_chunk(client, upload_id, index, part)  # a duplicate keeps the running hash usable
    if forget_running_hash:  # as when another worker process received the chunks
        upload_sessions._RUNNING.clear()
    done = client.post(f"/api/v1/uploads/{upload_id}/complete/")
    assert done.status_code == 200
    assert done.json()["sha256"] == hashlib.sha256(csv_payload).hexdigest()


@pytest.mark.parametrize("chunk_size", [MIN_CHUNK_SIZE, MIN_CHUNK_SIZE + 1000], ids=["aligned", "unaligned"])
def test_stored_bytes_are_exact_whatever_the_chunk_size(provider, api_client_for, csv_payload, chunk_size):
    client = api_client_for(provider)
    upload_id = start(client, csv_payload, chunk_size=chunk_size).json()["id"]
    for index, part in enumerate(chunks(csv_payload, chunk_size)):
        assert put_chunk(client, upload_id, index, part).status_code == 200
    assert part_path(Upload.objects.get(pk=upload_id)).read_bytes() == csv_payload


def send_all(client, payload: bytes) -> str:
    """An upload session holding every chunk of ``payload``, not yet completed; returns its id."""
    upload_id = start(client, payload).json()["id"]
    for index, part in enumerate(chunks(payload, MIN_CHUNK_SIZE)):
        assert put_chunk(client, upload_id, index, part).status_code == 200
    return upload_id


def test_a_complete_upload_is_checked_by_a_worker_and_attached_without_parsing_again(
    provider, api_client_for, product_factory, csv_payload, django_capture_on_commit_callbacks, monkeypatch
):
    from marketplace.catalog import services

    client = api_client_for(provider)
    product = product_factory(provider, "Checked")
    upload_id = send_all(client, csv_payload)
    with django_capture_on_commit_callbacks(execute=True) as queued:
        done = client.post(f"/api/v1/uploads/{upload_id}/complete/")
    assert done.status_code == 200
    assert len(queued) == 1  # the validation task, sent to the worker once the upload is complete
    check = client.get(f"/api/v1/uploads/{upload_id}/").json()["validation"]
    header = csv_payload.split(b"\n", 1)[0].decode().split(",")
    assert (check["status"], check["progress"], check["format"], check["code"]) == ("valid", 100, "csv", None)
    assert check["columns"] == header
    assert check["rows"] == csv_payload.count(b"\n") - 1

    def parse_again(*args, **kwargs):
        raise AssertionError("attaching a checked upload parsed it again")

    monkeypatch.setattr(services, "inspect_table", parse_again)
    version = client.post(
        f"/api/v1/products/{product.slug}/versions/",
        {"synthetic": [upload_id], "submit": False},
        format="json",
    )
    assert version.status_code == 201, version.content
    assert version.json()["files"][0]["rows"] == check["rows"]


def test_a_file_the_check_refuses_is_refused_when_attached_and_leaves_no_version(
    provider, api_client_for, product_factory, django_capture_on_commit_callbacks
):
    client = api_client_for(provider)
    product = product_factory(provider, "Refused")
    payload = b"a,b\n" + b"1,2\n" * 1000 + b"3\n"  # a row short of a column
    upload_id = send_all(client, payload)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/api/v1/uploads/{upload_id}/complete/")
    check = client.get(f"/api/v1/uploads/{upload_id}/").json()["validation"]
    assert (check["status"], check["code"]) == ("invalid", "ragged_rows")
    assert check["error"].startswith("people.csv: ")
    attach = client.post(
        f"/api/v1/products/{product.slug}/versions/", {"synthetic": [upload_id]}, format="json"
    )
    assert (attach.status_code, attach.json()["code"]) == (400, "ragged_rows")
    assert attach.json()["detail"] == check["error"]
    assert ProductVersion.objects.count() == 0
    assert Upload.objects.get(pk=upload_id).status == "complete"  # can still be deleted by its owner


def test_attaching_during_a_check_is_a_conflict_and_a_lost_check_is_taken_over(
    provider, api_client_for, product_factory, csv_payload
):
    from datetime import timedelta

    from django.utils import timezone

    client = api_client_for(provider)
    product = product_factory(provider, "Busy")
    upload_id = send_all(client, csv_payload)
    client.post(f"/api/v1/uploads/{upload_id}/complete/")  # no worker ran: the check is pending
    Upload.objects.filter(pk=upload_id).update(
        validation="running", validation_progress=40, updated_at=timezone.now()
    )
    url = f"/api/v1/products/{product.slug}/versions/"
    busy = client.post(url, {"synthetic": [upload_id], "submit": False}, format="json")
    assert (busy.status_code, busy.json()["code"]) == (409, "upload_validating")
    assert "40% done" in busy.json()["detail"]
    # A check whose worker died is claimed again, here by the request, which checks the file itself.
    Upload.objects.filter(pk=upload_id).update(updated_at=timezone.now() - timedelta(hours=1))
    taken = client.post(url, {"synthetic": [upload_id], "submit": False}, format="json")
    assert taken.status_code == 201, taken.content
    assert Upload.objects.get(pk=upload_id).status == "attached"


def test_abandoned_sessions_are_swept_with_their_bytes(provider, api_client_for, csv_payload, settings):
    from datetime import timedelta

    from django.utils import timezone

    from marketplace.catalog import upload_sessions
    from marketplace.catalog.tasks import sweep_uploads_task

    settings.SYNTHEX_UPLOAD_SESSION_HOURS = 48
    client = api_client_for(provider)
    old, fresh, attached = (start(client, csv_payload).json()["id"] for _ in range(3))
    put_chunk(client, old, 0, csv_payload[:MIN_CHUNK_SIZE])
    long_ago = timezone.now() - timedelta(hours=49)
    Upload.objects.filter(pk__in=[old, attached]).update(updated_at=long_ago)
    Upload.objects.filter(pk=attached).update(status="attached")
    paths = {key: part_path(Upload.objects.get(pk=key)) for key in (old, fresh)}
    assert sweep_uploads_task() == 1
    assert set(Upload.objects.values_list("pk", flat=True)) == {fresh, attached}
    assert not paths[old].exists() and paths[fresh].exists()
    assert upload_sessions.sweep_abandoned_uploads() == 0


def test_a_check_the_server_fails_is_a_server_error_not_the_files_fault(
    provider, api_client_for, product_factory, csv_payload, monkeypatch
):
    from marketplace.catalog import services

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(services, "inspect_table", broken)
    client = api_client_for(provider)
    product = product_factory(provider, "Unlucky")
    upload_id = send_all(client, csv_payload)
    client.post(f"/api/v1/uploads/{upload_id}/complete/")
    attach = client.post(
        f"/api/v1/products/{product.slug}/versions/", {"synthetic": [upload_id]}, format="json"
    )
    assert (attach.status_code, attach.json()["code"]) == (503, "validation_failed")
    assert "upload it again" in attach.json()["detail"] and "disk on fire" not in attach.json()["detail"]
    assert ProductVersion.objects.count() == 0
