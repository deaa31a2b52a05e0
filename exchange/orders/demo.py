"""Demo sales for `make run`: the demo buyer buys a few demo products, free ones directly and paid ones
through a short-lived localstripe (local mode only), so orders, entitlements, receipts, provider
earnings and the ledger all have real content from the first start."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from django.conf import settings
from django.test import override_settings

from exchange.orders import services
from exchange.orders.models import Order
from marketplace.accounts.models import User
from marketplace.catalog.models import Product, VersionStatus

REPO = Path(__file__).resolve().parents[2]
# (product title, license) bought by demo-buyer.
PURCHASES = (
    ("US Census Income (Adult), synthetic", "standard"),
    ("Breast cancer diagnostics (Wisconsin)", "research"),
    ("Diabetes progression cohort", "standard"),
    ("Wine chemistry and cultivars", "research"),
)


@contextmanager
def _temporary_localstripe() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    process = subprocess.Popen(
        [sys.executable, "-m", "exchange.orders.localstripe_server", "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/v1/balance", headers={"Authorization": "Bearer sk_test_demo"}, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("localstripe did not start for the demo sales") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def seed_sales(log: Callable[[str], None] = print) -> list[Order]:
    """Buy the demo purchases as demo-buyer (idempotent: a product already bought is skipped)."""
    buyer = User.objects.get(username="demo-buyer")
    wanted = []
    for title, license_code in PURCHASES:
        product = Product.objects.filter(title=title).first()
        version = (
            product.versions.filter(status=VersionStatus.CERTIFIED).order_by("-number").first()
            if product
            else None
        )
        if (
            version is None
            or Order.objects.filter(buyer=buyer, version=version, status=Order.Status.PAID).exists()
        ):
            continue
        wanted.append((version, license_code))
    if not wanted:
        return []
    if settings.STRIPE_SECRET_KEY:
        log("  Demo sales skipped: real Stripe keys are configured.")
        return []
    made = []
    with _temporary_localstripe() as url, override_settings(STRIPE_API_BASE=url):
        for version, license_code in wanted:
            order = services.create_order(buyer=buyer, version_id=version.pk, license_code=license_code).order
            if order.status == Order.Status.PENDING:
                services.confirm_locally(order, "pm_card_visa")
            order.refresh_from_db()
            log(f"  demo-buyer bought {version.product.title} ({license_code}): {order.status}")
            made.append(order)
    return made
