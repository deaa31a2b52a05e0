"""Fixtures for buying: localstripe on loopback (one per session), certified versions, signed webhooks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from orders_support import (  # noqa: F401
    DEAD_URL,
    EVALUATION,
    REPO,
    WEBHOOK_SECRET,
    certified_version_factory,
    event_payload,
    ledger_balance,
    ledger_kinds,
    register_webhook,
    signed_headers,
    stripe_local,
)


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
def version(provider: Any, certified_version_factory: Callable[..., Any]) -> Any:  # noqa: F811
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
