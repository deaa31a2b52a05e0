"""Audit checks of the downloads app, both ways: each download row has its ledger event and each download
event its row (a deleted row is named); each delivered copy has its ``delivery.issued`` event and each such
event its copy; no copy is served after its entitlement was revoked."""

from __future__ import annotations

from collections.abc import Iterator

from django.db import models

from exchange.downloads.models import Delivery, Download
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


@register_check("downloads.events")
def download_events_have_rows() -> Iterator[Problem]:
    """Every ``download`` / ``download.refused`` event names a download row of that outcome, delivery and
    range (a row deleted or edited after the fact is named)."""
    outcome_of = {"download": Download.Outcome.SERVED, "download.refused": Download.Outcome.REFUSED}
    events = LedgerEvent.objects.filter(kind__in=list(outcome_of)).order_by("leaf_id")
    for event in events.iterator(chunk_size=5000):
        download_id = str(event.refs.get("download", ""))
        row = Download.objects.filter(pk=download_id).first() if download_id else None
        where = f"event {event.leaf_id} ({event.kind})"
        if row is None:
            yield Problem(
                "downloads.events", where, f"names download {download_id!r}, which is not in the database"
            )
            continue
        logged_range = event.refs.get("range")
        row_range = None if row.range_start is None else f"{row.range_start}-{row.range_end}"
        if (
            row.outcome != outcome_of[event.kind]
            or row.ledger_index != event.leaf_id
            or (row.delivery_id or None) != (event.refs.get("delivery") or None)
            or logged_range != row_range
        ):
            yield Problem("downloads.events", where, f"differs from download row {download_id} (row altered)")


@register_check("downloads.deliveries")
def deliveries_have_events() -> Iterator[Problem]:
    """Delivered copies ↔ ``delivery.issued`` events, both ways, with the same entitlement and hash."""
    issued = {
        str(event.refs.get("delivery", "")): event
        for event in LedgerEvent.objects.filter(kind="delivery.issued").order_by("leaf_id")
    }
    for delivery in Delivery.objects.all().iterator(chunk_size=5000):
        event = issued.pop(delivery.pk, None)
        if (
            event is None
            or event.leaf_id != delivery.ledger_index
            or event.refs.get("entitlement") != delivery.entitlement_id
            or event.refs.get("delivered_sha256") != delivery.sha256
        ):
            yield Problem(
                "downloads.deliveries", f"delivery {delivery.pk}", "has no matching delivery.issued event"
            )
    for delivery_id, event in issued.items():
        yield Problem(
            "downloads.deliveries",
            f"event {event.leaf_id} (delivery.issued)",
            f"names delivery {delivery_id!r}, which is not in the database",
        )


@register_check("downloads.after_revocation")
def nothing_served_after_revocation() -> Iterator[Problem]:
    """No copy was served to an entitlement after it was revoked (and not reinstated)."""
    late = Download.objects.filter(
        outcome=Download.Outcome.SERVED,
        delivery__entitlement__status="revoked",
        delivery__entitlement__revoked_at__isnull=False,
        created_at__gt=models.F("delivery__entitlement__revoked_at"),
    ).values_list("pk", "delivery__entitlement_id")
    for download_id, entitlement_id in late:
        yield Problem(
            "downloads.after_revocation",
            f"download {download_id}",
            f"was served after entitlement {entitlement_id} was revoked",
        )
