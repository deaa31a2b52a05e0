"""Stripe webhook events: verified, recorded once by event id, applied idempotently and in any order.

Each authentic event is inserted into :class:`WebhookEvent` and handled in the same transaction, so an
event is either recorded with its outcome or not at all (an unexpected error rolls back and Stripe retries).
A replayed event id is a no-op. Handlers only move state forward (pending → paid → refunded), so events
arriving out of order cannot undo each other. An event about an order that is not visible yet (its
creating transaction has not committed) is kept as ``deferred`` and applied once the order appears.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from exchange.ledger.services import LedgerError
from exchange.money import refund_split
from exchange.orders import payouts
from exchange.orders import stripe_gateway as gateway
from exchange.orders.ids import new_id
from exchange.orders.models import Order, Payment, Refund, WebhookEvent
from exchange.orders.services import (
    ORDER_METADATA_KEY,
    REFUND_METADATA_KEY,
    PaymentMismatch,
    apply_payment_succeeded,
    apply_refund_succeeded,
    find_order_for_intent,
    post_stripe_fee,
    record_payment_failure,
    stripe_fee_posted,
)

logger = logging.getLogger(__name__)

DEFERRED_EVENT_LIFETIME = timedelta(days=3)


@dataclass(frozen=True)
class Outcome:
    """What became of one event: ``status`` is a :class:`WebhookEvent.Status` value or ``"duplicate"``."""

    status: str
    detail: str = ""


def receive_event(payload: bytes, signature_header: str) -> tuple[str, Outcome]:
    """Verify, record and apply one webhook delivery; returns the event id and its outcome.

    Raises :class:`stripe_gateway.SignatureError` (nothing recorded) for a bad signature or a stale
    timestamp.
    """
    event = gateway.verify_webhook(payload, signature_header)
    event_id = str(event["id"])
    obj = (event.get("data") or {}).get("object") or {}
    try:
        with transaction.atomic():
            record = WebhookEvent.objects.create(
                stripe_event_id=event_id,
                type=str(event["type"]),
                object_id=str(obj.get("id") or ""),
                stripe_created_at=datetime.fromtimestamp(int(event["created"]), tz=UTC),
                payload=event,
                status=WebhookEvent.Status.PROCESSED,
            )
            outcome = _handle(record)
            _store_outcome(record, outcome)
    except IntegrityError:
        logger.info("stripe event %s received again; ignored", event_id)
        return event_id, Outcome("duplicate", "event already received")
    return event_id, outcome


def _store_outcome(record: WebhookEvent, outcome: Outcome) -> None:
    WebhookEvent.objects.filter(pk=record.pk).update(
        status=outcome.status, detail=outcome.detail[:300], processed_at=timezone.now()
    )


def _handle(record: WebhookEvent) -> Outcome:
    handler = _HANDLERS.get(record.type)
    if handler is None:
        logger.info("stripe event %s of type %s ignored: not handled", record.stripe_event_id, record.type)
        return Outcome(WebhookEvent.Status.IGNORED, f"type {record.type} is not handled")
    return handler(record.payload["data"]["object"])


def _intent_event(data: dict[str, Any], *, succeeded: bool) -> Outcome:
    intent = gateway.intent_from_event_object(data)
    order = find_order_for_intent(intent)
    if order is None:
        if intent.metadata.get(ORDER_METADATA_KEY):
            logger.info("payment intent %s names an order not visible yet; deferred", intent.id)
            return Outcome(
                WebhookEvent.Status.DEFERRED, f"order {intent.metadata[ORDER_METADATA_KEY]} not found yet"
            )
        logger.warning("stripe event for unknown payment intent %s rejected", intent.id)
        return Outcome(WebhookEvent.Status.REJECTED, f"unknown payment intent {intent.id}")
    if not succeeded:
        record_payment_failure(order, intent)
        return Outcome(WebhookEvent.Status.PROCESSED, f"order {order.id}: intent {intent.status}")
    try:
        applied = apply_payment_succeeded(order, intent)
    except PaymentMismatch as error:
        logger.error("stripe event refused for order %s: %s", order.id, error.message)
        return Outcome(WebhookEvent.Status.REJECTED, error.message)
    if applied:
        _retry_deferred_charges(intent.id)
    return Outcome(WebhookEvent.Status.PROCESSED, f"order {order.id} {'paid' if applied else 'already paid'}")


def _payment_succeeded(data: dict[str, Any]) -> Outcome:
    return _intent_event(data, succeeded=True)


def _payment_not_succeeded(data: dict[str, Any]) -> Outcome:
    return _intent_event(data, succeeded=False)


def _apply_stripe_refund(data: dict[str, Any]) -> Outcome:
    view = gateway.refund_from_event_object(data)
    if view.status not in ("succeeded", "pending"):
        return Outcome(WebhookEvent.Status.IGNORED, f"refund {view.id} is {view.status}")
    refund = Refund.objects.filter(stripe_refund_id=view.id).first()
    if refund is None and view.metadata.get(REFUND_METADATA_KEY):
        refund = Refund.objects.filter(pk=view.metadata[REFUND_METADATA_KEY]).first()
    if refund is not None:
        applied = apply_refund_succeeded(refund, view.id)
        return Outcome(
            WebhookEvent.Status.PROCESSED, f"refund {refund.id} {'applied' if applied else 'already applied'}"
        )
    payment = (
        Payment.objects.select_related("order")
        .filter(stripe_payment_intent_id=view.payment_intent_id)
        .first()
    )
    if payment is None:
        logger.warning(
            "stripe refund %s for unknown payment intent %s rejected", view.id, view.payment_intent_id
        )
        return Outcome(WebhookEvent.Status.REJECTED, f"unknown payment intent {view.payment_intent_id}")
    return _refund_made_at_stripe(payment.order, view)


def _refund_made_at_stripe(order: Order, view: gateway.RefundView) -> Outcome:
    """A refund made outside Synthex (dashboard): record it with the proportional split, then apply it."""
    if view.currency != order.currency or order.status != Order.Status.PAID:
        logger.error("stripe refund %s does not fit order %s", view.id, order.id)
        return Outcome(WebhookEvent.Status.REJECTED, f"refund {view.id} does not fit order {order.id}")
    remaining = order.amount_minor - order.refunded_minor
    if not 0 < view.amount_minor <= remaining:
        logger.error(
            "stripe refund %s of %s exceeds what order %s has left", view.id, view.amount_minor, order.id
        )
        return Outcome(WebhookEvent.Status.REJECTED, f"refund {view.id} exceeds the refundable amount")
    fee_part, share_part = refund_split(
        order.platform_fee_minor, order.provider_share_minor, order.refunded_minor, view.amount_minor
    )
    refund_id = new_id("rfd")
    refund = Refund.objects.create(
        id=refund_id,
        order=order,
        amount_minor=view.amount_minor,
        currency=order.currency,
        platform_fee_minor=fee_part,
        provider_share_minor=share_part,
        initiator=Refund.Initiator.STRIPE,
        idempotency_key=f"stripe:{view.id}",
    )
    apply_refund_succeeded(refund, view.id)
    return Outcome(WebhookEvent.Status.PROCESSED, f"refund {refund.id} recorded from Stripe")


def _charge_refunded(data: dict[str, Any]) -> Outcome:
    refunds = ((data.get("refunds") or {}).get("data")) or []
    details = [_apply_stripe_refund(item).detail for item in refunds]
    return Outcome(WebhookEvent.Status.PROCESSED, "; ".join(details) or "no refunds listed")


def _paid_order_of(charge: gateway.ChargeView) -> Order | Outcome:
    """The paid order whose payment a succeeded charge belongs to, or the outcome saying why its fee is not
    posted now: ignored (no intent, not succeeded), deferred (order not linked or not paid yet), rejected."""
    if not charge.payment_intent_id:
        return Outcome(WebhookEvent.Status.IGNORED, f"charge {charge.id} has no payment intent")
    if charge.status != "succeeded":
        return Outcome(WebhookEvent.Status.IGNORED, f"charge {charge.id} is {charge.status}")
    payment = (
        Payment.objects.select_related("order")
        .filter(stripe_payment_intent_id=charge.payment_intent_id)
        .first()
    )
    order = payment.order if payment is not None else None
    if order is None:
        order_id = charge.metadata.get(ORDER_METADATA_KEY, "")
        if order_id:
            logger.info("charge %s names order %s not linked yet; deferred", charge.id, order_id)
            return Outcome(WebhookEvent.Status.DEFERRED, f"order {order_id} not found yet")
        logger.warning(
            "stripe charge %s for unknown payment intent %s rejected", charge.id, charge.payment_intent_id
        )
        return Outcome(WebhookEvent.Status.REJECTED, f"unknown payment intent {charge.payment_intent_id}")
    if order.paid_at is None:
        logger.info("charge %s arrived before order %s is paid; deferred", charge.id, order.id)
        return Outcome(WebhookEvent.Status.DEFERRED, f"order {order.id} not paid yet")
    return order


def _charge_fee(data: dict[str, Any]) -> Outcome:
    """``charge.succeeded`` / ``charge.updated``: post the charge's Stripe fee once its balance transaction
    exists and its order is paid (deferred until then, like a payment event whose order is not visible)."""
    charge = gateway.charge_from_event_object(data)
    found = _paid_order_of(charge)
    if isinstance(found, Outcome):
        return found
    order = found
    if stripe_fee_posted(charge.id):
        return Outcome(WebhookEvent.Status.PROCESSED, f"fee of charge {charge.id} already posted")
    if not charge.balance_transaction_id:
        # localstripe never creates balance transactions; at Stripe a later charge.updated carries it.
        logger.info("charge %s has no balance transaction yet; no fee posted", charge.id)
        return Outcome(WebhookEvent.Status.IGNORED, f"charge {charge.id} has no balance transaction yet")
    try:
        balance = gateway.retrieve_balance_transaction(charge.balance_transaction_id)
    except gateway.GatewayUnavailable:
        # Unrecorded (the transaction rolls back), so Stripe's retry of this event tries again.
        raise
    except gateway.GatewayError as error:
        logger.error("fee of charge %s could not be read: %s", charge.id, error)
        return Outcome(WebhookEvent.Status.REJECTED, f"balance transaction of charge {charge.id}: {error}")
    if balance.currency != order.currency:
        logger.info(
            "fee of charge %s is in %s, order %s in %s: posted in the fee's currency",
            charge.id,
            balance.currency,
            order.id,
            order.currency,
        )
    try:
        with transaction.atomic():
            posted = post_stripe_fee(order, charge, balance)
    except LedgerError as error:
        logger.error("fee of charge %s refused by the ledger: %s", charge.id, error.message)
        return Outcome(WebhookEvent.Status.REJECTED, f"fee of charge {charge.id}: {error.message}")
    done = f"{balance.fee_minor} {balance.currency} posted" if posted else "nothing to post"
    return Outcome(WebhookEvent.Status.PROCESSED, f"fee of charge {charge.id}: {done}")


def _retry_deferred_charges(payment_intent_id: str) -> None:
    """Apply charge events deferred until this intent's order was paid."""
    deferred = WebhookEvent.objects.filter(
        status=WebhookEvent.Status.DEFERRED,
        type__in=_CHARGE_FEE_TYPES,
        payload__data__object__payment_intent=payment_intent_id,
    ).values_list("object_id", flat=True)
    for charge_id in sorted(set(deferred)):
        retry_deferred_events(object_id=charge_id)


def _transfer_reversed(data: dict[str, Any]) -> Outcome:
    detail = payouts.apply_transfer_reversed(str(data.get("id") or ""), int(data.get("amount_reversed") or 0))
    status = WebhookEvent.Status.PROCESSED if detail.startswith("payout") else WebhookEvent.Status.REJECTED
    return Outcome(status, detail)


_HANDLERS = {
    "payment_intent.succeeded": _payment_succeeded,
    "payment_intent.payment_failed": _payment_not_succeeded,
    "payment_intent.canceled": _payment_not_succeeded,
    "payment_intent.requires_action": _payment_not_succeeded,
    "refund.created": _apply_stripe_refund,
    "refund.updated": _apply_stripe_refund,
    "charge.refunded": _charge_refunded,
    "transfer.reversed": _transfer_reversed,
    "charge.succeeded": _charge_fee,
    "charge.updated": _charge_fee,
}
_CHARGE_FEE_TYPES = ("charge.succeeded", "charge.updated")


def retry_deferred_events(*, object_id: str = "") -> int:
    """Apply deferred events again (those about ``object_id`` only, when given); returns how many resolved.

    Deferred events older than :data:`DEFERRED_EVENT_LIFETIME` are rejected with a log line.
    """
    pending = WebhookEvent.objects.filter(status=WebhookEvent.Status.DEFERRED)
    if object_id:
        pending = pending.filter(object_id=object_id)
    resolved = 0
    for record in pending.order_by("stripe_created_at"):
        with transaction.atomic():
            outcome = _handle(record)
            if (
                outcome.status == WebhookEvent.Status.DEFERRED
                and timezone.now() - record.received_at > DEFERRED_EVENT_LIFETIME
            ):
                logger.error("stripe event %s stayed deferred too long; rejected", record.stripe_event_id)
                outcome = Outcome(WebhookEvent.Status.REJECTED, "order never appeared")
            WebhookEvent.objects.filter(pk=record.pk).update(attempts=record.attempts + 1)
            _store_outcome(record, outcome)
        resolved += outcome.status != WebhookEvent.Status.DEFERRED
    return resolved
