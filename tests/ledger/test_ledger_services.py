"""Posting, idempotency, refusals, events, heads and receipts through the ledger services."""

from datetime import timedelta

import pytest
from django.utils import timezone

from exchange.ledger import services, verify
from exchange.ledger.checkpoint import parse_and_verify_checkpoint
from exchange.ledger.models import AccountBalance, JournalTransaction, LogLeaf, LogState, Posting, TreeHead
from exchange.ledger.services import LedgerError, post_transaction, record_event
from exchange.ledger.services import Posting as Leg
from marketplace.certification import keys, signing


def _snapshot():
    return (
        JournalTransaction.objects.count(),
        Posting.objects.count(),
        LogLeaf.objects.count(),
        LogState.objects.get(pk=1).size,
        sorted(AccountBalance.objects.values_list("pk", "balance_minor", "posting_count")),
    )


def test_sale_posts_balances_and_one_leaf(books, sale):
    before = LogState.objects.get(pk=1).size
    journal = sale()
    assert journal.pk == before
    assert LogState.objects.get(pk=1).size == before + 1
    assert AccountBalance.objects.get(pk=books.clearing.pk).balance_minor == 1000
    assert AccountBalance.objects.get(pk=books.payable.pk).balance_minor == -800
    assert AccountBalance.objects.get(pk=books.fees.pk).normal_balance_minor == 200
    leaf = LogLeaf.objects.get(index=journal.pk)
    assert leaf.entry_type == "transaction"
    assert (
        f'"postings":[[{books.clearing.pk},1000,"EUR"],[{books.payable.pk},-800,"EUR"],[{books.fees.pk},-200,"EUR"]]'.encode()
        in bytes(leaf.canonical)
    )


def test_repeat_returns_the_original_and_posts_nothing(sale):
    first = sale()
    before = _snapshot()
    assert sale().pk == first.pk
    assert _snapshot() == before


def test_repeat_with_other_postings_is_refused(sale):
    sale()
    before = _snapshot()
    with pytest.raises(LedgerError, match="idempotency key reused with different postings"):
        sale(amount=2000)
    assert _snapshot() == before


@pytest.mark.parametrize(
    ("amounts", "message"),
    [
        ((1000, -900), "do not balance"),
        ((1000,), "at least two postings"),
        ((1000, 0, -1000), "non-zero integer"),
        ((2**53, -(2**53)), "within"),
    ],
)
def test_unbalanced_or_malformed_postings_are_refused(books, amounts, message):
    accounts = [books.clearing, books.fees, books.refunds]
    before = _snapshot()
    with pytest.raises(LedgerError, match=message):
        post_transaction(
            idempotency_key="bad",
            kind="sale",
            postings=[Leg(account, amount) for account, amount in zip(accounts, amounts, strict=False)],
        )
    assert _snapshot() == before


def test_balance_is_per_currency(books):
    usd = services.account_for("stripe_clearing", "USD")
    before = _snapshot()
    with pytest.raises(LedgerError, match="EUR \\+1000, USD -1000"):
        post_transaction(
            idempotency_key="fx", kind="sale", postings=[Leg(books.clearing, 1000), Leg(usd, -1000)]
        )
    assert _snapshot() == before


def test_forbidden_negative_balance_is_refused(books):
    before = _snapshot()
    with pytest.raises(LedgerError, match="negative"):
        post_transaction(
            idempotency_key="neg", kind="adjust", postings=[Leg(books.fees, 500), Leg(books.clearing, -500)]
        )
    assert _snapshot() == before


def test_paying_out_more_than_owed_is_refused(books, sale):
    sale()
    before = _snapshot()
    with pytest.raises(LedgerError, match="paid 1 EUR minor units more than it is owed"):
        post_transaction(
            idempotency_key="payout:1",
            kind="payout",
            postings=[Leg(books.paid_out, 801), Leg(books.clearing, -801)],
        )
    assert _snapshot() == before
    post_transaction(
        idempotency_key="payout:1",
        kind="payout",
        postings=[Leg(books.paid_out, 800), Leg(books.clearing, -800)],
    )


@pytest.mark.parametrize(
    ("kind", "currency", "with_organization", "message"),
    [
        ("cash", "EUR", False, "unknown account kind"),
        ("stripe_clearing", "eur", False, "three uppercase"),
        ("provider_payable", "EUR", False, "needs an organization"),
        ("stripe_fees", "EUR", True, "belongs to the platform"),
    ],
)
def test_account_for_refuses_bad_accounts(books, kind, currency, with_organization, message):
    before = _snapshot()
    with pytest.raises(LedgerError, match=message):
        services.account_for(kind, currency, books.organization if with_organization else None)
    assert _snapshot() == before


def test_account_for_returns_the_same_account(books):
    assert services.account_for("provider_payable", "EUR", books.organization) == books.payable


def test_crash_between_postings_and_leaf_leaves_nothing(books, monkeypatch):
    before = _snapshot()

    def crash(self, entry_type, canonical):
        raise RuntimeError("power cut")

    monkeypatch.setattr(services._Log, "append", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        post_transaction(
            idempotency_key="crash", kind="sale", postings=[Leg(books.clearing, 10), Leg(books.fees, -10)]
        )
    assert _snapshot() == before


def test_events_are_idempotent_leaves(books):
    event = record_event(idempotency_key="dl:1", kind="download", refs={"entitlement": "ent_1"})
    assert record_event(idempotency_key="dl:1", kind="download", refs={"entitlement": "ent_1"}).pk == event.pk
    with pytest.raises(LedgerError, match="different event"):
        record_event(idempotency_key="dl:1", kind="download", refs={"entitlement": "ent_2"})
    assert LogLeaf.objects.get(index=event.pk).entry_type == "event"


def test_refs_with_personal_data_are_refused(books):
    before = _snapshot()
    with pytest.raises(LedgerError, match="id or a hash"):
        record_event(idempotency_key="e", kind="download", refs={"buyer": "ada@example.com"})
    assert _snapshot() == before


def test_entries_for_finds_transactions_and_events_in_log_order(sale):
    other = sale(2)
    journal = sale(1)
    event = record_event(idempotency_key="dl:1", kind="download", refs={"order": "ord_1"})
    found = services.entries_for("order", "ord_1")
    assert [(entry.index, entry.entry_type, entry.kind) for entry in found] == [
        (journal.pk, "transaction", "sale"),
        (event.pk, "event", "download"),
    ]
    assert services.entries_for("order", "ord_2")[0].index == other.pk
    assert services.entries_for("order", "ord_3") == []


def test_publish_tree_head_signs_the_current_root(sale):
    sale()
    head = services.publish_tree_head()
    state = LogState.objects.get(pk=1)
    public = {signing.key_id(keys.active_private_key().public_key()): keys.active_private_key().public_key()}
    checkpoint = parse_and_verify_checkpoint(head.checkpoint, public, origin="synthex.local/ledger")
    assert (checkpoint.size, checkpoint.root) == (state.size, bytes(state.root))
    assert services.publish_tree_head().pk == head.pk
    assert services.publish_tree_head(force=True).pk != head.pk


def test_maybe_publish_respects_entry_and_time_thresholds(sale, settings):
    settings.SYNTHEX_LEDGER_HEAD_EVERY_ENTRIES = 3
    settings.SYNTHEX_LEDGER_HEAD_EVERY_MINUTES = 10
    first = services.maybe_publish_tree_head()
    assert first is not None
    sale(1)
    assert services.maybe_publish_tree_head() is None
    assert services.maybe_publish_tree_head(timezone.now() + timedelta(minutes=11)).size == first.size + 1
    sale(2), sale(3), sale(4)
    assert services.maybe_publish_tree_head().size == first.size + 4
    assert TreeHead.objects.count() == 3


def test_build_receipt_verifies_offline(sale):
    sale(1)
    record_event(idempotency_key="dl:1", kind="download", refs={"order": "ord_1"})
    indexes = [entry.index for entry in services.entries_for("order", "ord_1")]
    receipt = services.build_receipt(
        receipt={"order": "ord_1", "amount_minor": 1000, "currency": "EUR"}, leaf_indexes=indexes
    )
    public = {signing.key_id(keys.active_private_key().public_key()): keys.active_private_key().public_key()}
    report = verify.verify_receipt(receipt, public)
    assert report.failures == ()
    assert [entry["index"] for entry in receipt["entries"]] == indexes


def test_build_receipt_refuses_unknown_entries(sale):
    sale()
    with pytest.raises(LedgerError, match="no ledger entry 999"):
        services.build_receipt(receipt={"order": "ord_1"}, leaf_indexes=[999])
