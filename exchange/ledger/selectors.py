"""Reads of the ledger: entries by ref, proofs from a cached Merkle tree, heads, trial balance, summaries."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import connection
from django.db.models import QuerySet, Sum

from exchange.ledger.merkle import EMPTY_ROOT, MerkleTree
from exchange.ledger.models import (
    DEBIT,
    Account,
    AccountBalance,
    AccountKind,
    EntryRef,
    JournalTransaction,
    LedgerEvent,
    LogLeaf,
    LogState,
    Posting,
    TreeHead,
)
from marketplace.accounts.models import Organization


@dataclass(frozen=True)
class LedgerEntry:
    """One transaction or event leaf: its index, type, kind, refs, time (UTC) and canonical leaf bytes."""

    index: int
    entry_type: str
    kind: str
    refs: dict[str, str]
    created_at: datetime
    leaf: bytes


def log_size() -> int:
    """Number of leaves in the log, as the log state says."""
    return LogState.objects.filter(pk=1).values_list("size", flat=True).first() or 0


def _entries(indexes: Sequence[int]) -> list[LedgerEntry]:
    leaves = dict(LogLeaf.objects.filter(index__in=indexes).values_list("index", "canonical"))
    rows: list[tuple[int, str, str, dict[str, str], datetime]] = []
    for model, entry_type in ((JournalTransaction, "transaction"), (LedgerEvent, "event")):
        for pk, kind, refs, created_at in model.objects.filter(pk__in=indexes).values_list(
            "pk", "kind", "refs", "created_at"
        ):
            rows.append((pk, entry_type, kind, refs, created_at))
    rows.sort()
    return [
        LedgerEntry(index, entry_type, kind, dict(refs), created_at, bytes(leaves[index]))
        for index, entry_type, kind, refs, created_at in rows
    ]


def entries_for(ref_key: str, ref_value: str) -> list[LedgerEntry]:
    """Every transaction and event whose refs hold ``ref_key = ref_value``, in log order (indexed lookup)."""
    indexes = list(EntryRef.objects.filter(key=ref_key, value=ref_value).values_list("leaf_id", flat=True))
    return _entries(indexes)


def search_entries(
    *,
    ref_key: str = "",
    ref_value: str = "",
    account_id: int | None = None,
    kind: str = "",
    since: date | None = None,
    until: date | None = None,
    limit: int = 100,
) -> list[LedgerEntry]:
    """Entries matching every given filter (ref pair, account touched, kind, dates inclusive), newest first."""
    transactions: QuerySet[Any] = JournalTransaction.objects.all()
    events: QuerySet[Any] | None = LedgerEvent.objects.all()
    if ref_key and ref_value:
        matching = EntryRef.objects.filter(key=ref_key, value=ref_value).values("leaf_id")
        transactions = transactions.filter(pk__in=matching)
        events = events.filter(pk__in=matching) if events is not None else None
    if account_id is not None:
        transactions = transactions.filter(
            pk__in=Posting.objects.filter(account_id=account_id).values("transaction_id")
        )
        events = None
    if kind:
        transactions = transactions.filter(kind=kind)
        events = events.filter(kind=kind) if events is not None else None
    if since:
        transactions = transactions.filter(created_at__date__gte=since)
        events = events.filter(created_at__date__gte=since) if events is not None else None
    if until:
        transactions = transactions.filter(created_at__date__lte=until)
        events = events.filter(created_at__date__lte=until) if events is not None else None
    indexes = list(transactions.order_by("-pk").values_list("pk", flat=True)[:limit])
    if events is not None:
        indexes += list(events.order_by("-pk").values_list("pk", flat=True)[:limit])
    indexes = sorted(indexes, reverse=True)[:limit]
    return sorted(_entries(indexes), key=lambda entry: -entry.index)


def postings_by_transaction(indexes: Sequence[int]) -> dict[int, list[tuple[int, int, str]]]:
    """``{transaction index: [(account id, amount_minor, currency), ...]}`` in posting order."""
    result: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
    for transaction_id, account_id, amount, currency in (
        Posting.objects.filter(transaction_id__in=indexes)
        .order_by("id")
        .values_list("transaction_id", "account_id", "amount_minor", "currency")
    ):
        result[transaction_id].append((account_id, amount, currency))
    return result


@dataclass(frozen=True)
class BalanceLine:
    """One account in the trial balance: debit-positive stored balance and its normal-sense value."""

    account_id: int
    kind: str
    currency: str
    organization_id: int | None
    balance_minor: int
    normal_balance_minor: int
    posting_count: int


def trial_balance() -> list[BalanceLine]:
    """Every account's stored balance, by currency then account; debits minus credits sum to 0 per currency."""
    lines = []
    for balance in AccountBalance.objects.select_related("account").order_by(
        "account__currency", "account_id"
    ):
        account = balance.account
        sign = 1 if account.normal_side == DEBIT else -1
        lines.append(
            BalanceLine(
                account.pk,
                account.kind,
                account.currency,
                account.organization_id,
                balance.balance_minor,
                sign * balance.balance_minor,
                balance.posting_count,
            )
        )
    return lines


def trial_totals(lines: Sequence[BalanceLine]) -> dict[str, tuple[int, int]]:
    """``{currency: (total debit balances, total credit balances)}``; equal when the books balance."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for line in lines:
        if line.balance_minor > 0:
            totals[line.currency][0] += line.balance_minor
        else:
            totals[line.currency][1] -= line.balance_minor
    return {currency: (debit, credit) for currency, (debit, credit) in sorted(totals.items())}


@dataclass(frozen=True)
class ProviderSummary:
    """An organization's money in one currency, minor units, read from the ledger alone. The columns add up:
    ``gross_sales - refunds + covered - platform_fees = payable`` (earned) and ``payable - paid_out = owed``.

    ``refunds_minor`` is what buyers got back for the organization's sales; ``platform_fees_minor`` the fees
    the platform kept, net of the fee part of refunds; ``covered_minor`` the part of refunds the platform
    bore (the provider had been paid out already)."""

    currency: str
    gross_sales_minor: int
    platform_fees_minor: int
    refunds_minor: int
    covered_minor: int
    payable_minor: int
    paid_out_minor: int
    owed_minor: int
    payable_account_id: int | None
    paid_out_account_id: int | None


def _sum(postings: QuerySet[Posting]) -> int:
    return int(postings.aggregate(total=Sum("amount_minor"))["total"] or 0)


def _refund_transactions(sale_transactions: QuerySet[Posting]) -> QuerySet[EntryRef, Any]:
    """The leaves of the refund transactions of the orders the given sale transactions were for."""
    orders = EntryRef.objects.filter(leaf_id__in=sale_transactions.values("transaction_id"), key="order")
    return EntryRef.objects.filter(
        key="order", value__in=orders.values("value"), leaf__transaction__kind="refund"
    ).values("leaf_id")


def provider_summaries(organization: Organization) -> list[ProviderSummary]:
    """One summary per currency the organization has ledger accounts in.

    Sales are the transactions that credit the organization's payable account (each pays one organization):
    its credit is the provider's share and the platform fee revenue credited with it the fee. Refunds are the
    ``refund`` transactions of the same orders (found by their ``order`` ref): Stripe clearing credited is
    what the buyer got back, fee revenue debited the fee returned, the refunds expense what the platform bore.
    """
    summaries = []
    accounts = Account.objects.filter(organization=organization)
    for currency in sorted(set(accounts.values_list("currency", flat=True))):
        by_kind = {account.kind: account for account in accounts.filter(currency=currency)}
        payable = by_kind.get(AccountKind.PROVIDER_PAYABLE)
        paid_out = by_kind.get(AccountKind.PROVIDER_PAID_OUT)
        gross = refunded = covered = fees = 0
        if payable is not None:
            credits = Posting.objects.filter(account=payable, amount_minor__lt=0)
            in_sales = Posting.objects.filter(transaction_id__in=credits.values("transaction_id"))
            fees = -_sum(in_sales.filter(account__kind=AccountKind.PLATFORM_FEE_REVENUE, currency=currency))
            gross = -_sum(credits) + fees
            in_refunds = Posting.objects.filter(
                transaction_id__in=_refund_transactions(credits), currency=currency
            )
            refunded = -_sum(in_refunds.filter(account__kind=AccountKind.STRIPE_CLEARING))
            covered = _sum(in_refunds.filter(account__kind=AccountKind.REFUNDS))
            fees -= _sum(in_refunds.filter(account__kind=AccountKind.PLATFORM_FEE_REVENUE))
        payable_minor = -_balance(payable)
        paid_out_minor = _balance(paid_out)
        summaries.append(
            ProviderSummary(
                currency,
                gross,
                fees,
                refunded,
                covered,
                payable_minor,
                paid_out_minor,
                payable_minor - paid_out_minor,
                payable.pk if payable else None,
                paid_out.pk if paid_out else None,
            )
        )
    return summaries


def _balance(account: Account | None) -> int:
    if account is None:
        return 0
    return AccountBalance.objects.filter(pk=account.pk).values_list("balance_minor", flat=True).first() or 0


def latest_head() -> TreeHead | None:
    return TreeHead.objects.order_by("-id").first()


def counts() -> dict[str, int]:
    """Public counts: leaves, accounts, journal transactions, events, signed heads."""
    return {
        "entries": log_size(),
        "accounts": Account.objects.count(),
        "transactions": JournalTransaction.objects.count(),
        "events": LedgerEvent.objects.count(),
        "tree_heads": TreeHead.objects.count(),
    }


# One tree per process, grown from the database as the log grows; rebuilt when the stored root disagrees
# (another database, a test that rolled back) so a proof is always computed from the leaves as stored.
_tree_lock = threading.Lock()
_tree_cache: dict[str, MerkleTree] = {}


def log_tree() -> MerkleTree:
    """A Merkle tree of at least every leaf the log state covers, for O(log² n) proofs."""
    state = LogState.objects.filter(pk=1).values_list("size", "root").first()
    size, root = (state[0], bytes(state[1])) if state else (0, EMPTY_ROOT)
    name = str(connection.settings_dict.get("NAME"))
    with _tree_lock:
        tree = _tree_cache.get(name)
        if tree is None or tree.size > size or (tree.size == size and tree.root() != root):
            tree = MerkleTree()
        if tree.size < size:
            for chunk in _leaf_hash_chunks(tree.size, size):
                for value in chunk:
                    tree.append(value)
            if tree.root(size) != root:
                tree = MerkleTree(value for chunk in _leaf_hash_chunks(0, size) for value in chunk)
        _tree_cache[name] = tree
        return tree


def _leaf_hash_chunks(start: int, end: int, chunk: int = 50_000) -> Iterator[list[bytes]]:
    for low in range(start, end, chunk):
        high = min(end, low + chunk)
        yield [
            bytes(value)
            for value in LogLeaf.objects.filter(index__gte=low, index__lt=high)
            .order_by("index")
            .values_list("leaf_hash", flat=True)
        ]


def leaf_export_chunks(size: int, chunk: int = 10_000) -> Iterator[list[bytes]]:
    """The canonical bytes of leaves ``0 .. size-1`` in order, a chunk at a time (for the export)."""
    for low in range(0, size, chunk):
        yield [
            bytes(value)
            for value in LogLeaf.objects.filter(index__gte=low, index__lt=min(size, low + chunk))
            .order_by("index")
            .values_list("canonical", flat=True)
        ]
