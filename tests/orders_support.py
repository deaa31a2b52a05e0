"""Helpers and fixtures for buying, shared by tests/orders/ and tests/e2e/ (importable by name, unlike conftest)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]


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


def register_webhook(localstripe_url: str, url: str) -> None:
    response = httpx.post(
        f"{localstripe_url}/_config/webhooks/synthex", data={"url": url, "secret": WEBHOOK_SECRET}, timeout=5
    )
    response.raise_for_status()


@pytest.fixture
def stripe_local(settings: Any, localstripe_url: str) -> str:
    """Local mode against a wiped localstripe whose webhooks go nowhere (tests that want them use live)."""
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_API_BASE = localstripe_url
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.SYNTHEX_PLATFORM_FEE_RATE = Decimal("0.20")
    register_webhook(localstripe_url, DEAD_URL)
    httpx.delete(f"{localstripe_url}/_config/data", timeout=5).raise_for_status()
    return localstripe_url


@pytest.fixture
def certified_version_factory(product_factory: Callable[..., Any]) -> Callable[..., Any]:
    """A listed product of ``owner``'s organization with one certified version (certificate signed for real)."""
    from marketplace.catalog.models import ProductVersion, VersionFile
    from marketplace.catalog.services import LicensePrice
    from marketplace.certification.services import issue_certificate

    def make(
        owner: Any, *, price_minor: int = 2500, currency: str = "USD", privacy_passed: bool = True
    ) -> Any:
        product = product_factory(owner, licenses=[LicensePrice("standard", price_minor, currency)])
        version = ProductVersion.objects.create(
            product=product, number=1, status="certifying", created_by=owner
        )
        number = next(_numbers)
        synthetic = VersionFile.objects.create(
            version=version,
            role="synthetic",
            table_name="people",
            original_filename="people.csv",
            format="csv",
            storage_name=f"files/people-{number}.csv",
            sha256=hashlib.sha256(str(number).encode()).hexdigest(),
            size_bytes=100,
            rows=10,
            column_count=3,
        )
        evaluation = json.loads(json.dumps(EVALUATION))
        evaluation["privacy"]["passed"] = privacy_passed
        evaluation["privacy"]["grade"] = "A" if privacy_passed else "F"
        issue_certificate(version, evaluation, [synthetic])
        version.refresh_from_db()
        return version

    return make
