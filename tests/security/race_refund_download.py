"""Race a buyer's refund against a download of the same order, many times, over the real code paths.

Run as a process by test_exchange_refund_download_race.py (not collected by pytest): threads need a
database file that each thread opens on its own connection (pytest-django's in-memory SQLite shares one),
so this script migrates a fresh instance under ``SYNTHEX_VAR_DIR`` (SQLite in WAL mode, IMMEDIATE
transactions, as ``make run``), buys through the API against localstripe, then for each round starts a
refund (``POST /api/v1/orders/{id}/refund/``) and a download of an already issued link
(``GET /api/v1/downloads/{token}/``) 0–40 ms apart in two threads. It prints one JSON line: per round, the
two HTTP statuses and what the database holds afterwards (refund succeeded? a served download?).

Usage: python race_refund_download.py ROUNDS SEED
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import django

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


def _setup() -> None:
    django.setup()
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()
    call_command("migrate", verbosity=0)


def _version() -> Any:
    import pandas as pd

    from marketplace.accounts.models import User
    from marketplace.accounts.services import create_organization
    from marketplace.catalog import services
    from marketplace.catalog.uploads import local_upload
    from marketplace.certification.services import issue_certificate
    from marketplace.datasets import adult_csv

    owner = User.objects.create_user(username="provider", email="p@example.test", password="x" * 12)
    organization = create_organization(owner=owner, name="Race Provider", is_provider=True)
    product = services.create_product(
        user=owner,
        organization=organization,
        title="Race table",
        summary="A table for the race.",
        domain="census",
        licenses=[services.LicensePrice("standard", 2500, "USD")],
    )
    path = Path(tempfile.mkdtemp()) / "people.csv"
    frame = pd.read_csv(adult_csv(), na_values=["?"], nrows=400).dropna().head(200)
    frame[["age", "education", "hours-per-week", "sex"]].to_csv(path, index=False)
    version = services.create_version(product, user=owner, synthetic=[local_upload(path, name="people.csv")])
    issue_certificate(version, EVALUATION, list(version.files.filter(role="synthetic")))
    version.refresh_from_db()
    return version


def _client(user: Any) -> Any:
    from rest_framework.test import APIClient

    from marketplace.accounts.services import api_token_for

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_for(user)}")
    return client


def _paid_order_and_link(version: Any, number: int) -> tuple[str, str, str, Any]:
    from marketplace.accounts.models import User

    buyer = User.objects.create_user(
        username=f"buyer{number}", email=f"b{number}@example.test", password="x" * 12
    )
    client = _client(buyer)
    order = client.post(
        "/api/v1/orders/", {"version": version.pk, "license": "standard"}, format="json"
    ).json()
    paid = client.post(
        f"/api/v1/orders/{order['id']}/confirm/", {"payment_method": "pm_card_visa"}, format="json"
    )
    assert paid.json()["status"] == "paid", paid.content
    entitlement = paid.json().get("entitlement") or _entitlement_of(order["id"])
    link = client.post(f"/api/v1/entitlements/{entitlement}/links/", {"format": "csv"}, format="json").json()
    return order["id"], entitlement, link["url"].split("testserver", 1)[1], buyer


def _entitlement_of(order_id: str) -> str:
    from exchange.orders.models import Order

    return str(Order.objects.get(pk=order_id).entitlement_id)


def _in_thread(results: dict[str, Any], name: str, start: threading.Barrier, delay: float, call: Any) -> None:
    from django.db import connection

    try:
        start.wait(10)
        time.sleep(delay)
        results[name] = call()
    except Exception as error:  # reported, and the round counts as broken
        results[name] = f"error: {error!r}"
    finally:
        connection.close()


def _round(version: Any, number: int, rng: random.Random) -> dict[str, Any]:
    from exchange.downloads.models import Download
    from exchange.orders.models import Refund

    order_id, entitlement_id, url, buyer = _paid_order_and_link(version, number)

    def refund() -> int:
        return _client(buyer).post(f"/api/v1/orders/{order_id}/refund/", {}, format="json").status_code

    def download() -> int:
        response = _client(buyer).get(url)
        if response.status_code in (200, 206):
            b"".join(response.streaming_content)
        return response.status_code

    results: dict[str, Any] = {}
    start = threading.Barrier(2)
    lead = rng.uniform(0, 0.040)
    refund_first = rng.random() < 0.5
    threads = [
        threading.Thread(
            target=_in_thread, args=(results, "refund", start, 0 if refund_first else lead, refund)
        ),
        threading.Thread(
            target=_in_thread, args=(results, "download", start, lead if refund_first else 0, download)
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    money_back = Refund.objects.filter(order_id=order_id, status=Refund.Status.SUCCEEDED).exists()
    served = Download.objects.filter(
        delivery__entitlement_id=entitlement_id, outcome=Download.Outcome.SERVED
    ).count()
    return {
        "refund_status": results.get("refund"),
        "download_status": results.get("download"),
        "money_back": money_back,
        "served": served,
        "lead_ms": round(lead * 1000, 1),
    }


def main() -> None:
    rounds, seed = int(sys.argv[1]), int(sys.argv[2])
    _setup()
    version = _version()
    rng = random.Random(seed)
    report = [_round(version, number, rng) for number in range(rounds)]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
