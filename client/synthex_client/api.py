"""A thin, typed client over the Synthex REST API (``/api/v1/``), built on httpx.

Every method returns the decoded JSON body (or raw bytes where the API serves bytes). Failures raise:

- :class:`ApiError` — the server answered 4xx; ``detail`` and ``code`` come from the API's
  ``{"detail", "code"}`` body (``code`` is ``"http_<status>"`` when the body is not that shape);
- :class:`ServerError` — the server answered 5xx, or could not be reached (connection refused, DNS,
  timeout), in which case ``status`` is 0.
"""

from __future__ import annotations

import http.client
import os
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import certifi
import httpx

from synthex_client import __version__

API_PREFIX = "/api/v1"
KEYS_PATH = "/.well-known/synthex/keys.json"
DEFAULT_TIMEOUT_SECONDS = 60.0
# One chunk of up to 64 MiB may take a while on a slow link; connecting should not.
CONNECT_SECONDS = 15.0
TRANSFER_SECONDS = 600.0
TRANSFER_TIMEOUT = httpx.Timeout(TRANSFER_SECONDS, connect=CONNECT_SECONDS)
MAX_REDIRECTS = 5
SEND_PIECE_BYTES = 1 << 20


class ClientError(Exception):
    """Base of the errors this client raises; ``str()`` is a plain sentence for people."""


@dataclass
class ApiError(ClientError):
    """The API refused the request (HTTP 4xx)."""

    status: int
    code: str
    detail: str
    body: Any = None

    def __str__(self) -> str:
        return f"{self.detail} (HTTP {self.status}, code {self.code})"


@dataclass
class ServerError(ClientError):
    """The server failed (HTTP 5xx) or could not be reached (``status`` 0)."""

    status: int
    detail: str

    def __str__(self) -> str:
        if self.status == 0:
            return self.detail
        return f"The server failed: {self.detail} (HTTP {self.status})"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return (
        parts.scheme,
        (parts.hostname or "").lower(),
        parts.port or {"http": 80, "https": 443}.get(parts.scheme),
    )


def _connection(url: str) -> http.client.HTTPConnection:
    """A connection to ``url``'s host; https verifies the server against ``SSL_CERT_FILE`` or certifi's
    bundle, as httpx does for the other calls."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or certifi.where())
        return http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=CONNECT_SECONDS, context=context
        )
    if parts.scheme == "http":
        return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=CONNECT_SECONDS)
    raise ServerError(0, f"Cannot download {url}: only http and https links can be fetched.")


def _read_body_into(response: http.client.HTTPResponse, sink: Any) -> tuple[int, bool]:
    """Read a 200 or 206 body into ``sink`` (see ``Api.fetch``): (bytes received, whether it is the range).
    Any other status is raised as the API's error."""
    if response.status not in (200, 206):  # an error, or a redirect without a Location
        raise _error_from(
            httpx.Response(response.status, headers=response.getheaders(), content=response.read())
        )
    resumed = response.status == 206
    sink.begin(resumed)
    received = 0
    while count := response.readinto(sink.buffer()):
        sink.commit(count)
        received += count
    return received, resumed


def _error_from(response: httpx.Response) -> ClientError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        detail, code = body["detail"], str(body.get("code") or f"http_{response.status_code}")
    else:
        text = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
        detail, code = (
            text or response.reason_phrase or "no explanation given",
            f"http_{response.status_code}",
        )
    if response.status_code >= 500:
        return ServerError(response.status_code, detail)
    return ApiError(response.status_code, code, detail, body)


class SynthexClient:
    """The REST API of one Synthex server, authenticated with an API token when one is given.

    ``base_url`` is the server's root (``https://synthex.example``), without ``/api/v1``.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"User-Agent": f"synthex-cli/{__version__}", "Accept": "application/json"}
        self._token = token
        if token:
            headers["Authorization"] = f"Token {token}"
        # This client only ever calls the server's own origin (redirects are not followed), so a plain
        # http server needs no TLS: building the verifying context loads certifi's bundle, 26 ms a command.
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=timeout,
            transport=transport,
            verify=_origin(self.base_url)[0] == "https",
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SynthexClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport -------------------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request (``path`` absolute from the server root); raises on 4xx/5xx/network failure."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ServerError(0, f"{self.base_url} did not answer in time.") from None
        except httpx.TransportError as error:
            raise ServerError(0, f"Cannot reach {self.base_url}: {error}.") from None
        if response.status_code >= 400:
            raise _error_from(response)
        return response

    def call(self, method: str, endpoint: str, **kwargs: Any) -> Any:
        """Call ``/api/v1/<endpoint>`` and return its JSON body (None for an empty body)."""
        response = self.request(method, f"{API_PREFIX}/{endpoint.lstrip('/')}", **kwargs)
        return response.json() if response.content else None

    def pages(self, endpoint: str, params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list endpoint, following ``next`` links."""
        body = self.call("GET", endpoint, params=dict(params or {}))
        while True:
            if isinstance(body, list):
                yield from body
                return
            yield from body["results"]
            if not body.get("next"):
                return
            response = self.request("GET", body["next"])
            body = response.json()

    # --- catalog ---------------------------------------------------------------------------------
    def search_products(self, **filters: Any) -> dict[str, Any]:
        """One page of the catalog search (``q``, ``domain``, ``kind``, ``min_quality``, ``page``, ...)."""
        params = {key: value for key, value in filters.items() if value not in (None, "")}
        return self.call("GET", "products/", params=params)

    def product(self, slug: str) -> dict[str, Any]:
        return self.call("GET", f"products/{slug}/")

    def create_product(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        return self.call("POST", "products/", json=dict(fields))

    def version(self, slug: str, number: int) -> dict[str, Any]:
        return self.call("GET", f"products/{slug}/versions/{number}/")

    def create_version(
        self,
        slug: str,
        *,
        synthetic: list[str],
        train: str | None = None,
        holdout: str | None = None,
        target: str | None = None,
        metadata: Mapping[str, str] | None = None,
        changelog: str | None = None,
        submit: bool = True,
        rules: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Make a version from completed upload sessions (ids); ``submit`` sends it to certification;
        ``rules`` = ``{"dismissed": [{"id", "reason"}], "declared": [statement]}`` (plausibility choices)."""
        body: dict[str, Any] = {"synthetic": synthetic, "submit": submit}
        for key, value in (
            ("train", train),
            ("holdout", holdout),
            ("target", target),
            ("metadata", metadata),
            ("changelog", changelog),
            ("rules", rules),
        ):
            if value:
                body[key] = value
        return self.call("POST", f"products/{slug}/versions/", json=body, timeout=TRANSFER_TIMEOUT)

    def version_rules(self, slug: str, number: int) -> dict[str, Any]:
        """The plausibility rules certification will check on the version's reference rows, the choices
        made, and which rules SDV constraints could enforce."""
        return self.call("GET", f"products/{slug}/versions/{number}/rules/", timeout=TRANSFER_TIMEOUT)

    def submit_version(
        self, slug: str, number: int, *, rules: Mapping[str, Any] | None = None, target: str | None = None
    ) -> dict[str, Any]:
        """Send a draft version to certification, with plausibility choices when given."""
        body: dict[str, Any] = {}
        if rules is not None:
            body["rules"] = dict(rules)
        if target is not None:
            body["target"] = target
        return self.call(
            "POST", f"products/{slug}/versions/{number}/submit/", json=body, timeout=TRANSFER_TIMEOUT
        )

    # --- upload sessions -------------------------------------------------------------------------
    def start_upload(
        self, filename: str, size: int, chunk_size: int | None = None, product: str | None = None
    ) -> dict[str, Any]:
        """Open an upload session; ``product`` (slug) says which provider organization's quota it uses."""
        body: dict[str, Any] = {"filename": filename, "size": size}
        if chunk_size:
            body["chunk_size"] = chunk_size
        if product:
            body["product"] = product
        return self.call("POST", "uploads/", json=body)

    def upload_state(self, upload_id: str) -> dict[str, Any]:
        return self.call("GET", f"uploads/{upload_id}/")

    def put_chunk(self, upload_id: str, index: int, data: bytes | memoryview, sha256: str) -> dict[str, Any]:
        """Send one chunk's raw bytes. They go in 1 MiB views with the length declared: given one 32 MiB
        ``bytes``, httpx re-slices (copies) the unsent rest after every partial socket send."""
        view = memoryview(data).cast("B")
        pieces = (
            view[offset : offset + SEND_PIECE_BYTES] for offset in range(0, len(view), SEND_PIECE_BYTES)
        )
        return self.call(
            "PUT",
            f"uploads/{upload_id}/chunks/{index}/",
            content=pieces,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(len(view)),
                "X-Chunk-SHA256": sha256,
            },
            timeout=TRANSFER_TIMEOUT,
        )

    def complete_upload(self, upload_id: str, sha256: str | None = None) -> dict[str, Any]:
        """Finish a session; ``sha256`` (the whole file's, hex) is checked against the bytes received."""
        body = {"sha256": sha256} if sha256 else {}
        return self.call("POST", f"uploads/{upload_id}/complete/", json=body, timeout=TRANSFER_TIMEOUT)

    def put_part(self, url: str, data: bytes | memoryview) -> None:
        """Send one part straight to the object store at its presigned ``url`` (no API token: the URL is
        the permission). Raises :class:`ApiError` when the store refuses it (403: the URL expired)."""
        view = memoryview(data).cast("B")
        pieces = (
            view[offset : offset + SEND_PIECE_BYTES] for offset in range(0, len(view), SEND_PIECE_BYTES)
        )
        try:
            with httpx.Client(timeout=TRANSFER_TIMEOUT, verify=_origin(url)[0] == "https") as store:
                response = store.put(url, content=pieces, headers={"Content-Length": str(len(view))})
        except httpx.TimeoutException:
            raise ServerError(0, f"{_origin(url)[1]} did not answer in time.") from None
        except httpx.TransportError as error:
            raise ServerError(0, f"Cannot reach {_origin(url)[1]}: {error}.") from None
        if response.status_code >= 500:
            raise ServerError(response.status_code, f"The file store answered {response.status_code}.")
        if response.status_code >= 400:
            raise ApiError(
                response.status_code,
                "store_refused",
                f"The file store refused the part ({response.status_code}).",
            )

    def abort_upload(self, upload_id: str) -> None:
        self.call("DELETE", f"uploads/{upload_id}/")

    # --- certification ---------------------------------------------------------------------------
    def job(self, job_id: str) -> dict[str, Any]:
        return self.call("GET", f"jobs/{job_id}/")

    def certificate_bytes(self, certificate_id: str) -> bytes:
        """The certificate exactly as served (canonical RFC 8785 bytes, signature included)."""
        return self.request("GET", f"{API_PREFIX}/certificates/{certificate_id}/").content

    def keys_document(self) -> dict[str, Any]:
        """The published public keys (``/.well-known/synthex/keys.json``)."""
        return self.request("GET", KEYS_PATH).json()

    # --- orders, receipts, entitlements ----------------------------------------------------------
    def create_order(self, version_id: int, license_code: str) -> dict[str, Any]:
        return self.call("POST", "orders/", json={"version": version_id, "license": license_code})

    def confirm_order(self, order_id: str, payment_method: str) -> dict[str, Any]:
        return self.call("POST", f"orders/{order_id}/confirm/", json={"payment_method": payment_method})

    def order(self, order_id: str) -> dict[str, Any]:
        return self.call("GET", f"orders/{order_id}/")

    def receipt(self, order_id: str) -> dict[str, Any]:
        return self.call("GET", f"receipts/{order_id}/")

    def entitlements(self) -> list[dict[str, Any]]:
        return list(self.pages("entitlements/"))

    # --- downloads -------------------------------------------------------------------------------
    def download_link(
        self, entitlement_id: str, fmt: str, file_id: int | None = None, draw: str | None = None
    ) -> dict[str, Any]:
        """A signed, expiring link to the buyer's copy (of a file, or of a generator ``draw``): ``url``,
        ``filename``, ``sha256`` (the copy's own), ``blake3``, ``size_bytes``, ``delivery``, ..."""
        body: dict[str, Any] = {"format": fmt}
        if file_id is not None:
            body["file"] = file_id
        if draw is not None:
            body["draw"] = draw
        return self.call("POST", f"entitlements/{entitlement_id}/links/", json=body)

    def set_link(self, entitlement_id: str, fmt: str, version: int | None = None) -> dict[str, Any]:
        """A signed, expiring link to the buyer's copy of every table of a relational version, as one zip
        (``tables`` lists each table's delivered SHA-256 and rows)."""
        body: dict[str, Any] = {"format": fmt}
        if version:
            body["version"] = version
        return self.call("POST", f"entitlements/{entitlement_id}/sets/", json=body)

    def delivery_receipt_by_hash(self, sha256: str) -> dict[str, Any] | None:
        """The signed delivery receipt of the copy whose SHA-256 is ``sha256``; None when no copy has it."""
        try:
            return self.call("GET", f"deliveries/by-sha256/{sha256}/receipt/")
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def fetch(self, url: str, sink: Any, *, offset: int = 0, etag: str | None = None) -> tuple[int, bool]:
        """Stream ``url`` into ``sink``, from byte ``offset`` with a Range request when ``offset`` > 0 (and
        ``If-Range: etag``). Returns (bytes received, whether the server honoured the range).

        The sink is told first whether the body is the range (``sink.begin(resumed)``; when it is not, the
        body is the whole file from byte 0), then filled block by block: ``sink.buffer()`` hands out a
        writable buffer, the body is read straight into it and ``sink.commit(count)`` passes it on. The
        body is read with the standard library's ``http.client`` for that ``readinto``: httpx delivers it
        in 64 KiB ``bytes`` objects, and at 1 GB making, copying and handing on those pieces was most of
        the command's time (bench/cli.py). Redirects (a presigned storage URL) are followed; the API
        token is sent to this server's origin only.
        """
        headers = {"User-Agent": f"synthex-cli/{__version__}"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if etag:
                headers["If-Range"] = etag
        target = urljoin(self.base_url + "/", url)
        try:
            for _ in range(MAX_REDIRECTS + 1):
                connection = _connection(target)
                try:
                    response = self._send_get(connection, target, headers)
                    if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
                        target = urljoin(target, response.getheader("Location", ""))
                        continue
                    return _read_body_into(response, sink)
                finally:
                    connection.close()
        except TimeoutError:
            raise ServerError(0, f"{_origin(target)} did not answer in time.") from None
        except (OSError, http.client.HTTPException) as error:
            raise ServerError(0, f"Cannot reach {_origin(target)}: {error}.") from None
        raise ServerError(0, f"{url} redirected more than {MAX_REDIRECTS} times.")

    def _send_get(
        self, connection: http.client.HTTPConnection, target: str, headers: dict[str, str]
    ) -> http.client.HTTPResponse:
        """GET ``target`` on ``connection`` with ``headers``; the API token goes to this server's origin only."""
        sent = dict(headers)
        if self._token and _origin(target) == _origin(self.base_url):
            sent["Authorization"] = f"Token {self._token}"
        parts = urlsplit(target)
        connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=sent)
        if connection.sock is not None:
            connection.sock.settimeout(TRANSFER_SECONDS)
        return connection.getresponse()

    # --- generators ------------------------------------------------------------------------------
    def request_sample(
        self,
        entitlement_id: str,
        rows: int,
        seed: int | None = None,
        conditions: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Queue a draw of ``rows`` rows from a generator entitlement (202); returns the draw."""
        body: dict[str, Any] = {"rows": rows}
        if seed is not None:
            body["seed"] = seed
        if conditions:
            body["conditions"] = dict(conditions)
        return self.call("POST", f"entitlements/{entitlement_id}/samples/", json=body)

    def sample_draw(self, entitlement_id: str, draw_id: str) -> dict[str, Any]:
        return self.call("GET", f"entitlements/{entitlement_id}/samples/{draw_id}/")

    def download_draw(self, entitlement_id: str, draw_id: str, target: Any) -> int:
        """Stream a succeeded draw's Parquet file into the binary file object ``target``; returns bytes written."""
        path = f"{API_PREFIX}/entitlements/{entitlement_id}/samples/{draw_id}/"
        written = 0
        try:
            with self._http.stream(
                "GET", path, params={"download": "1"}, timeout=TRANSFER_TIMEOUT
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error_from(response)
                for block in response.iter_bytes(1 << 20):
                    target.write(block)
                    written += len(block)
        except httpx.TimeoutException:
            raise ServerError(0, f"{self.base_url} did not answer in time.") from None
        except httpx.TransportError as error:
            raise ServerError(0, f"Cannot reach {self.base_url}: {error}.") from None
        return written

    # --- ledger ----------------------------------------------------------------------------------
    def ledger_heads(self) -> list[dict[str, Any]]:
        """Every signed tree head, oldest first."""
        return list(self.pages("ledger/heads/"))

    def ledger_head(self) -> dict[str, Any]:
        return self.call("GET", "ledger/head/")

    def ledger_consistency(self, first: int, second: int) -> dict[str, Any]:
        return self.call("GET", "ledger/consistency/", params={"first": first, "second": second})
