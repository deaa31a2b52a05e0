"""Audit checks that hold the business tables and the ledger to each other, both ways.

The ledger's own audit proves the journal was not altered after it was logged; it cannot tell a well-formed
forged posting (a ``sale`` of 1,000,000 minor units to someone's payable) from a real one, nor see an edit
of an order, a payment, a refund or an entitlement row. These checks can:

- ``orders.sales``: every ``sale`` names an existing paid order, under that order's key, with exactly the
  order's frozen split (clearing debit = fee credit + the seller's payable credit, in its currency), and
  the Stripe mirror (``Payment``) shows that intent succeeded for that amount; every paid or refunded order
  (free ones aside) has exactly one sale; an order that is pending or canceled has none.
- ``orders.refunds``: every ``refund`` transaction names a succeeded ``Refund`` of its order, with that
  refund's amounts and Stripe id; every succeeded refund has exactly one; each order's ``refunded_minor``
  is the sum of its succeeded refunds, and its status says "refunded" exactly when that is the whole
  amount; a buyer's refund (policy: before any download) never comes with a served copy.
- ``orders.payouts``: every ``payout`` / ``payout.reversed`` transaction names a payout row of that state,
  organization, amount and transfer; every paid or reversed payout has its transaction.
- ``delivery.entitlements``: each entitlement's status is what its ledger events say (granted, revoked,
  reinstated, in log order) and what its order allows (only a paid order backs an active entitlement);
  every entitlement event names an existing entitlement.
- ``ledger.kinds``: every journal transaction and event is of a kind the platform writes.

Each check reads the rows it needs in one pass (memory grows with the number of orders, which the
platform's scale allows; a streamed version would follow the audit's merge of ordered cursors).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from exchange.delivery.models import Entitlement
from exchange.ledger.audit import Problem, register_check
from exchange.ledger.models import JournalTransaction, LedgerEvent
from exchange.orders.models import Order, Payment, Payout, Refund

TRANSACTION_KINDS = frozenset({"sale", "refund", "stripe_fee", "payout", "payout.reversed"})
EVENT_KINDS = frozenset(
    {
        "entitlement.granted",
        "entitlement.revoked",
        "entitlement.reinstated",
        "delivery.issued",
        "download",
        "download.refused",
        "quota.consumed",
        "privacy.epsilon_budget_declared",  # the ε ledger (exchange/ledger/privacy.py checks both ways)
        "privacy.epsilon_spent",
    }
)
ENTITLEMENT_EVENTS = ("entitlement.granted", "entitlement.revoked", "entitlement.reinstated")

Leg = tuple[str, int | None, int, str]


def _transactions(kind: str) -> list[JournalTransaction]:
    return list(
        JournalTransaction.objects.filter(kind=kind).prefetch_related("postings__account").order_by("leaf_id")
    )


def _legs(journal: JournalTransaction) -> list[Leg]:
    return sorted(
        (posting.account.kind, posting.account.organization_id, posting.amount_minor, posting.currency)
        for posting in journal.postings.all()
    )


def _expected_legs(currency: str, legs: Iterable[tuple[str, int | None, int]]) -> list[Leg]:
    return sorted((kind, owner, amount, currency) for kind, owner, amount in legs if amount)


def _sale_legs(order: Order) -> list[Leg]:
    return _expected_legs(
        order.currency,
        [
            ("stripe_clearing", None, order.amount_minor),
            ("platform_fee_revenue", None, -order.platform_fee_minor),
            ("provider_payable", order.seller_id, -order.provider_share_minor),
        ],
    )


def _refund_legs(refund: Refund, seller_id: int) -> list[Leg]:
    return _expected_legs(
        refund.currency,
        [
            ("stripe_clearing", None, -refund.amount_minor),
            ("platform_fee_revenue", None, refund.platform_fee_minor),
            ("refunds", None, refund.platform_covered_minor),
            ("provider_payable", seller_id, refund.provider_share_minor - refund.platform_covered_minor),
        ],
    )


def _problem(check: str, subject: str, message: str) -> Problem:
    return Problem(check, subject, message)


@register_check("orders.sales")
def sales_match_orders() -> Iterator[Problem]:
    """Sales ↔ orders ↔ the Stripe payment mirror, both ways (module docstring)."""
    orders = {order.pk: order for order in Order.objects.all()}
    payments = {payment.order_id: payment for payment in Payment.objects.all()}
    sales_of: dict[str, list[int]] = defaultdict(list)
    for sale in _transactions("sale"):
        where = f"sale transaction {sale.pk}"
        order_id = str(sale.refs.get("order", ""))
        order = orders.get(order_id)
        if order is None:
            yield _problem(
                "orders.sales", where, f"names order {order_id!r}, which does not exist (forged sale)"
            )
            continue
        sales_of[order_id].append(sale.pk)
        if sale.idempotency_key != f"sale:{order_id}":
            yield _problem("orders.sales", where, f"is not keyed by its order {order_id} (forged sale)")
        if _legs(sale) != _sale_legs(order):
            yield _problem(
                "orders.sales",
                where,
                f"does not move order {order_id}'s frozen price and split "
                f"({order.amount_minor} {order.currency}: fee {order.platform_fee_minor}, provider "
                f"{order.provider_share_minor}): the order or the sale was altered",
            )
        payment = payments.get(order_id)
        intent = str(sale.refs.get("payment_intent", ""))
        if payment is None or payment.stripe_payment_intent_id != intent:
            yield _problem("orders.sales", where, f"names payment intent {intent!r}, not order {order_id}'s")
        elif payment.stripe_status != "succeeded" or payment.amount_minor != order.amount_minor:
            yield _problem(
                "orders.sales",
                where,
                f"but the Stripe mirror of {intent} is {payment.stripe_status or 'unknown'} for "
                f"{payment.amount_minor} {payment.currency}",
            )
    for order in orders.values():
        yield from _order_problems(order, sales_of.get(order.pk, []), payments.get(order.pk))


def _order_problems(order: Order, sales: list[int], payment: Payment | None) -> Iterator[Problem]:
    where = f"order {order.pk}"
    if order.platform_fee_minor + order.provider_share_minor != order.amount_minor:
        yield _problem("orders.sales", where, "its fee and provider share do not add up to its amount")
    if payment is not None and (payment.amount_minor, payment.currency) != (
        order.amount_minor,
        order.currency,
    ):
        yield _problem(
            "orders.sales",
            where,
            f"is {order.amount_minor} {order.currency} but its payment is "
            f"{payment.amount_minor} {payment.currency}",
        )
    settled = order.status in (Order.Status.PAID, Order.Status.REFUNDED)
    if settled and order.paid_at is None:
        yield _problem("orders.sales", where, f"is {order.status} without a payment time")
    if settled and not order.is_free and len(sales) != 1:
        yield _problem(
            "orders.sales",
            where,
            f"is {order.status} but has {len(sales)} sale transactions (no captured payment backs it)"
            if not sales
            else f"is {order.status} but has {len(sales)} sale transactions",
        )
    if settled and not order.is_free and payment is not None and payment.stripe_status != "succeeded":
        yield _problem(
            "orders.sales",
            where,
            f"is {order.status} but its Stripe payment is {payment.stripe_status or 'unknown'}",
        )
    if not settled and sales:
        yield _problem("orders.sales", where, f"is {order.status} but has a sale in the ledger")


@register_check("orders.refunds")
def refunds_match_orders() -> Iterator[Problem]:
    """Refund transactions ↔ refund rows ↔ order totals, both ways (module docstring)."""
    refunds = {refund.pk: refund for refund in Refund.objects.select_related("order")}
    posted: Counter[str] = Counter()
    for journal in _transactions("refund"):
        where = f"refund transaction {journal.pk}"
        refund = refunds.get(str(journal.refs.get("refund", "")))
        if refund is None:
            yield _problem("orders.refunds", where, "names a refund that does not exist (forged refund)")
            continue
        posted[refund.pk] += 1
        if (
            journal.idempotency_key != f"refund:{refund.pk}"
            or journal.refs.get("order") != refund.order_id
            or journal.refs.get("stripe_refund") != refund.stripe_refund_id
        ):
            yield _problem(
                "orders.refunds", where, f"does not carry refund {refund.pk}'s key, order and Stripe id"
            )
        if refund.status != Refund.Status.SUCCEEDED:
            yield _problem("orders.refunds", where, f"but refund {refund.pk} is {refund.status}")
        if _legs(journal) != _refund_legs(refund, refund.order.seller_id):
            yield _problem("orders.refunds", where, f"does not move refund {refund.pk}'s amounts")
    totals: dict[str, int] = defaultdict(int)
    for refund in refunds.values():
        if refund.status == Refund.Status.SUCCEEDED:
            totals[refund.order_id] += refund.amount_minor
            if posted[refund.pk] != 1:
                yield _problem(
                    "orders.refunds",
                    f"refund {refund.pk}",
                    f"succeeded but has {posted[refund.pk]} transactions",
                )
    yield from _refund_totals(totals)
    yield from _buyer_refunds_after_download()


def _refund_totals(totals: dict[str, int]) -> Iterator[Problem]:
    for order in Order.objects.exclude(status=Order.Status.PENDING):
        where = f"order {order.pk}"
        if order.refunded_minor != totals.get(order.pk, 0):
            yield _problem(
                "orders.refunds",
                where,
                f"says {order.refunded_minor} refunded, its succeeded refunds add up to {totals.get(order.pk, 0)}",
            )
        whole = not order.is_free and totals.get(order.pk, 0) == order.amount_minor
        if whole != (order.status == Order.Status.REFUNDED) and order.status != Order.Status.CANCELED:
            yield _problem(
                "orders.refunds",
                where,
                f"is {order.status} but {totals.get(order.pk, 0)} of {order.amount_minor} was refunded",
            )


def _buyer_refunds_after_download() -> Iterator[Problem]:
    from exchange.downloads.models import Download

    buyer_refunded = Refund.objects.filter(
        initiator=Refund.Initiator.BUYER, status=Refund.Status.SUCCEEDED, order__entitlement__isnull=False
    ).values_list("pk", "order__entitlement_id")
    for refund_id, entitlement_id in buyer_refunded:
        if Download.objects.filter(
            delivery__entitlement_id=entitlement_id, outcome=Download.Outcome.SERVED
        ).exists():
            yield _problem(
                "orders.refunds",
                f"refund {refund_id}",
                f"gave a buyer their money back although entitlement {entitlement_id} was served a copy",
            )


@register_check("orders.payouts")
def payouts_match_transfers() -> Iterator[Problem]:
    """Payout transactions ↔ payout rows, both ways (module docstring)."""
    payouts = {payout.pk: payout for payout in Payout.objects.all()}
    posted: Counter[tuple[str, str]] = Counter()
    for kind, states in (
        ("payout", (Payout.Status.PAID, Payout.Status.REVERSED)),
        ("payout.reversed", (Payout.Status.REVERSED,)),
    ):
        for journal in _transactions(kind):
            where = f"{kind} transaction {journal.pk}"
            payout = payouts.get(str(journal.refs.get("payout", "")))
            if payout is None:
                yield _problem("orders.payouts", where, "names a payout that does not exist (forged payout)")
                continue
            posted[(kind, payout.pk)] += 1
            sign = 1 if kind == "payout" else -1
            expected = _expected_legs(
                payout.currency,
                [
                    ("provider_paid_out", payout.organization_id, sign * payout.amount_minor),
                    ("stripe_clearing", None, -sign * payout.amount_minor),
                ],
            )
            if (
                payout.status not in states
                or journal.refs.get("transfer") != payout.stripe_transfer_id
                or _legs(journal) != expected
            ):
                yield _problem(
                    "orders.payouts", where, f"does not match payout {payout.pk} ({payout.status})"
                )
    for payout in payouts.values():
        wanted = {"payout": payout.status in (Payout.Status.PAID, Payout.Status.REVERSED)}
        wanted["payout.reversed"] = payout.status == Payout.Status.REVERSED
        for kind, expected_present in wanted.items():
            if posted[(kind, payout.pk)] != int(expected_present):
                yield _problem(
                    "orders.payouts",
                    f"payout {payout.pk}",
                    f"is {payout.status} but has {posted[(kind, payout.pk)]} {kind} transactions",
                )


def _ledger_states(events: Iterable[LedgerEvent]) -> dict[str, list[str]]:
    states: dict[str, list[str]] = defaultdict(list)
    for event in events:
        states[str(event.refs.get("entitlement", ""))].append(event.kind)
    return states


def _entitlement_problem(entitlement: Entitlement, kinds: list[str], order: Any) -> str:
    if kinds.count("entitlement.granted") != 1 or kinds[0] != "entitlement.granted":
        return f"has {kinds.count('entitlement.granted')} grant events (expected one, first)"
    logged = "revoked" if kinds[-1] == "entitlement.revoked" else "active"
    if entitlement.status != logged:
        return f"is {entitlement.status} but the ledger says {logged} (row altered)"
    if entitlement.source.startswith("order:"):
        if order is None or order.entitlement_id != entitlement.pk:
            return f"names {entitlement.source}, which does not grant it"
        if entitlement.is_active and order.status != Order.Status.PAID:
            return f"is active but {entitlement.source} is {order.status}"
    return ""


@register_check("delivery.entitlements")
def entitlements_match_ledger() -> Iterator[Problem]:
    """Entitlement rows ↔ their ledger events ↔ their orders (module docstring)."""
    states = _ledger_states(LedgerEvent.objects.filter(kind__in=ENTITLEMENT_EVENTS).order_by("leaf_id"))
    orders = {order.pk: order for order in Order.objects.filter(entitlement__isnull=False)}
    known = set()
    for entitlement in Entitlement.objects.all():
        known.add(entitlement.pk)
        order = orders.get(entitlement.source.removeprefix("order:"))
        message = _entitlement_problem(entitlement, states.get(entitlement.pk, []), order)
        if message:
            yield _problem("delivery.entitlements", f"entitlement {entitlement.pk}", message)
    for entitlement_id in sorted(set(states) - known):
        yield _problem(
            "delivery.entitlements",
            f"entitlement {entitlement_id or '(none)'}",
            "has ledger events but no row (deleted, or the events were forged)",
        )


@register_check("ledger.kinds")
def entries_are_of_known_kinds() -> Iterator[Problem]:
    """Every journal transaction and event is of a kind the platform writes."""
    for leaf_id, kind in JournalTransaction.objects.exclude(kind__in=TRANSACTION_KINDS).values_list(
        "leaf_id", "kind"
    ):
        yield _problem("ledger.kinds", f"journal transaction {leaf_id}", f"is of unknown kind {kind!r}")
    for leaf_id, kind in LedgerEvent.objects.exclude(kind__in=EVENT_KINDS).values_list("leaf_id", "kind"):
        yield _problem("ledger.kinds", f"event {leaf_id}", f"is of unknown kind {kind!r}")
