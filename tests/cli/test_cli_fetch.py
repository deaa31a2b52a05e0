"""``SynthexClient.fetch``, the body reader of ``synthex download``: redirects, ignored ranges, errors.

Run against small standard-library HTTP servers on 127.0.0.1 that behave the ways real servers and storage
do (a presigned redirect to another origin, a server without Range support, a refusal with a JSON body).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from synthex_client.api import ApiError, ServerError, SynthexClient
from synthex_client.cli import _FileSink

PAYLOAD = bytes(range(256)) * 40_000  # 10 MB: several of the sink's 4 MiB blocks


class Recorder:
    def __init__(self) -> None:
        self.requests: list[tuple[int, str, dict[str, str]]] = []


def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def handler_for(recorder: Recorder, respond: Any) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            recorder.requests.append((self.server.server_address[1], self.path, dict(self.headers)))
            respond(self)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def send_bytes(handler: BaseHTTPRequestHandler, body: bytes, status: int = 200, **headers: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture
def storage() -> Iterator[tuple[str, Recorder]]:
    """Another origin that serves PAYLOAD, honouring ``Range: bytes=N-``."""
    recorder = Recorder()

    def respond(handler: BaseHTTPRequestHandler) -> None:
        wanted = handler.headers.get("Range", "")
        if wanted.startswith("bytes="):
            start = int(wanted[6:].rstrip("-"))
            send_bytes(
                handler,
                PAYLOAD[start:],
                206,
                Content_Range=f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}",
            )
        else:
            send_bytes(handler, PAYLOAD)

    yield from ((url, recorder) for url in serve(handler_for(recorder, respond)))


def fetch_into(client: SynthexClient, url: str, path: Path, offset: int = 0) -> tuple[int, bool, str]:
    with path.open("ab") as handle:
        sink = _FileSink(
            handle, hashlib.sha256(path.read_bytes()[:offset]), hashlib.sha256, lambda count: None
        )
        try:
            received, resumed = client.fetch(url, sink, offset=offset, etag='"x"')
        finally:
            sink.close()
    return received, resumed, sink.digest.hexdigest()


def test_redirect_to_storage_is_followed_without_the_api_token(storage, tmp_path):
    storage_url, stored = storage
    api = Recorder()

    def redirect(handler: BaseHTTPRequestHandler) -> None:
        send_bytes(handler, b"", 302, Location=f"{storage_url}/bucket/file.csv?X-Amz-Signature=abc")

    for api_url in serve(handler_for(api, redirect)):
        with SynthexClient(api_url, "secret-token") as client:
            target = tmp_path / "copy.csv"
            received, resumed, digest = fetch_into(client, "/api/v1/downloads/tok/", target)
    assert (received, resumed) == (len(PAYLOAD), False)
    assert target.read_bytes() == PAYLOAD and digest == hashlib.sha256(PAYLOAD).hexdigest()
    assert api.requests[0][2]["Authorization"] == "Token secret-token"
    ((_, path, headers),) = stored.requests
    assert path == "/bucket/file.csv?X-Amz-Signature=abc"
    assert "Authorization" not in headers


def test_a_resume_continues_the_copy_and_its_hash(storage, tmp_path):
    storage_url, stored = storage
    target = tmp_path / "copy.csv"
    target.write_bytes(PAYLOAD[:3_000_000])
    with SynthexClient(storage_url, "t") as client:
        received, resumed, digest = fetch_into(client, f"{storage_url}/file", target, offset=3_000_000)
    assert (received, resumed) == (len(PAYLOAD) - 3_000_000, True)
    assert stored.requests[0][2]["Range"] == "bytes=3000000-"
    assert target.read_bytes() == PAYLOAD and digest == hashlib.sha256(PAYLOAD).hexdigest()


def test_a_server_that_ignores_the_range_restarts_the_copy(tmp_path):
    recorder = Recorder()
    for url in serve(handler_for(recorder, lambda handler: send_bytes(handler, PAYLOAD))):
        target = tmp_path / "copy.csv"
        target.write_bytes(b"stale bytes of an earlier, different copy")
        with SynthexClient(url) as client:
            received, resumed, digest = fetch_into(client, f"{url}/file", target, offset=41)
    assert (received, resumed) == (len(PAYLOAD), False)
    assert target.read_bytes() == PAYLOAD and digest == hashlib.sha256(PAYLOAD).hexdigest()


def test_a_refusal_raises_the_apis_error(tmp_path):
    body = json.dumps({"detail": "This link has expired.", "code": "link_expired"}).encode()
    recorder = Recorder()
    for url in serve(handler_for(recorder, lambda handler: send_bytes(handler, body, 410))):
        with SynthexClient(url) as client, pytest.raises(ApiError) as refused:
            fetch_into(client, "/api/v1/downloads/old/", tmp_path / "copy.csv")
    assert (refused.value.status, refused.value.code) == (410, "link_expired")


def test_an_unreachable_server_and_a_redirect_loop_are_clear_errors(tmp_path):
    with SynthexClient("http://127.0.0.1:9") as client, pytest.raises(ServerError) as unreachable:
        fetch_into(client, "/api/v1/downloads/x/", tmp_path / "a.csv")
    assert unreachable.value.status == 0 and "Cannot reach" in str(unreachable.value)

    recorder = Recorder()
    for url in serve(handler_for(recorder, lambda handler: send_bytes(handler, b"", 302, Location="/again"))):
        with SynthexClient(url) as client, pytest.raises(ServerError) as looping:
            fetch_into(client, "/start", tmp_path / "b.csv")
    assert "redirected more than 5 times" in str(looping.value)


def test_a_redirect_without_location_is_an_error_and_keeps_the_partial_copy(tmp_path):
    recorder = Recorder()
    for url in serve(handler_for(recorder, lambda handler: send_bytes(handler, b"", 302))):
        target = tmp_path / "copy.csv"
        target.write_bytes(PAYLOAD[:1000])
        with SynthexClient(url) as client, pytest.raises(ApiError) as refused:
            fetch_into(client, "/file", target, offset=1000)
    assert refused.value.status == 302
    assert target.read_bytes() == PAYLOAD[:1000]
