"""Checkout benchmark: concurrent purchases end to end against localstripe, through a real web server.

Usage: python bench/checkout.py [PURCHASES] [CONCURRENCY]    (default 200 purchases, 32 at a time)

Starts, in a temporary var dir: a migrated SQLite (WAL) database with one certified product and PURCHASES
buyers; localstripe on loopback whose webhooks go to the server; gunicorn as in the Procfile. Each buyer
POSTs /api/v1/orders/ twice at once (a double submit), then confirms with ``pm_card_visa``. After the
webhooks have arrived it checks: 0 duplicate charges (succeeded PaymentIntents per order ≤ 1), 0 lost
entitlements (every paid order has an active one), ``audit_ledger`` clean, and ``reconcile_payments`` clean.
Prints purchases/s (wall clock of the whole run) and p50/p95 latency of the order endpoint.
"""

from __future__ import annotations

import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def _prepare(purchases: int) -> tuple[int, list[str]]:
    """Create one certified product and ``purchases`` buyers with API tokens; returns (version id, tokens)."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import hashlib

    from marketplace.accounts.models import User
    from marketplace.accounts.services import api_token_for, create_organization
    from marketplace.catalog import services as catalog
    from marketplace.catalog.models import ProductVersion, VersionFile
    from marketplace.certification.services import issue_certificate

    owner = User.objects.create(username="bench-provider", email="provider@bench.test", password="!")
    organization = create_organization(owner=owner, name="Bench Provider", is_provider=True)
    product = catalog.create_product(
        user=owner,
        organization=organization,
        title="Bench table",
        summary="Synthetic rows for the checkout benchmark.",
        domain="census",
        licenses=[catalog.LicensePrice("standard", 2500, "USD")],
    )
    version = ProductVersion.objects.create(product=product, number=1, status="certifying", created_by=owner)
    synthetic = VersionFile.objects.create(
        version=version, role="synthetic", table_name="people", original_filename="people.csv", format="csv",
        storage_name="files/people.csv", sha256=hashlib.sha256(b"bench").hexdigest(), size_bytes=1, rows=1,
        column_count=1,
    )  # fmt: skip
    section = {"score": 0.9, "grade": "A", "passed": True}
    evaluation = {
        "quality": section,
        "plausibility": section,
        "privacy": section,
        "charts": {},
        "parameters": {},
        "engine": {"name": "bench"},
    }
    issue_certificate(version, evaluation, [synthetic])
    tokens = []
    for number in range(purchases):
        buyer = User.objects.create(
            username=f"buyer{number}", email=f"buyer{number}@bench.test", password="!"
        )
        tokens.append(api_token_for(buyer))
    return version.pk, tokens


def main() -> int:
    purchases = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    var_dir = tempfile.mkdtemp(prefix="synthex-bench-checkout-")
    web_port, stripe_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "marketplace.settings",
        "SYNTHEX_VAR_DIR": var_dir,
        "STRIPE_SECRET_KEY": "",
        "STRIPE_API_BASE": f"http://127.0.0.1:{stripe_port}",
        "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(16),
        "LOG_LEVEL": "WARNING",
        "DEBUG": "0",
    }
    os.environ.update(env)
    sys.path.insert(0, str(REPO))
    version_id, tokens = _prepare(purchases)
    webhook_url = f"http://127.0.0.1:{web_port}/api/v1/stripe/webhook/"
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "exchange.orders.localstripe_server", "--port", str(stripe_port),
             "--webhook-url", webhook_url, "--webhook-secret", env["STRIPE_WEBHOOK_SECRET"]],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [str(REPO / ".venv/bin/gunicorn"), "marketplace.wsgi", "--bind", f"127.0.0.1:{web_port}",
             "--workers", "2", "--threads", "8", "--timeout", "120"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ),
    ]  # fmt: skip
    try:
        _wait_for(f"http://127.0.0.1:{stripe_port}/v1/balance")
        _wait_for(f"http://127.0.0.1:{web_port}/healthz")
        return _run(web_port, version_id, tokens, concurrency)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)


def _run(web_port: int, version_id: int, tokens: list[str], concurrency: int) -> int:
    base = f"http://127.0.0.1:{web_port}/api/v1"
    order_latencies: list[float] = []
    failures: list[str] = []

    def purchase(token: str) -> None:
        headers = {"Authorization": f"Token {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            bodies = []
            for _ in range(2):  # a double submit: the second must return the same order
                started = time.perf_counter()
                response = client.post(
                    "/orders/", json={"version": version_id, "license": "standard", "price_minor": 2500}
                )
                order_latencies.append(time.perf_counter() - started)
                if response.status_code not in (200, 201):
                    failures.append(f"order {response.status_code} {response.text[:120]}")
                    return
                bodies.append(response.json())
            if bodies[0]["id"] != bodies[1]["id"]:
                failures.append("double submit opened two orders")
            confirmed = client.post(
                f"/orders/{bodies[0]['id']}/confirm/", json={"payment_method": "pm_card_visa"}
            )
            if confirmed.status_code != 200 or confirmed.json()["status"] != "paid":
                failures.append(f"confirm {confirmed.status_code} {confirmed.text[:120]}")

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(purchase, tokens))
    wall = time.perf_counter() - started
    time.sleep(3)  # localstripe delivers each webhook about 1 s after the charge

    from django.core.management import call_command
    from django.db.models import Count

    from exchange.delivery.models import Entitlement
    from exchange.orders import stripe_gateway
    from exchange.orders.models import Order, WebhookEvent

    succeeded: dict[str, int] = {}
    for intent in stripe_gateway.iter_payment_intents():
        if intent.status == "succeeded":
            order_id = intent.metadata.get("synthex_order", "")
            succeeded[order_id] = succeeded.get(order_id, 0) + 1
    duplicate_charges = sum(count - 1 for count in succeeded.values())
    paid = Order.objects.filter(status="paid").count()
    lost = Order.objects.filter(status="paid").exclude(entitlement__status=Entitlement.Status.ACTIVE).count()
    extra_orders = Order.objects.values("buyer").annotate(n=Count("id")).filter(n__gt=1).count()
    events = dict(WebhookEvent.objects.values_list("status").annotate(n=Count("id")))
    try:
        call_command("audit_ledger", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
        audit = "clean"
    except SystemExit as exit_request:
        audit = "clean" if exit_request.code in (0, None) else f"FAILED (exit {exit_request.code})"
    try:
        call_command("reconcile_payments", stdout=open(os.devnull, "w"))  # noqa: SIM115
        reconcile = "clean"
    except SystemExit as exit_request:
        reconcile = f"FAILED (exit {exit_request.code})"
    latencies = sorted(order_latencies)
    p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan")
    print(
        f"purchases: {len(tokens)} (concurrency {concurrency}), paid orders: {paid}, failures: {len(failures)}"
    )
    for failure in failures[:5]:
        print(f"  failure: {failure}")
    print(f"wall: {wall:.1f} s → {paid / wall:.1f} purchases/s")
    print(
        f"POST /api/v1/orders/: {len(latencies)} calls, p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms"
    )
    print(f"duplicate charges: {duplicate_charges}; buyers with more than one order: {extra_orders}")
    print(f"lost entitlements: {lost}; webhook events: {events}")
    print(f"audit_ledger: {audit}; reconcile_payments: {reconcile}")
    ok = not failures and duplicate_charges == 0 and lost == 0 and audit == "clean" and reconcile == "clean"
    return 0 if ok and paid == len(tokens) else 1


if __name__ == "__main__":
    sys.exit(main())
