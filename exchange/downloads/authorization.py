"""The download decision: whether a delivered copy may be served to the buyer asking, and which bytes.

The signed link's view checks who is asking, then acts on the frozen :class:`DownloadDecision`. Every
refusal is recorded on the ledger (``download.refused``) before it is raised as a ``DeliveryError``; a
permitted download is recorded (``download``) under the entitlement's lock by ``services.start_download``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NoReturn

from exchange.downloads import services
from exchange.downloads.models import Delivery, Download
from marketplace.accounts.models import User

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass(frozen=True)
class DownloadDecision:
    """A download of a delivered copy of ``size`` bytes, permitted and recorded: bytes ``start``–``end``
    (inclusive; ``is_partial`` for a satisfiable Range request, answered 206), streamed from this server
    or, when ``is_streamed`` is False, from the object store by a presigned redirect. ``is_satisfiable``
    False: the asked range starts beyond the end (416, recorded as refused; nothing is served)."""

    size: int
    start: int
    end: int
    is_partial: bool
    is_streamed: bool
    is_satisfiable: bool = True


def parse_range(header: str, size: int) -> tuple[int, int] | None | str:
    """A single ``bytes=`` range as (first, last) inclusive; None when absent, malformed or several ranges
    (RFC 9110: the server then sends the whole file); ``"unsatisfiable"`` when it starts beyond the end."""
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        length = int(last)
        if length == 0:
            return "unsatisfiable"
        return max(0, size - length), size - 1
    start = int(first)
    if start >= size:
        return "unsatisfiable"
    end = int(last) if last else size - 1
    if end < start:
        return None
    return start, min(end, size - 1)


def refuse(error: services.DeliveryError, *, user: User | None, delivery: Delivery | None = None) -> NoReturn:
    """Record a refused download attempt (``download.refused``, the error's code as reason) and raise it."""
    services.record_download(
        outcome=Download.Outcome.REFUSED, reason=error.code, delivery=delivery, user=user
    )
    raise error


def authorize_download(
    delivery: Delivery, *, user: User | None, range_header: str, if_range: str | None
) -> DownloadDecision:
    """Decide a download of ``delivery`` by its buyer ``user`` (the caller checked who is asking): refused
    when the entitlement was revoked (403 ``revoked``), the copy is missing from storage (503
    ``file_missing``, alerted) or the license's download limit is reached (403 ``limit_reached``). A
    ``Range`` (honoured on the filesystem backend only, and only when ``If-Range`` names the copy's ETag)
    that starts beyond the end gives an unsatisfiable decision."""
    if not delivery.entitlement.is_active:
        refuse(
            services.DeliveryError(
                "revoked", "This entitlement was revoked (refunded); downloads are closed.", 403
            ),
            user=user,
            delivery=delivery,
        )
    store = services.storage()
    if not store.exists(delivery.storage_name):
        services.logger.error(
            "ALERT: delivered copy missing: delivery %s at %r", delivery.id, delivery.storage_name
        )
        refuse(
            services.DeliveryError(
                "file_missing",
                "The file is missing from storage; the platform has been alerted. Ask for a new link later.",
                503,
            ),
            user=user,
            delivery=delivery,
        )
    streamed = services.is_streamed(store)
    size = delivery.size_bytes
    wanted = parse_range(range_header, size) if streamed else None
    if if_range and if_range != f'"{delivery.sha256}"':
        wanted = None
    if wanted == "unsatisfiable":
        services.record_download(
            outcome=Download.Outcome.REFUSED, reason="range_not_satisfiable", delivery=delivery, user=user
        )
        return DownloadDecision(
            size=size, start=0, end=size - 1, is_partial=False, is_streamed=streamed, is_satisfiable=False
        )
    start, end = wanted if isinstance(wanted, tuple) else (0, size - 1)
    try:
        # Entitlement still active and limit not reached, checked and recorded under the entitlement's
        # lock: a refund racing this download cannot also win (see services.start_download).
        services.start_download(
            delivery,
            user=user,
            range_start=start if streamed else None,
            range_end=end if streamed else None,
        )
    except services.DeliveryError as error:
        refuse(error, user=user, delivery=delivery)
    return DownloadDecision(
        size=size, start=start, end=end, is_partial=isinstance(wanted, tuple), is_streamed=streamed
    )
