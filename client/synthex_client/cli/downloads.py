"""What a buyer takes away, checked by its hash: ``synthex download`` (files, table sets) and ``synthex
sample`` (rows drawn from a generator)."""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synthex_client.cli.common import (
    EXIT_OK,
    JOB_DONE,
    CheckFailed,
    Context,
    UsageError,
    percent_progress,
    transfer_progress,
)


class FileSink:
    """Receives a download into one reused buffer, appending each block to the file (ordinary buffered
    writes) and feeding it to the hash on the way; ``close`` flushes the file."""

    BLOCK = 1 << 20

    def __init__(
        self, handle: Any, digest: Any, new_digest: Callable[[], Any], advance: Callable[[int], None]
    ) -> None:
        self._handle = handle
        self.digest = digest
        self._new_digest = new_digest
        self._advance = advance
        self._view = memoryview(bytearray(self.BLOCK))

    def begin(self, resumed: bool) -> None:
        """The server ignored the Range (the body is the whole file): start the copy and its hash over."""
        if self._handle.tell() and not resumed:
            self._handle.truncate(0)
            self._handle.seek(0)
            self.digest = self._new_digest()

    def buffer(self) -> memoryview:
        return self._view

    def commit(self, count: int) -> None:
        block = self._view[:count]
        self._handle.write(block)
        self.digest.update(block)
        self._advance(count)

    def close(self) -> None:
        self._handle.flush()


def _transfer_check(link: dict[str, Any], sha256: bool = False) -> tuple[str, str, Callable[[], Any]]:
    """How a download is checked: (hash name, expected hex digest, new hasher).

    BLAKE3 when the link offers it: the server computed it with the copy's SHA-256 (the content address
    its signed receipt names), and checking it costs a fifth as much (10 GB/s here against 2 GB/s), which
    was most of a 1 GB download's time. ``--sha256``, and links from servers without it, check the SHA-256.
    The SHA-256 itself is checked against the signed delivery receipt by ``python -m
    marketplace.certification.verify ... --data FILE --receipt RECEIPT.json`` (docs/delivery.md).
    """
    if link.get("blake3") and not sha256:
        import blake3

        return "BLAKE3", link["blake3"], blake3.blake3
    return "SHA-256", link["sha256"], hashlib.sha256


def cmd_download(context: Context) -> int:
    """Download into ``FILE.<sha256 prefix>.part``, resuming a partial copy of the same content with an
    HTTP Range request, and keep it as FILE only when its hash is the one the link announced."""
    arguments = context.arguments
    with context.api(need_token=True) as api:
        if arguments.set is not None:
            link = api.set_link(arguments.entitlement, arguments.format, arguments.set or None)
        else:
            link = api.download_link(arguments.entitlement, arguments.format, arguments.file)
        output = Path(arguments.output or link["filename"])
        partial = output.with_name(f"{output.name}.{link['sha256'][:16]}.part")
        check, expected, new_digest = _transfer_check(link, arguments.sha256)
        digest = new_digest()
        offset = partial.stat().st_size if partial.exists() else 0
        if offset >= link["size_bytes"]:
            partial.unlink()
            offset = 0
        with partial.open("ab") as handle, transfer_progress(context) as progress:
            task = progress.add_task(output.name, total=link["size_bytes"], completed=offset)
            if offset:
                with partial.open("rb") as existing:
                    while block := existing.read(1 << 20):
                        digest.update(block)

            sink = FileSink(handle, digest, new_digest, lambda size: progress.advance(task, size))
            try:
                written, resumed = api.fetch(link["url"], sink, offset=offset, etag=f'"{link["sha256"]}"')
            finally:
                sink.close()
            digest = sink.digest
        if offset and not resumed:
            offset = 0
    actual = digest.hexdigest()
    if actual != expected:
        partial.unlink(missing_ok=True)
        raise CheckFailed(f"{output} arrived with {check} {actual}, not {expected}; download it again.")
    partial.replace(output)
    result = {
        "output": str(output),
        "sha256": link["sha256"],
        "checked_with": check.lower().replace("-", ""),
        "bytes": link["size_bytes"],
        "resumed_from_byte": offset,
        "sent_bytes": written,
        "delivery": link["delivery"],
        "receipt_url": link.get("receipt_url"),
    }
    context.emit(
        result,
        lambda: context.out.print(
            f"{output}: {link['size_bytes']:,} bytes, SHA-256 {link['sha256']} ({check} checked)"
            + (f" (resumed at byte {offset:,})" if offset else "")
        ),
    )
    return EXIT_OK


# --- generators ----------------------------------------------------------------------------------------


def condition_argument(value: str) -> tuple[str, Any]:
    column, separator, raw = value.partition("=")
    if not separator or not column:
        raise argparse.ArgumentTypeError(f"{value!r}: write COLUMN=VALUE")
    try:
        return column, json.loads(raw)
    except ValueError:
        return column, raw


def _follow_draw(context: Context, api: Any, entitlement: str, draw: dict[str, Any]) -> dict[str, Any]:
    """Poll a draw until it is done, with a progress bar; the finished draw."""
    arguments = context.arguments
    deadline = time.monotonic() + arguments.timeout if arguments.timeout else None
    with percent_progress(context) as progress:
        task = progress.add_task(f"draw {draw['id']}", total=100, completed=draw["progress"])
        while draw["status"] not in JOB_DONE:
            if deadline is not None and time.monotonic() > deadline:
                raise CheckFailed(
                    f"Draw {draw['id']} is still {draw['status']} after {arguments.timeout:g} s."
                )
            time.sleep(arguments.interval)
            draw = api.sample_draw(entitlement, draw["id"])
            progress.update(task, completed=draw["progress"])
    return draw


def cmd_sample(context: Context) -> int:
    """Draw rows (or, with ``--draw``, fetch a draw already made: nothing is drawn or counted again), then
    download the buyer's copy of it and check the copy's own hash, which its download link announces: the
    copy is fingerprinted, so it is not the draw file's ``sha256``."""
    arguments = context.arguments
    entitlement = arguments.entitlement
    if (arguments.rows is None) == (arguments.draw is None):
        raise UsageError("Give --rows to draw new rows, or --draw DRAW_ID to fetch a draw again.")
    with context.api(need_token=True) as api:
        if arguments.draw:
            draw = api.sample_draw(entitlement, arguments.draw)
        else:
            draw = api.request_sample(
                entitlement, arguments.rows, arguments.seed, dict(arguments.condition) or None
            )
        draw = _follow_draw(context, api, entitlement, draw)
        if draw["status"] == "failed":
            raise CheckFailed(
                f"Draw {draw['id']} failed: {draw['error'] or draw['error_code']} (nothing was taken from your quota)"
            )
        link = api.download_link(entitlement, "parquet", draw=draw["id"])
        output = Path(arguments.output or link.get("filename") or f"{draw['id']}.parquet")
        partial = output.with_name(output.name + ".part")
        check, expected, new_digest = _transfer_check(link)
        with partial.open("wb") as handle, transfer_progress(context) as progress:
            task = progress.add_task(output.name, total=link["size_bytes"])
            sink = FileSink(handle, new_digest(), new_digest, lambda size: progress.advance(task, size))
            try:
                written, _ = api.fetch(link["url"], sink)
            finally:
                sink.close()
    actual = sink.digest.hexdigest()
    if actual != expected:
        partial.unlink(missing_ok=True)
        raise CheckFailed(
            f"The copy of draw {draw['id']} arrived with {check} {actual}, not {expected}. The draw is kept: "
            f"fetch it again with `synthex sample {entitlement} --draw {draw['id']}` (no rows drawn again)."
        )
    partial.replace(output)
    result = {
        **draw,
        "output": str(output),
        "bytes": written,
        "copy_sha256": link["sha256"],
        "checked_with": check.lower().replace("-", ""),
        "delivery": link["delivery"],
        "rows_delivered": link["rows"],
    }
    context.emit(
        result,
        lambda: context.out.print(
            f"Draw {draw['id']}: {link['rows']:,} of {draw['rows']:,} rows in {output} ({written:,} bytes, "
            f"your copy's SHA-256 {link['sha256']}, {check} checked)"
        ),
    )
    return EXIT_OK
