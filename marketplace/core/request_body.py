"""Receiving a raw request body into buffers the caller owns.

Django gives a view the WSGI server's ``wsgi.input``, whose ``read(n)`` returns fresh ``bytes``. gunicorn
builds each one through two ``BytesIO`` buffers (receive, append, ``getvalue``, slice, and again one level
up): about six copies of every byte, 0.3 s of CPU per GB in a worker that must also hash and write those
bytes. gunicorn hands the application its socket (``environ["gunicorn.socket"]``, the documented hook
websocket libraries use), so under gunicorn the body is received straight into the caller's buffer with
``recv_into``, after taking whatever gunicorn had already read ahead. Anywhere else (runserver, the test
client, the tests' live server, another WSGI server) the reader falls back to ``read``.

Taking over the socket means telling gunicorn the body is consumed, so that it neither drains it nor
parses the next request from the middle of it. The reader marks the body failed while it reads (gunicorn
then closes the connection instead of reusing it) and clears the mark once every byte arrived; the checks
in ``_gunicorn_parts`` keep the fast path to the exact reader types and state it was written for.
"""

from __future__ import annotations

import io
import socket
from typing import Any

from django.http import HttpRequest


class BodyReader:
    """``readinto`` for the ``length`` bytes of a request's body; 0 means the body ended (or was cut off)."""

    def __init__(self, request: HttpRequest, length: int) -> None:
        self._request = request
        self._remaining = length
        self._socket: socket.socket | None = None
        self._body: Any = None
        self._ahead = memoryview(b"")
        self._started = False

    @property
    def direct(self) -> bool:
        """Whether the body is being received straight from gunicorn's socket."""
        return self._socket is not None

    def readinto(self, view: memoryview) -> int:
        if not self._started:
            self._start()
        size = min(len(view), self._remaining)
        if size <= 0:
            return 0
        if self._socket is None:
            data = self._request.read(size)
            view[: len(data)] = data
            count = len(data)
        elif self._ahead:
            count = min(size, len(self._ahead))
            view[:count] = self._ahead[:count]
            self._ahead = self._ahead[count:]
        else:
            try:
                count = self._socket.recv_into(view, size)
            except OSError:
                count = 0
        self._remaining -= count
        if self._remaining == 0 and self._body is not None:
            self._body.failed = False
        return count

    def _start(self) -> None:
        self._started = True
        parts = _gunicorn_parts(self._request, self._remaining)
        if parts is None:
            return
        sock, body, reader = parts
        ahead = reader.unreader.take_buffered()
        if len(ahead) > self._remaining:
            # A pipelined next request arrived behind this body: give its bytes back to gunicorn.
            reader.unreader.unread(ahead[self._remaining :])
            ahead = ahead[: self._remaining]
        reader.length = 0
        body.failed = True
        self._socket, self._body, self._ahead = sock, body, memoryview(ahead)


def _gunicorn_parts(request: HttpRequest, length: int) -> tuple[socket.socket, Any, Any] | None:
    """gunicorn's socket, body and length reader when this request's body can be taken from the socket:
    a blocking socket, a body of known length not read from yet, nothing buffered above the reader."""
    meta = request.META
    sock = meta.get("gunicorn.socket")
    body = meta.get("wsgi.input")
    reader = getattr(body, "reader", None)
    buffered = getattr(body, "buf", None)
    if (
        not isinstance(sock, socket.socket)
        or sock.gettimeout() == 0.0
        or type(body).__module__ != "gunicorn.http.body"
        or type(reader).__name__ != "LengthReader"
        or getattr(reader, "length", None) != length
        or not hasattr(getattr(reader, "unreader", None), "take_buffered")
        or not isinstance(buffered, io.BytesIO)
        or buffered.getbuffer().nbytes
        or getattr(request, "_read_started", True)
    ):
        return None
    return sock, body, reader
