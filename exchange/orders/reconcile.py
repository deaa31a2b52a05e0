"""Reconciliation, both ways: every PaymentIntent and Refund at Stripe matched to exactly one ledger
transaction, and every ``sale`` and ``refund`` transaction in the ledger matched to a Stripe object that
moved that money (a well-formed sale posted without a payment at Stripe is named)."""

from __future__ import annotations

from dataclasses import dataclass

from exchange.ledger.models import JournalTransaction
from exchange.ledger.services import entries_for
from exchange.orders import stripe_gateway as gateway
from exchange.orders.models import Payment, Refund


@dataclass(frozen=True)
class Match:
    """One Stripe object and what the ledger holds for it; ``ok`` when it is what it should be."""

    stripe_id: str
    kind: str
    status: str
    amount_minor: int
    currency: str
    order_id: str
    ledger_indexes: tuple[int, ...]
    ok: bool
    note: str


def _transactions(ref_key: str, ref_value: str, kind: str) -> tuple[int, ...]:
    return tuple(
        e.index for e in entries_for(ref_key, ref_value) if e.entry_type == "transaction" and e.kind == kind
    )


def reconcile() -> list[Match]:
    """Match every succeeded PaymentIntent to one ``sale`` and every succeeded Refund to one ``refund``.

    An intent that did not succeed must have no sale; objects Synthex does not know are reported.
    """
    matches: list[Match] = []
    payments = {p.stripe_payment_intent_id: p for p in Payment.objects.exclude(stripe_payment_intent_id=None)}
    for intent in gateway.iter_payment_intents():
        payment = payments.get(intent.id)
        order_id = payment.order_id if payment else ""
        indexes = _transactions("order", order_id, "sale") if order_id else ()
        if payment is None:
            ok, note = intent.status != "succeeded", "not a Synthex order"
        elif intent.status == "succeeded":
            ok = len(indexes) == 1
            note = "sale" if ok else f"{len(indexes)} sale transactions"
        else:
            ok, note = (
                not indexes,
                f"{intent.status}, no money" if not indexes else "sale posted but not captured",
            )
        matches.append(
            Match(
                intent.id,
                "payment_intent",
                intent.status,
                intent.amount_minor,
                intent.currency,
                order_id,
                indexes,
                ok,
                note,
            )
        )
    seen_intents = {match.stripe_id: match for match in matches}
    refunds = {r.stripe_refund_id: r for r in Refund.objects.exclude(stripe_refund_id=None)}
    stripe_refunds = list(gateway.iter_refunds())
    for stripe_refund in stripe_refunds:
        refund = refunds.get(stripe_refund.id)
        indexes = _transactions("stripe_refund", stripe_refund.id, "refund")
        if refund is None:
            ok, note = False, "refund unknown to Synthex"
        elif stripe_refund.status in ("succeeded", "pending"):
            ok = len(indexes) == 1 and refund.amount_minor == stripe_refund.amount_minor
            note = "refund" if ok else f"{len(indexes)} refund transactions"
        else:
            ok, note = not indexes, stripe_refund.status
        matches.append(
            Match(
                stripe_refund.id,
                "refund",
                stripe_refund.status,
                stripe_refund.amount_minor,
                stripe_refund.currency,
                refund.order_id if refund else "",
                indexes,
                ok,
                note,
            )
        )
    matches.extend(_ledger_without_stripe(seen_intents, {r.id: r for r in stripe_refunds}))
    return matches


def _clearing_amount(journal: JournalTransaction) -> int:
    return sum(
        posting.amount_minor
        for posting in journal.postings.all()
        if posting.account.kind == "stripe_clearing"
    )


def _ledger_without_stripe(
    intents: dict[str, Match], stripe_refunds: dict[str, gateway.RefundView]
) -> list[Match]:
    """The other way: each ``sale`` needs a succeeded intent at Stripe for the amount it put into Stripe
    clearing, each ``refund`` a Stripe refund for the amount it took out. Only mismatches are listed (the
    matches are the lines above)."""
    found = []
    journals = JournalTransaction.objects.filter(kind__in=["sale", "refund"]).prefetch_related(
        "postings__account"
    )
    for journal in journals.order_by("leaf_id"):
        amount = abs(_clearing_amount(journal))
        order_id = str(journal.refs.get("order", ""))
        if journal.kind == "sale":
            stripe_id = str(journal.refs.get("payment_intent", ""))
            intent = intents.get(stripe_id)
            ok = intent is not None and intent.status == "succeeded" and intent.amount_minor == amount
            note = "ledger sale without a succeeded Stripe payment of that amount"
        else:
            stripe_id = str(journal.refs.get("stripe_refund", ""))
            refund = stripe_refunds.get(stripe_id)
            ok = refund is not None and refund.amount_minor == amount
            note = "ledger refund without a Stripe refund of that amount"
        if not ok:
            found.append(
                Match(
                    stripe_id or "-",
                    f"ledger_{journal.kind}",
                    "-",
                    amount,
                    "",
                    order_id,
                    (journal.pk,),
                    False,
                    note,
                )
            )
    return found
