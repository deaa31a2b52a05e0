"""Scale-out with real processes on PostgreSQL + Redis + S3: one gunicorn with two workers (production
settings), two Celery workers on different queues (both take ``certify``), localstripe. Under concurrent,
duplicated submissions, task deliveries and webhook deliveries, every version gets exactly one certificate,
every order one payment, one entitlement and one sale in the ledger, and the ledger log stays one gapless,
consistent log (no fork)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from integration_support import PYTHON, REPO, free_port, wait_http

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WEBHOOK_SECRET = "whsec_scaleout"
VERSIONS = 4
BUYERS = 3


def _signed(payload: bytes) -> dict[str, str]:
    moment = int(time.time())
    signature = hmac.new(WEBHOOK_SECRET.encode(), f"{moment}.".encode() + payload, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={moment},v1={signature}", "Content-Type": "application/json"}


def _event(order: Any, event_id: str) -> bytes:
    intent = {
        "id": order.payment.stripe_payment_intent_id,
        "object": "payment_intent",
        "amount": order.amount_minor,
        "currency": order.currency.lower(),
        "status": "succeeded",
        "client_secret": order.payment.client_secret,
        "metadata": {"synthex_order": order.id},
    }
    event = {
        "id": event_id,
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "data": {"object": intent},
        "api_version": "2017-08-15",
    }
    return json.dumps(event).encode()


def _wait(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def test_two_web_and_two_worker_processes_never_duplicate_under_load(
    ledger_guarded: None,
    provider: Any,
    user_factory: Callable[..., Any],
    product_factory: Callable[..., Any],
    version_factory: Callable[..., Any],
    production_env: Callable[..., dict[str, str]],
    processes: Callable[..., Any],
    tmp_path: Path,
) -> None:
    from celery import Celery

    from exchange.delivery.models import Entitlement
    from exchange.ledger.audit import run_audit
    from exchange.ledger.models import LogLeaf, TreeHead
    from exchange.ledger.services import entries_for, publish_tree_head
    from exchange.orders.models import Order, Payment
    from marketplace.accounts.services import api_token_for
    from marketplace.certification.models import Certificate, Job

    product = product_factory(provider, "Scale-out Census")
    versions = [version_factory(product, provider) for _ in range(VERSIONS)]
    buyers = [user_factory(f"load-buyer-{n}") for n in range(BUYERS)]
    provider_token = api_token_for(provider)
    buyer_tokens = [api_token_for(buyer) for buyer in buyers]

    stripe_port, web_port = free_port(), free_port()
    env = production_env(
        STRIPE_API_BASE=f"http://127.0.0.1:{stripe_port}",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        SYNTHEX_BIND=f"127.0.0.1:{web_port}",
        WEB_CONCURRENCY="2",
        GUNICORN_THREADS="4",
    )
    localstripe = processes(
        [PYTHON, "-m", "exchange.orders.localstripe_server", "--port", str(stripe_port)],
        env,
        tmp_path / "stripe.log",
    )
    web = processes(
        [str(REPO / ".venv/bin/gunicorn"), "-c", "deploy/gunicorn.conf.py", "marketplace.wsgi"],
        env,
        tmp_path / "web.log",
    )
    celery = [
        str(REPO / ".venv/bin/celery"),
        "-A",
        "marketplace",
        "worker",
        "--concurrency",
        "1",
        "--loglevel",
        "INFO",
    ]
    processes([*celery, "-Q", "default,certify", "-n", "a@%h"], env, tmp_path / "worker-a.log")
    processes([*celery, "-Q", "certify,fit,sample", "-n", "b@%h"], env, tmp_path / "worker-b.log")
    base = f"http://127.0.0.1:{web_port}"
    wait_http(f"{base}/healthz", web)
    wait_http(f"http://127.0.0.1:{stripe_port}/_config/data", localstripe)

    # Every submission three times at once, through both web workers.
    def submit(version: Any) -> int:
        url = f"{base}/api/v1/products/{product.slug}/versions/{version.number}/submit/"
        return httpx.post(
            url, headers={"Authorization": f"Token {provider_token}"}, json={}, timeout=30
        ).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(submit, versions * 3))
    assert statuses.count(200) + statuses.count(201) + statuses.count(202) >= VERSIONS
    _wait(lambda: Job.objects.filter(version__in=versions).count() == VERSIONS, 30, "jobs")
    # Redeliver every certification task twice more, straight to the broker (as a crashed worker's
    # acks_late message would be).
    sender = Celery(broker=env["CELERY_BROKER_URL"])
    for job in Job.objects.filter(version__in=versions):
        for _ in range(2):
            sender.send_task(
                "marketplace.certification.tasks.certify_version_task", args=[str(job.pk)], queue="certify"
            )
    for _ in range(5):
        sender.send_task("exchange.ledger.tasks.publish_tree_head_task", queue="default")
    _wait(
        lambda: (
            Job.objects.filter(version__in=versions, status__in=["succeeded", "failed"]).count() == VERSIONS
        ),
        240,
        "certification by the workers",
    )
    assert (
        list(Job.objects.filter(version__in=versions).values_list("status", flat=True))
        == ["succeeded"] * VERSIONS
    )
    assert sorted(Certificate.objects.values_list("version_id", flat=True)) == sorted(v.pk for v in versions)

    # Each buyer orders each version; each order's success webhook arrives four times at once (twice the
    # same event, twice as distinct events), with catalog searches in between.
    def order(pair: tuple[str, Any]) -> str:
        token, version = pair
        response = httpx.post(
            f"{base}/api/v1/orders/",
            headers={"Authorization": f"Token {token}"},
            json={"version": version.pk, "license": "standard"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    with ThreadPoolExecutor(max_workers=12) as pool:
        order_ids = list(pool.map(order, [(t, v) for t in buyer_tokens for v in versions]))
    orders = list(Order.objects.select_related("payment").filter(pk__in=order_ids))
    deliveries = [(o, f"evt_{o.pk}_{suffix}") for o in orders for suffix in ("a", "a", "b", "c")]

    def deliver(item: tuple[Any, str]) -> int:
        payload = _event(*item)
        httpx.get(f"{base}/api/v1/products/", params={"q": "census"}, timeout=30)
        return httpx.post(
            f"{base}/api/v1/stripe/webhook/", content=payload, headers=_signed(payload), timeout=30
        ).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(deliver, deliveries))
    assert set(codes) == {200}, codes
    publish_tree_head()
    assert TreeHead.objects.order_by("-size").values_list("size", flat=True)[0] == LogLeaf.objects.count()

    assert sorted(Order.objects.filter(pk__in=order_ids).values_list("status", flat=True)) == ["paid"] * len(
        order_ids
    )
    assert Payment.objects.filter(order_id__in=order_ids).count() == len(order_ids)
    assert Entitlement.objects.count() == len(order_ids)
    assert sorted(Entitlement.objects.values_list("source", flat=True)) == sorted(
        f"order:{i}" for i in order_ids
    )
    assert len(set(Order.objects.filter(pk__in=order_ids).values_list("entitlement_id", flat=True))) == len(
        order_ids
    )
    for order_id in order_ids:
        assert [entry.kind for entry in entries_for("order", order_id) if entry.kind == "sale"] == ["sale"]
    assert list(LogLeaf.objects.order_by("index").values_list("index", flat=True)) == list(
        range(LogLeaf.objects.count())
    )
    sizes = list(TreeHead.objects.order_by("id").values_list("size", flat=True))
    assert sizes == sorted(sizes)
    report = run_audit()
    assert report.ok, report.problems
    worker_logs = [(tmp_path / f"worker-{name}.log").read_text() for name in ("a", "b")]
    assert all("ready." in log for log in worker_logs)
