"""Helpers shared by the tests in tests/orders/ (importable by name, unlike conftest)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


WEBHOOK_SECRET = "whsec_synthex_tests"


DEAD_URL = "http://127.0.0.1:9/nowhere/"


_numbers = itertools.count(1)


EVALUATION = {
    "quality": {"score": 0.91, "grade": "A", "column_shapes": 0.93, "column_pair_trends": 0.89},
    "plausibility": {
        "score": 1.0,
        "grade": "A",
        "rows_violating_any": 0.0,
        "holdout_rows_violating_any": 0.0,
        "rules": [],
    },
    "privacy": {"grade": "A", "passed": True, "exact_match_rate": 0.0, "dcr_share": 0.5},
    "charts": {},
    "parameters": {},
    "engine": {"name": "synthex-certify", "version": "test"},
}


def signed_headers(
    payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    """A ``Stripe-Signature`` header made exactly as Stripe makes it: HMAC-SHA256 over ``t.payload``."""
    moment = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{moment}.".encode() + payload, hashlib.sha256).hexdigest()
    return {"HTTP_STRIPE_SIGNATURE": f"t={moment},v1={signature}"}


def event_payload(event_type: str, obj: dict[str, Any], *, event_id: str | None = None) -> bytes:
    return json.dumps(
        {
            "id": event_id or f"evt_test_{next(_numbers)}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": obj},
            "api_version": "2017-08-15",
        }
    ).encode()


def ledger_balance(kind: str, currency: str = "USD", organization: Any = None) -> int:
    """An account's stored balance, debit-positive minor units (0 when the account was never opened)."""
    from exchange.ledger.models import Account, AccountBalance

    account = Account.objects.filter(kind=kind, currency=currency, organization=organization).first()
    if account is None:
        return 0
    row = AccountBalance.objects.filter(account=account).first()
    return row.balance_minor if row else 0


def ledger_kinds(ref_key: str, ref_value: str) -> list[str]:
    from exchange.ledger.services import entries_for

    return [entry.kind for entry in entries_for(ref_key, ref_value)]
