"""Fixtures for buying: localstripe on loopback (one per session), certified versions, signed webhooks."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from orders_support import (  # noqa: F401
    DEAD_URL,
    EVALUATION,
    REPO,
    WEBHOOK_SECRET,
    _numbers,
    event_payload,
    ledger_balance,
    ledger_kinds,
    signed_headers,
)


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
