"""Fixtures for buying: localstripe on loopback (one per session), certified versions, signed webhooks."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "whsec_synthex_tests"
DEAD_URL = "http://127.0.0.1:9/nowhere/"
_numbers = itertools.count(1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """A localstripe process on 127.0.0.1 for the whole session, state in memory."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "exchange.orders.localstripe_server", "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.delete(f"{url}/_config/data", timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("localstripe did not start") from None
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


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
def stripe_webhooks_to(localstripe_url: str, live_server: Any) -> Iterator[Callable[[str], None]]:
    """Point localstripe's webhook at a URL of the live server for one test; back to nowhere afterwards.

    The ledger is purged before the live server's transactional flush (its append-only triggers refuse
    the flush's DELETEs).
    """
    from django.db import connection

    from exchange.ledger.schema import purge_ledger

    yield lambda url: register_webhook(localstripe_url, url)
    register_webhook(localstripe_url, DEAD_URL)
    purge_ledger(connection)


EVALUATION = {
    "quality": {"score": 0.91, "grade": "A", "column_shapes": 0.93, "column_pair_trends": 0.89},
    "privacy": {"grade": "A", "passed": True, "exact_match_rate": 0.0, "dcr_share": 0.5},
    "charts": {},
    "parameters": {},
    "engine": {"name": "synthex-certify", "version": "test"},
}


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


@pytest.fixture
def version(provider: Any, certified_version_factory: Callable[..., Any]) -> Any:
    """A certified version of the ``provider``'s product, standard license at 25.00 USD."""
    return certified_version_factory(provider)


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


@pytest.fixture
def post_event(client: Any) -> Callable[..., Any]:
    """POST a signed event to the webhook endpoint; returns the response."""

    def send(event_type: str, obj: dict[str, Any], *, event_id: str | None = None, **signing: Any) -> Any:
        payload = event_payload(event_type, obj, event_id=event_id)
        return client.post(
            "/api/v1/stripe/webhook/",
            data=payload,
            content_type="application/json",
            **signed_headers(payload, **signing),
        )

    return send


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
