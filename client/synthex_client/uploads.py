"""Resumable uploads over the server's chunked upload sessions, with local state that survives a kill.

For each file the client remembers, in ``uploads.json`` beside the settings file, the upload session it
opened, keyed by server URL + absolute path + size + modification time (ns). A re-run of the same command
asks the server how far that session got (``GET /api/v1/uploads/{id}/``), re-reads the chunks already
received, checks them against the SHA-256 the server recorded per chunk (a file changed in place starts a
fresh session), and sends only the rest. A process killed mid-upload therefore re-sends at most the one
chunk that was in flight. Every chunk travels with its SHA-256 (``X-Chunk-SHA256``); at the end the
server's SHA-256 of the whole file must equal the one computed here while reading, and is stored in the
state entry with the upload id.

When the server's files live on S3 the session's ``transport`` is ``s3``: each chunk goes straight to the
object store with a PUT to its presigned part URL (``part_urls``), a resume compares the local chunks with
the MD5 the store reports per part (``chunk_md5``), and the whole file's SHA-256 computed here is sent with
``complete/`` for the server's worker to check against the assembled object.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthex_client.api import ApiError, ClientError, ServerError, SynthexClient
from synthex_client.config import read_json, state_path, write_private_json

STATE_FILE = "uploads.json"
PUT_ATTEMPTS = 3


class UploadFailed(ClientError):
    """The upload could not be finished, for a reason other than an API or network error."""


@dataclass(frozen=True)
class UploadResult:
    """A completed upload session. ``sent_chunks`` counts the chunks this run sent; ``resumed_from``
    is the first chunk this run had to send (0 for a fresh upload)."""

    path: str
    upload_id: str
    sha256: str
    size: int
    chunks: int
    chunk_size: int
    sent_chunks: int
    resumed_from: int
    seconds: float


def state_key(server: str, path: Path) -> str:
    info = path.stat()
    return f"{server}|{path.resolve()}|{info.st_size}|{info.st_mtime_ns}"


class UploadState:
    """The in-flight upload sessions of this user (a small JSON file, 0600)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or state_path(STATE_FILE)

    def get(self, key: str) -> dict[str, Any] | None:
        entry = read_json(self.path).get(key)
        return entry if isinstance(entry, dict) else None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        entries = read_json(self.path)
        entries[key] = entry
        write_private_json(self.path, entries)

    def forget(self, key: str) -> None:
        entries = read_json(self.path)
        if entries.pop(key, None) is not None:
            write_private_json(self.path, entries)


def _read_chunks(
    handle: io.BufferedReader, start: int, end: int, size: int, whole: Any
) -> Iterator[tuple[int, memoryview, str]]:
    """Chunks ``start``..``end - 1`` with their SHA-256, also fed in order to the running hash ``whole``.
    The next chunk is read and hashed in a second thread while the caller sends the current one (file reads
    and hashing release the GIL), so hashing stays off the sending path. Two buffers take turns: a
    chunk's bytes stay valid until the caller asks for the chunk after next, and no 32 MiB object is
    made per chunk (fresh memory cost 0.4 s of page faults per GB)."""
    buffers = [bytearray(size), bytearray(size)]

    def load(index: int) -> tuple[int, memoryview, str]:
        buffer = buffers[index % 2]
        handle.seek(index * size)
        data = memoryview(buffer)[: handle.readinto(buffer)]
        whole.update(data)
        return index, data, hashlib.sha256(data).hexdigest()

    if start >= end:
        return
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending: Future[tuple[int, memoryview, str]] = reader.submit(load, start)
        for index in range(start, end):
            current = pending.result()
            if index + 1 < end:
                pending = reader.submit(load, index + 1)
            yield current


def _put_with_retries(api: SynthexClient, upload_id: str, index: int, data: memoryview, digest: str) -> None:
    # A chunk sent twice is compared by the server, not appended, so retrying after a lost answer is safe.
    for attempt in range(PUT_ATTEMPTS):
        try:
            api.put_chunk(upload_id, index, data, digest)
            return
        except ServerError:
            if attempt == PUT_ATTEMPTS - 1:
                raise
            time.sleep(0.5 * 2**attempt)


class _Parts:
    """Presigned part URLs of an S3 session, fetched again from the server once they expire."""

    def __init__(self, api: SynthexClient, session: dict[str, Any]) -> None:
        self._api = api
        self._upload_id = session["id"]
        self._urls: list[str] = session["part_urls"]

    def put(self, index: int, data: memoryview) -> None:
        # S3 replaces a part sent again under the same number, so retrying after a lost answer is safe.
        for attempt in range(PUT_ATTEMPTS):
            try:
                self._api.put_part(self._urls[index], data)
                return
            except ApiError as error:
                if error.status != 403 or attempt == PUT_ATTEMPTS - 1:
                    raise
                self._urls = self._api.upload_state(self._upload_id)["part_urls"]
            except ServerError:
                if attempt == PUT_ATTEMPTS - 1:
                    raise
                time.sleep(0.5 * 2**attempt)


def _received_matches(session: dict[str, Any], index: int, data: memoryview, digest: str) -> bool:
    """Whether chunk ``index`` read here is the one the server (or store) holds."""
    if session.get("transport") == "s3":
        return hashlib.md5(data, usedforsecurity=False).hexdigest() == session["chunk_md5"][index]
    return digest == session["chunk_sha256"][index]


def _session_for(
    api: SynthexClient,
    state: UploadState,
    key: str,
    path: Path,
    size: int,
    chunk_size: int | None,
    product: str | None,
) -> dict[str, Any]:
    """This user's earlier session of the file, resumed, or a new one remembered in ``state``."""
    session = _resume(api, state, key)
    if session is None:
        session = api.start_upload(path.name, size, chunk_size, product)
        state.put(key, {"upload_id": session["id"], "size": size, "sha256": None})
    return session


def _complete(
    api: SynthexClient, state: UploadState, key: str, path: Path, upload_id: str, local: str
) -> None:
    """Complete the upload; abort it and raise :class:`UploadFailed` when the server's SHA-256 is not ``local``."""
    done = api.complete_upload(upload_id, local)
    # On S3 the server's worker hashes the assembled object and checks it against ``local``.
    if done["sha256"] is not None and done["sha256"] != local:
        api.abort_upload(upload_id)
        state.forget(key)
        raise UploadFailed(f"{path}: the server received SHA-256 {done['sha256']}, but the file is {local}.")


def upload_file(
    api: SynthexClient,
    path: Path,
    *,
    state: UploadState,
    chunk_size: int | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    product: str | None = None,
) -> UploadResult:
    """Upload ``path`` through a resumable session, resuming this user's earlier session of the same file;
    ``product`` (slug) names the product it is for, whose organization's upload quota it uses.

    ``on_start(total_bytes, already_received_bytes)`` is called once, ``on_progress(bytes)`` after each
    chunk. Raises :class:`ApiError` / :class:`ServerError` from the API and :class:`UploadFailed` when the
    server's hash of the whole file differs from the local one.
    """
    began = time.perf_counter()
    size = path.stat().st_size
    key = state_key(api.base_url, path)
    session = _session_for(api, state, key, path, size, chunk_size, product)
    upload_id, per_chunk, count = session["id"], session["chunk_size"], session["chunks"]
    if session["status"] == "complete":
        if on_start:
            on_start(size, size)
        return UploadResult(
            str(path),
            upload_id,
            session["sha256"] or (state.get(key) or {}).get("sha256") or "",
            size,
            count,
            per_chunk,
            0,
            count,
            time.perf_counter() - began,
        )
    whole = hashlib.sha256()
    first = session["next_chunk"]
    parts = _Parts(api, session) if session.get("transport") == "s3" else None
    with path.open("rb") as handle:
        for index, data, digest in _read_chunks(handle, 0, first, per_chunk, whole):
            if not _received_matches(session, index, data, digest):
                # The file changed since that session began: its received chunks are useless.
                api.abort_upload(upload_id)
                state.forget(key)
                return upload_file(
                    api,
                    path,
                    state=state,
                    chunk_size=chunk_size,
                    on_start=on_start,
                    on_progress=on_progress,
                    product=product,
                )
        if on_start:
            on_start(size, session["received_bytes"])
        for index, data, digest in _read_chunks(handle, first, count, per_chunk, whole):
            if parts is not None:
                parts.put(index, data)
            else:
                _put_with_retries(api, upload_id, index, data, digest)
            if on_progress:
                on_progress(len(data))
    local = whole.hexdigest()
    _complete(api, state, key, path, upload_id, local)
    state.put(key, {"upload_id": upload_id, "size": size, "sha256": local})
    return UploadResult(
        str(path), upload_id, local, size, count, per_chunk, count - first, first, time.perf_counter() - began
    )


CHECK_POLL_SECONDS = 0.25
# A check no worker has started after this long (none running?) is left to the request that attaches the
# upload, which then checks the file itself.
UNSTARTED_CHECK_SECONDS = 10.0


def wait_until_checked(
    api: SynthexClient,
    upload_id: str,
    on_progress: Callable[[int], None] | None = None,
    *,
    unstarted_seconds: float = UNSTARTED_CHECK_SECONDS,
) -> dict[str, Any]:
    """Wait while the server validates a complete upload (a worker parses and profiles it), reporting its
    percent done; returns the upload's state once the check ended (valid or refused) or once no worker
    has started it for ``unstarted_seconds``. Attaching the upload then succeeds, or fails with the
    server's own status, code and message for a refused file."""
    began = time.monotonic()
    while True:
        session = api.upload_state(upload_id)
        check = session.get("validation") or {"status": "valid", "progress": 100}
        if on_progress:
            on_progress(int(check["progress"]))
        if check["status"] in ("valid", "invalid"):
            return session
        if check["status"] == "pending" and time.monotonic() - began > unstarted_seconds:
            return session
        time.sleep(CHECK_POLL_SECONDS)


def _resume(api: SynthexClient, state: UploadState, key: str) -> dict[str, Any] | None:
    """The server's view of the remembered session of this file, or None when there is none to resume."""
    entry = state.get(key)
    if entry is None:
        return None
    try:
        session = api.upload_state(str(entry["upload_id"]))
    except ApiError as error:
        if error.status == 404:
            state.forget(key)
            return None
        raise
    if session["status"] not in ("open", "complete"):
        state.forget(key)
        return None
    return session


def forget_attached(state: UploadState, results: list[UploadResult], server: str) -> None:
    """Drop the state of uploads that now belong to a version (a later upload of the file starts afresh)."""
    for result in results:
        path = Path(result.path)
        if path.exists():
            state.forget(state_key(server, path))
