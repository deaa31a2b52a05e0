"""The one module that imports ``stripe``: PaymentIntents, refunds, Connect transfers, webhook verification.

Everything it returns is a frozen dataclass of plain values (amounts in integer minor units, currencies in
upper case), so callers never hold Stripe objects. Errors come out as three kinds:
:class:`GatewayUnavailable` (network, 5xx, rate limit: retry later with the same idempotency key),
:class:`PaymentDeclined` (the card or its authentication failed) and :class:`GatewayError` (anything else).

Local mode (no ``STRIPE_SECRET_KEY``): the client talks to localstripe at ``STRIPE_API_BASE``, and
:func:`confirm_locally` stands in for Stripe.js by confirming with a test payment method server-side.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    import stripe
else:

    class _LazyStripe:
        """The ``stripe`` package, imported on first use.

        It pulls in requests, httpx and rich (about 27 MB per process); web workers that only serve pages,
        uploads and downloads never touch it, and a download worker has 100 MB in all (issue #6).
        """

        def __getattr__(self, name: str) -> Any:
            import stripe

            return getattr(stripe, name)

    stripe = _LazyStripe()

LOCAL_API_KEY = "sk_test_synthex_local"

# Stripe's test payment method names that localstripe does not know, mapped to the test card numbers
# that make it behave the same way (numbers from localstripe's resources.PaymentMethod).
_LOCAL_TEST_CARDS = {
    "pm_card_threeDSecure2Required": "4000002760003184",
    "pm_card_authenticationRequired": "4000002500003155",
}


class GatewayError(Exception):
    """Stripe refused the request, or answered something this module cannot use."""


class GatewayUnavailable(GatewayError):
    """Stripe could not be reached or was overloaded; the same call may be retried with the same key."""


class PaymentDeclined(GatewayError):
    """The card was declined or its authentication failed; ``code`` is Stripe's decline code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class SignatureError(Exception):
    """A webhook payload whose signature or timestamp does not verify."""


@dataclass(frozen=True)
class IntentView:
    """The parts of a PaymentIntent this platform uses."""

    id: str
    status: str
    amount_minor: int
    currency: str
    client_secret: str
    metadata: Mapping[str, str]
    last_error: str
    requires_action: bool


@dataclass(frozen=True)
class RefundView:
    id: str
    status: str
    amount_minor: int
    currency: str
    payment_intent_id: str
    metadata: Mapping[str, str]


@dataclass(frozen=True)
class TransferView:
    id: str
    amount_minor: int
    currency: str
    destination: str
    metadata: Mapping[str, str]


@dataclass(frozen=True)
class ChargeView:
    """The parts of a Charge the fee posting uses; ``balance_transaction_id`` is "" while Stripe has none."""

    id: str
    status: str
    payment_intent_id: str
    amount_minor: int
    currency: str
    balance_transaction_id: str
    metadata: Mapping[str, str]


@dataclass(frozen=True)
class BalanceTransactionView:
    """A balance transaction's processing fee: ``fee_minor`` in minor units of ``currency`` (the settlement
    currency, which may differ from the charge's)."""

    id: str
    fee_minor: int
    currency: str


def is_local_mode() -> bool:
    """True when no Stripe secret key is configured: payments go to localstripe."""
    return not settings.STRIPE_SECRET_KEY


def _client() -> stripe.StripeClient:
    if is_local_mode():
        return stripe.StripeClient(
            LOCAL_API_KEY, base_addresses={"api": settings.STRIPE_API_BASE}, max_network_retries=0
        )
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY, max_network_retries=settings.STRIPE_NETWORK_RETRIES
    )


def _translate(error: stripe.StripeError) -> GatewayError:
    if isinstance(error, stripe.CardError):
        return PaymentDeclined(error.user_message or str(error), str(error.code or "card_declined"))
    if isinstance(error, stripe.APIConnectionError | stripe.RateLimitError):
        return GatewayUnavailable(str(error))
    if isinstance(error, stripe.APIError) or (error.http_status or 0) >= 500:
        return GatewayUnavailable(str(error))
    return GatewayError(error.user_message or str(error))


def _plain(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _intent_view(obj: Any) -> IntentView:
    data = _plain(obj)
    error = data.get("last_payment_error") or {}
    return IntentView(
        id=data["id"],
        status=data["status"],
        amount_minor=int(data["amount"]),
        currency=str(data["currency"]).upper(),
        client_secret=data.get("client_secret") or "",
        metadata=dict(data.get("metadata") or {}),
        last_error=str(error.get("message") or ""),
        requires_action=data["status"] == "requires_action",
    )


def intent_from_event_object(data: Mapping[str, Any]) -> IntentView:
    """Read a PaymentIntent from the ``data.object`` of a verified webhook event."""
    return _intent_view(dict(data))


def _refund_view(obj: Any) -> RefundView:
    data = _plain(obj)
    return RefundView(
        id=data["id"],
        status=data["status"],
        amount_minor=int(data["amount"]),
        currency=str(data["currency"]).upper(),
        payment_intent_id=data.get("payment_intent") or "",
        metadata=dict(data.get("metadata") or {}),
    )


def refund_from_event_object(data: Mapping[str, Any]) -> RefundView:
    """Read a Refund from the ``data.object`` of a verified webhook event."""
    return _refund_view(dict(data))


def _transfer_view(obj: Any) -> TransferView:
    data = _plain(obj)
    return TransferView(
        id=data["id"],
        amount_minor=int(data["amount"]),
        currency=str(data["currency"]).upper(),
        destination=str(data.get("destination") or ""),
        metadata=dict(data.get("metadata") or {}),
    )


def create_payment_intent(
    *, amount_minor: int, currency: str, idempotency_key: str, metadata: Mapping[str, str]
) -> IntentView:
    """Create a card PaymentIntent for ``amount_minor`` of ``currency``; the same key returns the same intent."""
    try:
        intent = _client().v1.payment_intents.create(
            params={
                "amount": amount_minor,
                "currency": currency.lower(),
                "metadata": dict(metadata),
                # Explicit card: localstripe refuses automatic_payment_methods, and the Payment Element
                # only needs card here.
                "payment_method_types": ["card"],
            },  # type: ignore[typeddict-unknown-key]
            options={"idempotency_key": idempotency_key},
        )
    except stripe.StripeError as error:
        raise _translate(error) from error
    return _intent_view(intent)


def retrieve_payment_intent(payment_intent_id: str) -> IntentView:
    try:
        return _intent_view(_client().v1.payment_intents.retrieve(payment_intent_id))
    except stripe.StripeError as error:
        raise _translate(error) from error


def cancel_payment_intent(payment_intent_id: str) -> IntentView:
    try:
        return _intent_view(_client().v1.payment_intents.cancel(payment_intent_id))
    except stripe.StripeError as error:
        raise _translate(error) from error


def confirm_locally(payment_intent_id: str, payment_method: str) -> IntentView:
    """Local mode only: attach a test payment method and confirm, as Stripe.js would in the browser.

    Raises :class:`PaymentDeclined` for a declined card; returns the intent in ``requires_action`` for a
    card that needs 3-D Secure (complete it with :func:`authenticate_locally`).
    """
    if not is_local_mode():
        raise GatewayError("server-side confirmation is only available with localstripe")
    client = _client()
    try:
        if payment_method in _LOCAL_TEST_CARDS:
            created = client.v1.payment_methods.create(
                params={
                    "type": "card",
                    "card": {
                        "number": _LOCAL_TEST_CARDS[payment_method],
                        "exp_month": 12,
                        "exp_year": 2034,
                        "cvc": "123",
                    },
                }
            )
            payment_method = created.id
        client.v1.payment_intents.update(payment_intent_id, params={"payment_method": payment_method})
        return _intent_view(client.v1.payment_intents.confirm(payment_intent_id))
    except stripe.StripeError as error:
        raise _translate(error) from error


def authenticate_locally(payment_intent_id: str, client_secret: str, *, success: bool) -> IntentView:
    """Local mode only: pass or fail the 3-D Secure challenge of an intent in ``requires_action``."""
    if not is_local_mode():
        raise GatewayError("simulated 3-D Secure is only available with localstripe")
    client = _client()
    try:
        response = client.raw_request(
            "post",
            f"/v1/payment_intents/{payment_intent_id}/_authenticate",
            client_secret=client_secret,
            success="true" if success else "false",
        )
        return _intent_view(client.deserialize(response, api_mode="V1"))
    except stripe.StripeError as error:
        raise _translate(error) from error


def create_refund(
    *, payment_intent_id: str, amount_minor: int, idempotency_key: str, metadata: Mapping[str, str]
) -> RefundView:
    """Refund ``amount_minor`` of a captured PaymentIntent; the same key returns the same refund."""
    try:
        refund = _client().v1.refunds.create(
            params={"payment_intent": payment_intent_id, "amount": amount_minor, "metadata": dict(metadata)},
            options={"idempotency_key": idempotency_key},
        )
    except stripe.StripeError as error:
        raise _translate(error) from error
    return _refund_view(refund)


def create_transfer(
    *, amount_minor: int, currency: str, destination: str, idempotency_key: str, metadata: Mapping[str, str]
) -> TransferView:
    """Transfer ``amount_minor`` from the platform balance to a Connect account (``acct_…``)."""
    try:
        transfer = _client().v1.transfers.create(
            params={
                "amount": amount_minor,
                "currency": currency.lower(),
                "destination": destination,
                "metadata": dict(metadata),
            },
            options={"idempotency_key": idempotency_key},
        )
    except stripe.StripeError as error:
        raise _translate(error) from error
    return _transfer_view(transfer)


@dataclass(frozen=True)
class ConnectAccountView:
    """A Stripe Connect account: its id and whether its holder finished onboarding (payouts can reach it)."""

    id: str
    details_submitted: bool
    payouts_enabled: bool


def create_connect_account(*, email: str, organization_name: str) -> ConnectAccountView:
    """Create an Express Connect account for a provider organization (real Stripe only: localstripe has no
    Connect accounts; local mode onboards with a stand-in page instead)."""
    params: Any = {
        "type": "express",
        "business_profile": {"name": organization_name},
        "capabilities": {"transfers": {"requested": True}},
    }
    if email:
        params["email"] = email
    try:
        account = _client().v1.accounts.create(params=params)
    except stripe.StripeError as error:
        raise _translate(error) from error
    return _account_view(account)


def retrieve_connect_account(account_id: str) -> ConnectAccountView:
    try:
        account = _client().v1.accounts.retrieve(account_id)
    except stripe.StripeError as error:
        raise _translate(error) from error
    return _account_view(account)


def create_account_link(*, account_id: str, refresh_url: str, return_url: str) -> str:
    """The URL of Stripe's hosted onboarding for ``account_id`` (single use, expires in minutes)."""
    try:
        link = _client().v1.account_links.create(
            params={
                "account": account_id,
                "refresh_url": refresh_url,
                "return_url": return_url,
                "type": "account_onboarding",
            }
        )
    except stripe.StripeError as error:
        raise _translate(error) from error
    return str(_plain(link)["url"])


def _account_view(obj: Any) -> ConnectAccountView:
    data = _plain(obj)
    return ConnectAccountView(
        id=str(data["id"]),
        details_submitted=bool(data.get("details_submitted")),
        payouts_enabled=bool(data.get("payouts_enabled")),
    )


def charge_from_event_object(data: Mapping[str, Any]) -> ChargeView:
    """Read a Charge from the ``data.object`` of a verified webhook event.

    ``balance_transaction`` arrives as an id (or expanded, when the event was rendered that way); both give
    its id here, and the fee is read with :func:`retrieve_balance_transaction`.
    """
    balance = data.get("balance_transaction")
    balance_id = balance.get("id") if isinstance(balance, Mapping) else balance
    intent = data.get("payment_intent")
    intent_id = intent.get("id") if isinstance(intent, Mapping) else intent
    return ChargeView(
        id=str(data["id"]),
        status=str(data.get("status") or ""),
        payment_intent_id=str(intent_id or ""),
        amount_minor=int(data.get("amount") or 0),
        currency=str(data.get("currency") or "").upper(),
        balance_transaction_id=str(balance_id or ""),
        metadata=dict(data.get("metadata") or {}),
    )


def retrieve_balance_transaction(balance_transaction_id: str) -> BalanceTransactionView:
    """``GET /v1/balance_transactions/{id}``: the fee Stripe took, in the balance transaction's currency.

    Raises :class:`GatewayUnavailable` (retry later) or :class:`GatewayError` (unknown id, or an answer
    without an integer fee).
    """
    try:
        found = _plain(_client().v1.balance_transactions.retrieve(balance_transaction_id))
    except stripe.StripeError as error:
        raise _translate(error) from error
    fee, currency = found.get("fee"), found.get("currency")
    if not isinstance(fee, int) or isinstance(fee, bool) or fee < 0 or not isinstance(currency, str):
        raise GatewayError(f"balance transaction {balance_transaction_id} has no usable fee")
    return BalanceTransactionView(id=str(found["id"]), fee_minor=fee, currency=currency.upper())


def iter_payment_intents() -> Iterator[IntentView]:
    """Every PaymentIntent of the account."""
    try:
        for intent in _client().v1.payment_intents.list(params={"limit": 100}).auto_paging_iter():
            yield _intent_view(intent)
    except stripe.StripeError as error:
        raise _translate(error) from error


def iter_refunds() -> Iterator[RefundView]:
    """Every Refund of the account."""
    try:
        for refund in _client().v1.refunds.list(params={"limit": 100}).auto_paging_iter():
            yield _refund_view(refund)
    except stripe.StripeError as error:
        raise _translate(error) from error


def verify_webhook(payload: bytes, signature_header: str) -> dict[str, Any]:
    """Verify a webhook with Stripe's own check (HMAC-SHA256 over ``t.payload``, timestamp tolerance).

    Returns the event as plain JSON; raises :class:`SignatureError` for a bad or missing signature, a
    timestamp outside ``STRIPE_WEBHOOK_TOLERANCE_SECONDS`` or a payload that is not a JSON event.
    """
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise SignatureError("no webhook signing secret is configured")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            stripe.Webhook.construct_event(
                payload, signature_header, secret, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS
            )
    except stripe.SignatureVerificationError as error:
        raise SignatureError(str(error)) from error
    except ValueError as error:
        raise SignatureError(f"payload is not JSON: {error}") from error
    # Stripe's check only bounds the past; a timestamp far in the future is refused as well.
    stamps = [part[2:] for part in signature_header.split(",") if part.startswith("t=")]
    if (
        not stamps
        or not stamps[0].isdigit()
        or int(stamps[0]) > time.time() + settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS
    ):
        raise SignatureError("timestamp outside the tolerance zone")
    event = json.loads(payload)
    if not isinstance(event, dict) or not {"id", "type", "created", "data"} <= event.keys():
        raise SignatureError("payload is not a Stripe event")
    return event
