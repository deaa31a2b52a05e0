"""Receiving a request body straight from gunicorn's socket (marketplace/core/request_body.py), driven
through gunicorn's own parser over a socket pair, so a change in gunicorn's internals fails here."""

from __future__ import annotations

import socket
import threading

import pytest
from django.core.handlers.wsgi import WSGIRequest
from gunicorn.config import Config
from gunicorn.http.parser import RequestParser
from gunicorn.http.wsgi import create

from marketplace.core.request_body import BodyReader

BODY = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and a bit, not a multiple of any read size


def put(body: bytes, declared: int | None = None) -> bytes:
    length = len(body) if declared is None else declared
    return (
        f"PUT /api/v1/uploads/u/chunks/0/ HTTP/1.1\r\nHost: t\r\nContent-Length: {length}\r\n\r\n".encode()
        + body
    )


NEXT = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"


def parse(server: socket.socket) -> tuple[RequestParser, WSGIRequest]:
    config = Config()
    parser = RequestParser(config, server, ("127.0.0.1", 1))
    message = next(parser)
    _, environ = create(message, server, ("127.0.0.1", 1), ("127.0.0.1", 8000), config)
    return parser, WSGIRequest(environ)


def drain(reader: BodyReader, block: int = 65536) -> bytes:
    received = bytearray()
    view = memoryview(bytearray(block))
    while count := reader.readinto(view):
        received += view[:count]
    return bytes(received)


@pytest.fixture
def pair():
    client, server = socket.socketpair()
    server.settimeout(5)  # a mistake in the bookkeeping fails the test instead of hanging it
    yield client, server
    client.close()
    server.close()


def send_later(sock: socket.socket, data: bytes) -> threading.Thread:
    sender = threading.Thread(target=sock.sendall, args=(data,))
    sender.start()
    return sender


@pytest.mark.parametrize("body", [BODY, BODY[:100]], ids=["large", "read-ahead-with-the-headers"])
def test_body_comes_from_the_socket_and_the_pipelined_request_behind_it_survives(pair, body):
    client, server = pair
    sender = send_later(client, put(body) + NEXT)
    parser, request = parse(server)
    reader = BodyReader(request, len(body))
    assert drain(reader) == body
    assert reader.direct
    sender.join()
    # gunicorn neither re-reads the body nor loses the next request's bytes read ahead with it.
    following = next(parser)
    assert (following.method, following.path) == ("GET", "/healthz")


def test_a_body_cut_off_ends_the_read_and_the_connection(pair):
    client, server = pair
    client.sendall(put(BODY[:5000], declared=len(BODY)))
    client.shutdown(socket.SHUT_WR)
    parser, request = parse(server)
    reader = BodyReader(request, len(BODY))
    assert drain(reader) == BODY[:5000]
    # Where the next request would start is unknown: gunicorn must close rather than reuse the socket.
    assert parser.finish_body() is False


def test_a_body_already_read_by_django_is_read_on_through_it(pair):
    client, server = pair
    sender = send_later(client, put(BODY))
    _, request = parse(server)
    first = request.read(10)
    reader = BodyReader(request, len(BODY) - 10)
    assert first + drain(reader) == BODY
    assert not reader.direct
    sender.join()


def test_other_servers_read_through_wsgi_input(rf):
    request = rf.generic("PUT", "/x", BODY, content_type="application/octet-stream")
    reader = BodyReader(request, len(BODY))
    assert drain(reader, block=4096) == BODY
    assert not reader.direct
