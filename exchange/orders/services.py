"""Buying: orders, their payments, refunds; every money movement is posted to the ledger with the row.

Guarantees:
- Only a certified version whose latest certificate passed privacy and is not revoked is sold, by a listed
  product, to a buyer outside the selling organization, at the license's current price (frozen on the
  order in integer minor units, with the platform fee rate and split of that moment).
- One open order per buyer, version and license: a double submit or a second tab gets the same order, hence
  the same PaymentIntent and at most one charge.
- The PaymentIntent's idempotency key is committed before Stripe is called; a retry after Stripe was
  unreachable reuses it.
- A succeeded payment is applied once, whichever path sees it first (the confirm call, the webhook, the
  repair task): order paid, entitlement granted, sale posted (Stripe clearing debit = fee revenue credit +
  provider payable credit), all in one transaction.
- Stripe's processing fee, once known from the charge's balance transaction, is posted once per charge
  (Stripe fees debit = Stripe clearing credit, in the fee's currency); the platform bears it.
- Refunds are reversed in the ledger in proportion to fee and provider share, cumulatively, so a series of
  partial refunds reverses exactly the original split; a full refund revokes the entitlement.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from exchange.delivery.models import Entitlement
from exchange.delivery.services import grant_entitlement, reinstate_entitlement, revoke_entitlement
from exchange.ledger.models import LedgerEvent
from exchange.ledger.services import Posting, account_for, entries_for, post_transaction
from exchange.money import refund_split, split
from exchange.orders import stripe_gateway as gateway
from exchange.orders.ids import new_id
from exchange.orders.models import Order, Payment, Refund
from exchange.orders.payouts import payable_balances
from marketplace.accounts.models import User
from marketplace.catalog.models import ProductVersion, VersionStatus
from marketplace.certification.selectors import latest_certificate
from marketplace.core.errors import JsonableError

logger = logging.getLogger(__name__)

ORDER_METADATA_KEY = "synthex_order"
REFUND_METADATA_KEY = "synthex_refund"


class OrderError(JsonableError):
    """A refused buying operation: ``code`` is a short slug, ``message`` a sentence for the buyer."""


@dataclass(frozen=True)
class OrderResult:
    """An order as returned to the caller: ``created`` is False when an open order was reused."""

    order: Order
    created: bool


def _check_sellable(version: ProductVersion, buyer: User) -> None:
    product = version.product
    if not product.is_listed:
        raise OrderError("unlisted", "This product is not listed.", 409)
    if version.status != VersionStatus.CERTIFIED:
        raise OrderError("not_certified", "Only certified versions are sold.", 409)
    latest = latest_certificate(version)
    if latest is not None and hasattr(latest, "revocation"):
        raise OrderError("certificate_revoked", "This version's certificate was revoked.", 409)
    if latest is None or not latest.privacy_passed:
        raise OrderError("not_certified", "Only versions that passed the privacy test are sold.", 409)
    if buyer.is_member_of(product.organization):
        raise OrderError("own_product", "You cannot buy your own organization's product.", 403)


def create_order(
    *,
    buyer: User,
    version_id: int,
    license_code: str,
    expected_price_minor: int | None = None,
    expected_currency: str | None = None,
) -> OrderResult:
    """Create (or reuse) the buyer's open order for a version and license, and its PaymentIntent.

    ``expected_price_minor``/``expected_currency`` are the price the buyer saw; when the license's price
    differs now, nothing is created and :class:`OrderError` ``price_changed`` (409) carries the new price.
    A free license completes the order at once (entitlement and ledger event, no Stripe). Raises
    ``payment_unavailable`` (503) when Stripe cannot be reached: the order and its idempotency key stay,
    and calling again retries with the same key.
    """
    version = ProductVersion.objects.select_related("product__organization").filter(pk=version_id).first()
    if version is None:
        raise OrderError("not_found", "No such version.", 404)
    _check_sellable(version, buyer)
    license_ = version.product.licenses.filter(code=license_code).first()
    if license_ is None:
        raise OrderError(
            "unknown_license", f"This product is not sold under the {license_code!r} license.", 400
        )
    price = {"price_minor": license_.price_minor, "currency": license_.currency}
    if (expected_price_minor is not None and expected_price_minor != license_.price_minor) or (
        expected_currency and expected_currency != license_.currency
    ):
        raise OrderError("price_changed", "The price changed since you saw it; please review it.", 409, price)
    if Entitlement.objects.filter(
        buyer=buyer, version=version, license_code=license_code, status=Entitlement.Status.ACTIVE
    ).exists():
        raise OrderError("already_owned", "You already own this version under this license.", 409)

    order, created = _open_order(buyer, version, license_code, license_.price_minor, license_.currency)
    if order.is_free:
        complete_free_order(order)
    else:
        ensure_payment_intent(order)
    order.refresh_from_db()
    return OrderResult(order=order, created=created)


def _open_order(
    buyer: User, version: ProductVersion, license_code: str, amount_minor: int, currency: str
) -> tuple[Order, bool]:
    open_filter = {
        "buyer": buyer,
        "version": version,
        "license_code": license_code,
        "status": Order.Status.PENDING,
    }
    existing = Order.objects.filter(**open_filter).first()
    if existing is not None:
        if existing.amount_minor == amount_minor and existing.currency == currency:
            return existing, False
        cancel_order(existing, reason="price changed")
    rate = settings.SYNTHEX_PLATFORM_FEE_RATE
    fee_minor, share_minor = split(amount_minor, rate)
    order_id = new_id("ord")
    try:
        with transaction.atomic():
            order = Order.objects.create(
                id=order_id,
                buyer=buyer,
                version=version,
                product=version.product,
                seller=version.product.organization,
                license_code=license_code,
                amount_minor=amount_minor,
                currency=currency,
                fee_rate=rate,
                platform_fee_minor=fee_minor,
                provider_share_minor=share_minor,
            )
            if amount_minor > 0:
                Payment.objects.create(
                    order=order,
                    idempotency_key=f"pi:{order_id}",
                    amount_minor=amount_minor,
                    currency=currency,
                )
    except IntegrityError:
        # Another request (second tab, double click) opened the same order first: use that one.
        return Order.objects.get(**open_filter), False
    return order, True


def ensure_payment_intent(order: Order) -> Payment:
    """Give the order its PaymentIntent if it has none yet; idempotent (the key was saved beforehand)."""
    payment = Payment.objects.get(order=order)
    if payment.stripe_payment_intent_id:
        return payment
    try:
        intent = gateway.create_payment_intent(
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            idempotency_key=payment.idempotency_key,
            metadata={ORDER_METADATA_KEY: order.id},
        )
    except gateway.GatewayUnavailable as error:
        logger.warning("stripe unreachable creating the intent of %s: %s", order.id, error)
        raise OrderError(
            "payment_unavailable", "The payment service is unreachable; please try again.", 503
        ) from error
    except gateway.GatewayError as error:
        logger.error("stripe refused the intent of %s: %s", order.id, error)
        raise OrderError("payment_error", str(error), 502) from error
    if intent.amount_minor != payment.amount_minor or intent.currency != payment.currency:
        raise OrderError("payment_error", "Stripe returned an intent for another amount.", 502)
    Payment.objects.filter(pk=payment.pk, stripe_payment_intent_id__isnull=True).update(
        stripe_payment_intent_id=intent.id, client_secret=intent.client_secret, stripe_status=intent.status
    )
    payment.refresh_from_db()
    from exchange.orders.webhooks import retry_deferred_events

    retry_deferred_events(object_id=payment.stripe_payment_intent_id or "")
    return payment


def complete_free_order(order: Order) -> Order:
    """Complete a free order: paid at once, entitlement granted (a ledger event), no Stripe, no journal."""
    with transaction.atomic():
        changed = Order.objects.filter(pk=order.pk, status=Order.Status.PENDING, amount_minor=0).update(
            status=Order.Status.PAID, paid_at=timezone.now()
        )
        if changed:
            _grant(order)
    order.refresh_from_db()
    return order


def _grant(order: Order) -> Entitlement:
    entitlement = grant_entitlement(
        buyer=order.buyer, version=order.version, license_code=order.license_code, source=f"order:{order.id}"
    )
    Order.objects.filter(pk=order.pk).update(entitlement=entitlement)
    return entitlement


def find_order_for_intent(intent: gateway.IntentView) -> Order | None:
    """The order an intent pays: by the stored intent id, else by the order id in the intent's metadata."""
    payment = Payment.objects.select_related("order").filter(stripe_payment_intent_id=intent.id).first()
    if payment is not None:
        return payment.order
    order_id = intent.metadata.get(ORDER_METADATA_KEY, "")
    order = Order.objects.filter(pk=order_id).first() if order_id else None
    if order is not None:
        # The intent was created but its id not yet saved (the creating request is still running or died).
        Payment.objects.filter(order=order, stripe_payment_intent_id__isnull=True).update(
            stripe_payment_intent_id=intent.id, client_secret=intent.client_secret
        )
    return order


class PaymentMismatch(OrderError):
    """A payment event whose amount or currency differs from the order's frozen price."""


def apply_payment_succeeded(order: Order, intent: gateway.IntentView) -> bool:
    """Apply a captured payment to its order exactly once; True when this call applied it.

    Refuses (``PaymentMismatch``, nothing changed) when the intent's amount or currency differs from the
    order's. A canceled order is still fulfilled: captured money always ends in an entitlement or a refund.
    """
    if intent.amount_minor != order.amount_minor or intent.currency != order.currency:
        raise PaymentMismatch(
            "amount_mismatch",
            f"intent {intent.id} is {intent.amount_minor} {intent.currency}, order {order.id} is "
            f"{order.amount_minor} {order.currency}",
            409,
        )
    now = timezone.now()
    with transaction.atomic():
        changed = Order.objects.filter(
            pk=order.pk, status__in=[Order.Status.PENDING, Order.Status.CANCELED], paid_at__isnull=True
        ).update(status=Order.Status.PAID, paid_at=now, canceled_at=None)
        Payment.objects.filter(order=order).update(stripe_status="succeeded", captured_at=now, last_error="")
        if not changed:
            return False
        order.refresh_from_db()
        _grant(order)
        _post_sale(order, intent.id)
    return True


def _post_sale(order: Order, payment_intent_id: str) -> None:
    currency = order.currency
    postings = [Posting(account_for("stripe_clearing", currency), order.amount_minor)]
    if order.platform_fee_minor:
        postings.append(Posting(account_for("platform_fee_revenue", currency), -order.platform_fee_minor))
    if order.provider_share_minor:
        postings.append(
            Posting(account_for("provider_payable", currency, order.seller), -order.provider_share_minor)
        )
    post_transaction(
        idempotency_key=f"sale:{order.id}",
        kind="sale",
        postings=postings,
        refs={"order": order.id, "payment_intent": payment_intent_id},
        memo=f"sale of {order.license_code} license",
    )


STRIPE_FEE_KIND = "stripe_fee"


def stripe_fee_key(charge_id: str) -> str:
    """The ledger idempotency key of the fee of one Stripe charge."""
    return f"stripe_fee:{charge_id}"


def stripe_fee_posted(charge_id: str) -> bool:
    """True when the fee of this charge is already in the ledger."""
    return any(
        entry.entry_type == "transaction" and entry.kind == STRIPE_FEE_KIND
        for entry in entries_for("stripe_charge", charge_id)
    )


def post_stripe_fee(
    order: Order, charge: gateway.ChargeView, balance: gateway.BalanceTransactionView
) -> bool:
    """Post Stripe's processing fee of one charge of a paid order, once per charge; True when this call did.

    Ledger ``stripe_fee`` (key ``stripe_fee:<charge id>``): Dr ``stripe_fees`` / Cr ``stripe_clearing``,
    ``balance.fee_minor`` minor units of ``balance.currency`` (the settlement currency, which can differ
    from the order's). The platform bears the fee: the provider's share is untouched. A zero fee posts
    nothing, and so does a charge whose fee is already posted. The payment's ``stripe_fee_minor`` is set
    when the fee is in the payment's currency. Raises :class:`~exchange.ledger.services.LedgerError`
    (nothing posted) for a currency the ledger refuses.
    """
    posted = balance.fee_minor > 0 and not stripe_fee_posted(charge.id)
    if posted:
        _post_stripe_fee(order, charge, balance)
    if balance.currency == order.currency:
        Payment.objects.filter(order=order).update(stripe_fee_minor=balance.fee_minor)
    return posted


def _post_stripe_fee(
    order: Order, charge: gateway.ChargeView, balance: gateway.BalanceTransactionView
) -> None:
    post_transaction(
        idempotency_key=stripe_fee_key(charge.id),
        kind=STRIPE_FEE_KIND,
        postings=[
            Posting(account_for("stripe_fees", balance.currency), balance.fee_minor),
            Posting(account_for("stripe_clearing", balance.currency), -balance.fee_minor),
        ],
        refs={
            "order": order.id,
            "payment_intent": charge.payment_intent_id,
            "stripe_charge": charge.id,
            "balance_transaction": balance.id,
        },
        memo="Stripe processing fee",
    )


def record_payment_failure(order: Order, intent: gateway.IntentView) -> None:
    """Note a failed or abandoned attempt of the order's current intent; never downgrades a payment that
    already succeeded, and ignores news of an intent a retry replaced (:func:`replace_declined_intent`)."""
    Payment.objects.filter(order=order, stripe_payment_intent_id=intent.id).exclude(
        stripe_status="succeeded"
    ).update(stripe_status=intent.status, last_error=intent.last_error[:300])


def replace_declined_intent(order: Order, payment: Payment) -> Payment:
    """Give a pending order whose card was declined a fresh PaymentIntent, so the buyer can pay with another
    card (localstripe cannot confirm an intent again after a decline; Stripe can, and a fresh intent is
    equally right there). The new idempotency key is saved before the Stripe call; the old intent is
    canceled afterwards (best effort: a declined intent holds no money). Raises ``OrderError`` when Stripe
    cannot be reached (the order stays pending with its old intent: trying again retries)."""
    old_intent = payment.stripe_payment_intent_id
    key = f"pi:{order.id}:retry:{secrets.token_hex(6)}"
    Payment.objects.filter(pk=payment.pk, stripe_payment_intent_id=old_intent).update(idempotency_key=key)
    try:
        intent = gateway.create_payment_intent(
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            idempotency_key=key,
            metadata={ORDER_METADATA_KEY: order.id},
        )
    except gateway.GatewayUnavailable as error:
        raise OrderError(
            "payment_unavailable", "The payment service is unreachable; please try again.", 503
        ) from error
    except gateway.GatewayError as error:
        raise OrderError("payment_error", str(error), 502) from error
    Payment.objects.filter(pk=payment.pk, stripe_payment_intent_id=old_intent).update(
        stripe_payment_intent_id=intent.id,
        client_secret=intent.client_secret,
        stripe_status=intent.status,
        last_error="",
    )
    if old_intent:
        try:
            gateway.cancel_payment_intent(old_intent)
        except gateway.GatewayError as error:
            logger.warning("could not cancel the declined intent %s of %s: %s", old_intent, order.id, error)
    payment.refresh_from_db()
    return payment


def confirm_locally(order: Order, payment_method: str) -> gateway.IntentView:
    """Local mode: confirm the order's intent with a test payment method, as Stripe.js would.

    A success is applied at once (the webhook that follows finds it done). Raises ``card_declined`` (402)
    for a declined card; the order stays pending, and the next attempt (another card) is made on a fresh
    intent. Returns the intent in ``requires_action`` when 3-D Secure is required.
    """
    if not gateway.is_local_mode():
        raise OrderError("not_local_mode", "Payments are confirmed in the browser with Stripe.js.", 400)
    if order.status != Order.Status.PENDING:
        raise OrderError("not_payable", f"This order is {order.status}.", 409)
    payment = ensure_payment_intent(order)
    if payment.last_error and payment.stripe_status == "requires_payment_method":
        payment = replace_declined_intent(order, payment)  # a retry after a decline: a fresh intent
    intent_id = payment.stripe_payment_intent_id or ""
    try:
        intent = gateway.confirm_locally(intent_id, payment_method)
    except gateway.PaymentDeclined as error:
        # The order stays payable: the buyer may try another card (on a fresh intent, see above).
        Payment.objects.filter(pk=payment.pk, stripe_payment_intent_id=intent_id).exclude(
            stripe_status="succeeded"
        ).update(stripe_status="requires_payment_method", last_error=str(error)[:300])
        raise OrderError("card_declined", str(error), 402, {"decline_code": error.code}) from error
    except gateway.GatewayUnavailable as error:
        raise OrderError("payment_unavailable", "The payment service is unreachable.", 503) from error
    except gateway.GatewayError as error:
        raise OrderError("payment_error", str(error), 400) from error
    return _apply_intent_state(order, intent)


def authenticate_locally(order: Order, *, success: bool) -> gateway.IntentView:
    """Local mode: pass or fail the simulated 3-D Secure challenge of the order's intent."""
    payment = Payment.objects.get(order=order)
    if not payment.stripe_payment_intent_id or payment.stripe_status != "requires_action":
        raise OrderError("no_action_required", "This payment is not waiting for authentication.", 409)
    try:
        intent = gateway.authenticate_locally(
            payment.stripe_payment_intent_id, payment.client_secret, success=success
        )
    except gateway.PaymentDeclined as error:
        raise OrderError("card_declined", str(error), 402) from error
    except gateway.GatewayError as error:
        raise OrderError("payment_error", str(error), 400) from error
    return _apply_intent_state(order, intent)


def _apply_intent_state(order: Order, intent: gateway.IntentView) -> gateway.IntentView:
    if intent.status == "succeeded":
        apply_payment_succeeded(order, intent)
    else:
        record_payment_failure(order, intent)
    return intent


def sync_order_payment(order: Order) -> bool:
    """Ask Stripe for the state of a pending order's intent and apply a success; True when applied."""
    payment = Payment.objects.filter(order=order).first()
    if payment is None or not payment.stripe_payment_intent_id:
        return False
    intent = gateway.retrieve_payment_intent(payment.stripe_payment_intent_id)
    if intent.status == "succeeded":
        return apply_payment_succeeded(order, intent)
    record_payment_failure(order, intent)
    return False


def cancel_order(order: Order, *, reason: str) -> Order:
    """Cancel a pending order and its intent (a Stripe failure leaves the intent to expire on its own)."""
    changed = Order.objects.filter(pk=order.pk, status=Order.Status.PENDING).update(
        status=Order.Status.CANCELED, canceled_at=timezone.now()
    )
    payment = Payment.objects.filter(order=order).first()
    if changed and payment is not None and payment.stripe_payment_intent_id:
        try:
            intent = gateway.cancel_payment_intent(payment.stripe_payment_intent_id)
            Payment.objects.filter(pk=payment.pk).exclude(stripe_status="succeeded").update(
                stripe_status=intent.status
            )
        except gateway.GatewayError as error:
            logger.warning("could not cancel intent of %s (%s): %s", order.id, reason, error)
    order.refresh_from_db()
    return order


# Refunds ---------------------------------------------------------------------------------------------


def refund_order(
    order: Order,
    *,
    amount_minor: int | None,
    initiator: str,
    requested_by: User | None,
    reason: str = "",
    policy_for: User | None = None,
) -> Refund:
    """Refund ``amount_minor`` (None: all that is left) of a paid order through Stripe, then the ledger.

    Raises :class:`OrderError` (nothing changed) for an unpaid or free order or an amount outside
    1..refundable, and, with ``policy_for`` (a buyer's own request), when the buyer refund policy refuses
    it (:func:`buyer_refund_refusal`, checked under the locks). When Stripe is unreachable the refund stays
    ``pending`` with its idempotency key and the repair task retries it.

    A refund that empties the order revokes its entitlement *before* Stripe is called, in the transaction
    that holds the order's and the entitlement's row locks (the ones a download takes to record itself):
    a download racing the refund is either recorded first (and the policy then refuses a buyer's refund)
    or refused as revoked. Stripe refusing the refund reinstates the entitlement.
    """
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        entitlement = (
            Entitlement.objects.select_for_update().get(pk=locked.entitlement_id)
            if locked.entitlement_id
            else None
        )
        if policy_for is not None:
            refusal = buyer_refund_refusal(locked, policy_for)
            if refusal:
                raise OrderError(
                    "refund_not_allowed", refusal, 403 if locked.buyer_id != policy_for.pk else 409
                )
        if locked.status != Order.Status.PAID:
            raise OrderError("not_refundable", f"This order is {locked.status}.", 409)
        if locked.is_free:
            raise OrderError("not_refundable", "A free order has nothing to refund.", 409)
        in_flight = (
            Refund.objects.filter(order=locked, status=Refund.Status.PENDING).aggregate(
                total=Sum("amount_minor")
            )["total"]
            or 0
        )
        already = locked.refunded_minor + in_flight
        remaining = locked.amount_minor - already
        amount = remaining if amount_minor is None else amount_minor
        if not 0 < amount <= remaining:
            raise OrderError(
                "invalid_amount",
                f"A refund is between 1 and {remaining} minor units.",
                400,
                {"refundable_minor": remaining},
            )
        fee_part, share_part = refund_split(
            locked.platform_fee_minor, locked.provider_share_minor, already, amount
        )
        refund_id = new_id("rfd")
        refund = Refund.objects.create(
            id=refund_id,
            order=locked,
            amount_minor=amount,
            currency=locked.currency,
            platform_fee_minor=fee_part,
            provider_share_minor=share_part,
            initiator=initiator,
            requested_by=requested_by,
            reason=reason[:300],
            idempotency_key=f"refund:{refund_id}",
        )
        if entitlement is not None and amount == remaining:
            revoke_entitlement(
                entitlement,
                reason=f"refund {refund_id} requested",
                idempotency_key=_refund_revocation_key(refund),
            )
    send_refund(refund)
    refund.refresh_from_db()
    return refund


def _refund_revocation_key(refund: Refund) -> str:
    return f"entitlement.revoked:refund:{refund.id}"


def _refund_failed(refund: Refund, **fields: Any) -> None:
    """Mark a pending refund failed; the entitlement its request revoked (if any) is given back."""
    with transaction.atomic():
        changed = Refund.objects.filter(pk=refund.pk, status=Refund.Status.PENDING).update(
            status=Refund.Status.FAILED, **fields
        )
        order = Order.objects.select_related("entitlement").get(pk=refund.order_id)
        revoked_by_it = LedgerEvent.objects.filter(idempotency_key=_refund_revocation_key(refund)).exists()
        if changed and revoked_by_it and order.entitlement is not None and order.status == Order.Status.PAID:
            reinstate_entitlement(order.entitlement, idempotency_key=f"entitlement.reinstated:{refund.id}")


def send_refund(refund: Refund) -> Refund:
    """Send a pending refund to Stripe with its saved key and apply the result; safe to call again."""
    if refund.status != Refund.Status.PENDING:
        return refund
    payment = Payment.objects.get(order_id=refund.order_id)
    try:
        stripe_refund = gateway.create_refund(
            payment_intent_id=payment.stripe_payment_intent_id or "",
            amount_minor=refund.amount_minor,
            idempotency_key=refund.idempotency_key,
            metadata={REFUND_METADATA_KEY: refund.id, ORDER_METADATA_KEY: refund.order_id},
        )
    except gateway.GatewayUnavailable as error:
        logger.warning("stripe unreachable for refund %s; it stays pending: %s", refund.id, error)
        return refund
    except gateway.GatewayError as error:
        _refund_failed(refund, error=str(error)[:300])
        logger.error("stripe refused refund %s: %s", refund.id, error)
        raise OrderError("refund_failed", f"Stripe refused the refund: {error}", 502) from error
    if stripe_refund.status in ("succeeded", "pending"):
        # "pending" at Stripe means accepted and on its way; the money has left the platform balance.
        apply_refund_succeeded(refund, stripe_refund.id)
    else:
        _refund_failed(
            refund, stripe_refund_id=stripe_refund.id, error=f"stripe status {stripe_refund.status}"
        )
    refund.refresh_from_db()
    return refund


def apply_refund_succeeded(refund: Refund, stripe_refund_id: str) -> bool:
    """Apply a refund Stripe accepted, exactly once: ledger reversal, order totals, revocation when full."""
    with transaction.atomic():
        changed = Refund.objects.filter(pk=refund.pk, status=Refund.Status.PENDING).update(
            status=Refund.Status.SUCCEEDED, stripe_refund_id=stripe_refund_id, succeeded_at=timezone.now()
        )
        if not changed:
            return False
        # Locks in the order refund_order and a download take them (order, entitlement, then the ledger's
        # log lock), so a refund arriving from Stripe, a new refund and a download never wait in a cycle.
        Order.objects.select_for_update().filter(pk=refund.order_id).first()
        Entitlement.objects.select_for_update().filter(order__pk=refund.order_id).first()
        Order.objects.filter(pk=refund.order_id).update(
            refunded_minor=F("refunded_minor") + refund.amount_minor
        )
        order = Order.objects.get(pk=refund.order_id)
        currency = order.currency
        postings = [Posting(account_for("stripe_clearing", currency), -refund.amount_minor)]
        if refund.platform_fee_minor:
            postings.append(Posting(account_for("platform_fee_revenue", currency), refund.platform_fee_minor))
        # The provider's part comes out of what the platform still owes them; what was already paid out
        # is borne by the platform (booked as a refund expense) rather than driving the payable negative.
        # (The balance already counts this refund as succeeded, hence the share added back.)
        owed = refund.provider_share_minor + next(
            (b.amount_minor for b in payable_balances(order.seller) if b.currency == currency), 0
        )
        covered = max(0, refund.provider_share_minor - max(owed, 0))
        if covered:
            Refund.objects.filter(pk=refund.pk).update(platform_covered_minor=covered)
            postings.append(Posting(account_for("refunds", currency), covered))
        if refund.provider_share_minor - covered:
            postings.append(
                Posting(
                    account_for("provider_payable", currency, order.seller),
                    refund.provider_share_minor - covered,
                )
            )
        payment = Payment.objects.get(order=order)
        post_transaction(
            idempotency_key=f"refund:{refund.id}",
            kind="refund",
            postings=postings,
            refs={
                "order": order.id,
                "refund": refund.id,
                "stripe_refund": stripe_refund_id,
                "payment_intent": payment.stripe_payment_intent_id or "",
            },
            memo=f"refund ({refund.initiator})",
        )
        if order.refunded_minor == order.amount_minor:
            Order.objects.filter(pk=order.pk).update(status=Order.Status.REFUNDED)
            if order.entitlement is not None:
                revoke_entitlement(order.entitlement, reason="order refunded in full")
    return True


def buyer_refund_refusal(order: Order, buyer: User) -> str:
    """Why the buyer may not refund this order under the policy, or "" when they may.

    Policy: the buyer's own paid, non-free order, within ``SYNTHEX_REFUND_WINDOW_DAYS`` of payment, with
    nothing refunded yet and no download recorded in the ledger for its entitlement.
    """
    if order.buyer_id != buyer.pk:
        return "This is not your order."
    if order.status != Order.Status.PAID or order.is_free:
        return "Only paid orders can be refunded."
    if (
        order.refunded_minor
        or Refund.objects.filter(order=order).exclude(status=Refund.Status.FAILED).exists()
    ):
        return "A refund was already made for this order."
    window = timedelta(days=settings.SYNTHEX_REFUND_WINDOW_DAYS)
    if order.paid_at is None or timezone.now() - order.paid_at > window:
        return f"Refunds are possible within {settings.SYNTHEX_REFUND_WINDOW_DAYS} days of purchase."
    if order.entitlement_id and any(
        getattr(entry, "kind", "") == "download" for entry in entries_for("entitlement", order.entitlement_id)
    ):
        return "Refunds are possible only before the first download."
    return ""


def request_buyer_refund(order: Order, buyer: User, *, reason: str = "") -> Refund:
    """Refund the whole order to its buyer when the refund policy allows it (see :func:`buyer_refund_refusal`)."""
    refusal = buyer_refund_refusal(order, buyer)
    if refusal:
        raise OrderError("refund_not_allowed", refusal, 403 if order.buyer_id != buyer.pk else 409)
    # Checked again under the order's and entitlement's locks: a download may have started since.
    return refund_order(
        order,
        amount_minor=None,
        initiator=Refund.Initiator.BUYER,
        requested_by=buyer,
        reason=reason,
        policy_for=buyer,
    )
