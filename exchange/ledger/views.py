"""Ledger pages: the auditor's explorer, a provider's accounts, and the public transparency page."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from exchange.ledger import selectors
from exchange.ledger.models import TreeHead
from exchange.ledger.services import ledger_origin
from marketplace.core.auth import signed_in_user


def _date(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


@login_required
def explorer(request: HttpRequest) -> HttpResponse:
    """Search entries by ref (``order=ord_42``), account, kind and dates; trial balance; head history."""
    user = request.user
    if not (getattr(user, "is_auditor", False) or user.is_staff):
        raise PermissionDenied("Only auditors and staff may explore the ledger.")
    ref = request.GET.get("ref", "").strip()
    ref_key, _, ref_value = ref.partition("=")
    account = request.GET.get("account", "").strip()
    filters: dict[str, Any] = {
        "ref_key": ref_key.strip(),
        "ref_value": ref_value.strip(),
        "account_id": int(account) if account.isdigit() else None,
        "kind": request.GET.get("kind", "").strip(),
        "since": _date(request.GET.get("since")),
        "until": _date(request.GET.get("until")),
    }
    entries = selectors.search_entries(**filters)
    postings = selectors.postings_by_transaction(
        [entry.index for entry in entries if entry.entry_type == "transaction"]
    )
    lines = selectors.trial_balance()
    return render(
        request,
        "ledger/explorer.html",
        {
            "rows": [(entry, postings.get(entry.index, [])) for entry in entries],
            "query": request.GET,
            "lines": lines,
            "totals": selectors.trial_totals(lines),
            "heads": TreeHead.objects.order_by("-id")[:20],
            "counts": selectors.counts(),
        },
    )


@login_required
def provider_accounts(request: HttpRequest) -> HttpResponse:
    """The signed-in provider's organizations: sales, fees, refunds, payable, paid out and owed, per currency."""
    organizations = list(signed_in_user(request).provider_organizations())
    if not organizations:
        raise PermissionDenied("Only members of a provider organization have ledger accounts.")
    return render(
        request,
        "ledger/provider.html",
        {
            "organizations": [
                (organization, selectors.provider_summaries(organization)) for organization in organizations
            ]
        },
    )


def transparency(request: HttpRequest) -> HttpResponse:
    """Public: the latest signed head, head history and entry counts; no entry contents, no personal data."""
    return render(
        request,
        "ledger/transparency.html",
        {
            "origin": ledger_origin(),
            "head": selectors.latest_head(),
            "heads": TreeHead.objects.order_by("-id")[:50],
            "counts": selectors.counts(),
        },
    )
