"""``synthex upload``: chunked sessions end to end, and a killed upload that resumes re-sending at most one chunk."""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
from pathlib import Path

import pytest
from cli_support import cli_process

from marketplace.catalog import upload_sessions
from marketplace.catalog.models import ProductVersion, Upload, VersionFile
from marketplace.catalog.upload_sessions import MIN_CHUNK_SIZE

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def big_csv(small_tables, tmp_path) -> Path:
    """A valid CSV of a little over six 256 KiB chunks."""
    frame = small_tables["synthetic"]
    text = frame.to_csv(index=False)
    body = text.split("\n", 1)[1]
    while len(text) < 6 * MIN_CHUNK_SIZE + 1000:
        text += body
    path = tmp_path / "people.csv"
    path.write_text(text)
    return path


@pytest.fixture
def chunk_log(monkeypatch):
    """The index of every chunk PUT the server handles, in order."""
    calls: list[int] = []
    original = upload_sessions.receive_chunk

    def counting(upload, *, index, **kwargs):
        calls.append(index)
        return original(upload, index=index, **kwargs)

    monkeypatch.setattr(upload_sessions, "receive_chunk", counting)
    return calls


def test_upload_with_reference_files_makes_a_draft_version(
    cli, provider, token_for, product_factory, small_tables, tmp_path, big_csv, chunk_log
):
    product = product_factory(provider, "Uploaded")
    train, holdout = tmp_path / "train.csv", tmp_path / "holdout.csv"
    small_tables["train"].to_csv(train, index=False)
    small_tables["holdout"].to_csv(holdout, index=False)
    result = cli(
        "upload", product.slug, big_csv, "--train", train, "--holdout", holdout, "--target", "class",
        "--no-submit", "--chunk-size", MIN_CHUNK_SIZE, "--json", token=token_for(provider),
    )  # fmt: skip
    assert result.code == 0, result.err
    body = result.json()
    assert body["job"] is None
    assert body["version"]["status"] == "draft"
    assert body["version"]["target_column"] == "class"
    expected = {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in (big_csv, train, holdout)}
    assert {f["path"]: f["sha256"] for f in body["files"]} == expected
    assert [f["sent_chunks"] for f in body["files"]] == [7, 1, 1]
    assert chunk_log == [0, 1, 2, 3, 4, 5, 6, 0, 0]
    stored = VersionFile.objects.filter(version__product=product)
    assert sorted((f.role, f.sha256) for f in stored) == sorted(
        zip(["synthetic", "train", "holdout"], expected.values(), strict=True)
    )
    assert set(Upload.objects.values_list("status", flat=True)) == {"attached"}
    # Attached uploads are forgotten: the same file uploads afresh next time.
    assert json.loads((tmp_path / "synthex" / "uploads.json").read_text()) == {}


def test_upload_refusals_leave_no_version(
    cli, provider, buyer, token_for, product_factory, big_csv, chunk_log
):
    product = product_factory(provider, "Not yours")
    refused = cli(
        "upload", product.slug, big_csv, "--no-submit", "--chunk-size", MIN_CHUNK_SIZE, token=token_for(buyer)
    )
    assert refused.code == 3
    assert "(HTTP 403" in refused.err or "(HTTP 404" in refused.err
    bad_chunk = cli(
        "upload", product.slug, big_csv, "--no-submit", "--chunk-size", "10", token=token_for(provider)
    )
    assert bad_chunk.code == 3
    assert "code bad_chunk_size" in bad_chunk.err
    assert ProductVersion.objects.count() == 0


@pytest.mark.parametrize("kill_at", ["after_chunk_2_stored", "while_chunk_3_arrives"])
def test_killed_upload_resumes_resending_at_most_one_chunk(
    cli, server, provider, token_for, product_factory, big_csv, tmp_path, monkeypatch, kill_at
):
    product = product_factory(provider, "Resumed")
    token = token_for(provider)
    calls: list[int] = []
    reached, release, finished = threading.Event(), threading.Event(), threading.Event()
    original = upload_sessions.receive_chunk

    def stalling(upload, *, index, **kwargs):
        calls.append(index)
        first_run = not reached.is_set()
        try:
            if first_run and kill_at == "while_chunk_3_arrives" and index == 3:
                reached.set()
                release.wait(20)
            result = original(upload, index=index, **kwargs)
            if first_run and kill_at == "after_chunk_2_stored" and index == 2:
                reached.set()
                release.wait(20)
            return result
        finally:
            if first_run and reached.is_set():
                finished.set()

    monkeypatch.setattr(upload_sessions, "receive_chunk", stalling)
    args = ["upload", product.slug, str(big_csv), "--no-submit", "--chunk-size", str(MIN_CHUNK_SIZE), "-q"]
    env = {
        "SYNTHEX_TOKEN": token,
        "SYNTHEX_URL": server,
        "SYNTHEX_CONFIG": str(tmp_path / "synthex" / "config.json"),
    }
    process = cli_process(args, env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert reached.wait(60), "the upload never reached chunk 3"
    finally:
        process.kill()
        process.wait(10)
    release.set()
    assert finished.wait(20)
    first_run = len(calls)

    resumed = cli(*args, "--json", token=token)
    assert resumed.code == 0, resumed.err
    body = resumed.json()["files"][0]
    assert body["chunks"] == 7
    assert body["resumed_from_chunk"] in (3, 4)
    assert body["sent_chunks"] == 7 - body["resumed_from_chunk"]
    assert body["sha256"] == hashlib.sha256(big_csv.read_bytes()).hexdigest()
    second_run = calls[first_run:]
    assert second_run == list(range(body["resumed_from_chunk"], 7))
    # Across both runs each chunk was sent once, but for at most the one in flight at the kill.
    assert len(calls) - len(set(calls)) <= 1
    assert sorted(set(calls)) == list(range(7))
    version = ProductVersion.objects.get(product=product)
    assert version.files.get().sha256 == body["sha256"]


def test_a_file_refused_by_the_servers_check_exits_with_its_reason(
    cli, provider, token_for, product_factory, tmp_path
):
    product = product_factory(provider, "Ragged")
    ragged = tmp_path / "ragged.csv"
    ragged.write_bytes(b"a,b\n" + b"1,2\n" * 100 + b"3\n")
    result = cli("upload", product.slug, ragged, "--no-submit", token=token_for(provider))
    assert result.code == 3, result.err
    assert "ragged.csv: " in result.err and "(HTTP 400, code ragged_rows)" in result.err
    assert ProductVersion.objects.count() == 0


def test_the_client_waits_while_the_server_checks_an_upload():
    from synthex_client.uploads import wait_until_checked

    class Server:
        def __init__(self, states: list[tuple[str, int]]) -> None:
            self.states = states

        def upload_state(self, upload_id: str) -> dict:
            status, progress = self.states.pop(0)
            code = "no_rows" if status == "invalid" else None
            return {"id": upload_id, "validation": {"status": status, "progress": progress, "code": code,
                                                    "error": "t.csv: no rows" if code else None}}  # fmt: skip

    seen: list[int] = []
    server = Server([("pending", 0), ("running", 40), ("running", 80), ("valid", 100)])
    assert wait_until_checked(server, "upl_1", seen.append)["validation"]["status"] == "valid"
    assert seen == [0, 40, 80, 100] and server.states == []
    refused = Server([("running", 10), ("invalid", 100), ("invalid", 100)])
    assert wait_until_checked(refused, "upl_2")["validation"]["code"] == "no_rows"  # attaching reports it
    assert len(refused.states) == 1
