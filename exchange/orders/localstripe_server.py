"""Run localstripe on loopback with its state in memory, plus a minimal Connect transfer endpoint.

localstripe (1.15) emulates PaymentIntents, refunds and signed webhooks but not Connect, and by default
binds every interface and pickles its state to a fixed file in /tmp after each write. Here it listens on
127.0.0.1 only, keeps nothing on disk, registers the platform webhook at start, and answers
``POST/GET /v1/transfers`` (honouring ``Idempotency-Key``) so that payout runs work in local mode.
``DELETE /_config/data`` wipes everything, transfers included.

Run: ``python -m exchange.orders.localstripe_server --port 8420 --webhook-url URL --webhook-secret S``
(``manage.py localstripe`` does the same with the secret from the settings).
"""

from __future__ import annotations

import argparse
import secrets
import time
from typing import Any

from aiohttp import web
from localstripe import resources, server, webhooks
from localstripe.errors import UserError

_TRANSFER_PREFIX = "transfer:"
_IDEMPOTENT_PREFIX = "transfer-idempotency:"


def _transfer_document(transfer_id: str, data: dict[str, Any]) -> dict[str, Any]:
    try:
        amount = int(data.get("amount", ""))
    except ValueError:
        raise UserError(400, "Bad request: amount") from None
    currency = str(data.get("currency", ""))
    destination = str(data.get("destination", ""))
    if amount <= 0 or len(currency) != 3 or not destination.startswith("acct_"):
        raise UserError(400, "Bad request")
    return {
        "id": transfer_id,
        "object": "transfer",
        "amount": amount,
        "amount_reversed": 0,
        "currency": currency.lower(),
        "destination": destination,
        "metadata": data.get("metadata") or {},
        "transfer_group": data.get("transfer_group"),
        "reversed": False,
        "created": int(time.time()),
        "livemode": False,
    }


async def _create_transfer(request: web.Request) -> web.Response:
    data = await server.get_post_data(request) or {}
    key = request.headers.get("Idempotency-Key", "")
    if key and (_IDEMPOTENT_PREFIX + key) in resources.store:
        return server.json_response(resources.store[_IDEMPOTENT_PREFIX + key])
    document = _transfer_document(f"tr_{secrets.token_hex(7)}", data)
    resources.store[_TRANSFER_PREFIX + document["id"]] = document
    if key:
        resources.store[_IDEMPOTENT_PREFIX + key] = document
    return server.json_response(document)


async def _retrieve_transfer(request: web.Request) -> web.Response:
    document = resources.store.get(_TRANSFER_PREFIX + request.match_info["id"])
    if document is None:
        raise UserError(404, "Not Found")
    return server.json_response(document)


async def _list_transfers(request: web.Request) -> web.Response:
    items = [value for key, value in resources.store.items() if key.startswith(_TRANSFER_PREFIX)]
    return server.json_response(
        {
            "object": "list",
            "url": "/v1/transfers",
            "has_more": False,
            "data": items,
            "total_count": len(items),
        }
    )


def build_app() -> web.Application:
    """Return localstripe's aiohttp app with state kept in memory and the transfer routes added."""
    resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
    app = server.app
    if not getattr(app, "_synthex_transfers", False):
        app.router.add_post("/v1/transfers", _create_transfer)
        app.router.add_get("/v1/transfers/{id}", _retrieve_transfer)
        app.router.add_get("/v1/transfers", _list_transfers)
        app._synthex_transfers = True  # type: ignore[attr-defined]
    return app


def serve(*, port: int, webhook_url: str = "", webhook_secret: str = "", host: str = "127.0.0.1") -> None:
    """Serve until interrupted; when ``webhook_url`` is given, every event is POSTed there, signed."""
    app = build_app()
    if webhook_url:
        if not webhook_secret:
            raise ValueError("a webhook URL needs a signing secret")
        webhooks.register_webhook("synthex", webhook_url, webhook_secret, None)
    web.run_app(app, host=host, port=port, print=None, access_log=None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--webhook-url", default="")
    parser.add_argument("--webhook-secret", default="")
    arguments = parser.parse_args(argv)
    serve(port=arguments.port, webhook_url=arguments.webhook_url, webhook_secret=arguments.webhook_secret)


if __name__ == "__main__":
    main()
