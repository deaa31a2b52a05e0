"""Audit checks of the downloads app: each served or refused download has its ledger event."""

from __future__ import annotations

from collections.abc import Iterator

from exchange.downloads.models import Download
from exchange.ledger.audit import Problem, register_check
from exchange.ledger.models import LedgerEvent


@register_check("downloads")
def downloads_have_events() -> Iterator[Problem]:
    """Every Download row points at a ledger event of the right kind whose refs name that download."""
    expected_kind: dict[str, str] = {
        Download.Outcome.SERVED: "download",
        Download.Outcome.REFUSED: "download.refused",
    }
    rows = Download.objects.values_list("id", "outcome", "ledger_index").order_by("created_at")
    for chunk_start in range(0, rows.count(), 5000):
        chunk = list(rows[chunk_start : chunk_start + 5000])
        events = {
            event.leaf_id: event
            for event in LedgerEvent.objects.filter(leaf_id__in=[index for _, _, index in chunk])
        }
        for download_id, outcome, index in chunk:
            event = events.get(index)
            if (
                event is None
                or event.kind != expected_kind[outcome]
                or event.refs.get("download") != download_id
            ):
                yield Problem(
                    "downloads", f"download {download_id}", f"has no {expected_kind[outcome]} ledger event"
                )
