"""The audited ledger: accounts, journal transactions and postings, events, the Merkle log and tree heads.

Each account opening, journal transaction and event is one leaf of the log, and its primary key IS its leaf
index (a deferred foreign key to the leaf, so a row without its leaf cannot commit). Journal rows, leaves,
refs and tree heads are append-only: database triggers refuse UPDATE and DELETE (migration 0002). Stored
balances and the log state are derived data, updated in place under the log lock and rechecked by the audit.
Amounts are integer minor units; a posting is signed, positive = debit, negative = credit.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models

from marketplace.accounts.models import Organization


@dataclass(frozen=True)
class AccountRule:
    """What an account kind is: its type, the side that increases it, whether it belongs to an organization,
    and whether its balance (in its normal sense) may go below zero."""

    type: str
    normal_side: str
    per_organization: bool
    may_go_negative: bool


class AccountKind(models.TextChoices):
    STRIPE_CLEARING = "stripe_clearing", "Stripe clearing"
    BUYER_PAYMENTS = "buyer_payments", "Buyer payments (received, not yet earned)"
    PROVIDER_PAYABLE = "provider_payable", "Provider payable"
    PROVIDER_PAID_OUT = "provider_paid_out", "Provider paid out"
    PLATFORM_FEE_REVENUE = "platform_fee_revenue", "Platform fee revenue"
    STRIPE_FEES = "stripe_fees", "Stripe fees"
    REFUNDS = "refunds", "Refunds"


DEBIT = "debit"
CREDIT = "credit"

# provider_paid_out is a contra-liability per organization: payouts debit it (and credit Stripe clearing),
# so payable - paid_out is what the platform still owes; the ledger refuses to make that negative.
ACCOUNT_RULES: dict[str, AccountRule] = {
    AccountKind.STRIPE_CLEARING: AccountRule("asset", DEBIT, False, True),
    AccountKind.BUYER_PAYMENTS: AccountRule("liability", CREDIT, False, False),
    AccountKind.PROVIDER_PAYABLE: AccountRule("liability", CREDIT, True, False),
    AccountKind.PROVIDER_PAID_OUT: AccountRule("contra-liability", DEBIT, True, False),
    AccountKind.PLATFORM_FEE_REVENUE: AccountRule("revenue", CREDIT, False, False),
    AccountKind.STRIPE_FEES: AccountRule("expense", DEBIT, False, False),
    AccountKind.REFUNDS: AccountRule("contra-revenue", DEBIT, False, False),
}


class LogLeaf(models.Model):
    """One entry of the Merkle log: ``index`` counts from 0 without gaps; ``canonical`` are the leaf bytes."""

    class EntryType(models.TextChoices):
        ACCOUNT = "account", "Account opened"
        TRANSACTION = "transaction", "Journal transaction"
        EVENT = "event", "Event"

    index = models.BigIntegerField(primary_key=True)
    entry_type = models.CharField(max_length=12, choices=EntryType.choices)
    canonical = models.BinaryField()
    leaf_hash = models.BinaryField(max_length=32)

    class Meta:
        ordering = ["index"]

    def __str__(self) -> str:
        return f"leaf {self.index} ({self.entry_type})"


class Account(models.Model):
    """A ledger account in one currency; ``pk`` is the index of the leaf that opened it."""

    leaf = models.OneToOneField(
        LogLeaf, primary_key=True, on_delete=models.PROTECT, db_column="id", related_name="account"
    )
    kind = models.CharField(max_length=30, choices=AccountKind.choices)
    currency = models.CharField(max_length=3)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_accounts"
    )
    normal_side = models.CharField(max_length=6, choices=[(DEBIT, "Debit"), (CREDIT, "Credit")])
    opened_at = models.DateTimeField()

    class Meta:
        ordering = ["leaf_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "currency", "organization"],
                condition=models.Q(organization__isnull=False),
                name="ledger_account_unique_per_organization",
            ),
            models.UniqueConstraint(
                fields=["kind", "currency"],
                condition=models.Q(organization__isnull=True),
                name="ledger_account_unique_platform",
            ),
        ]

    def __str__(self) -> str:
        owner = f" org {self.organization_id}" if self.organization_id else ""
        return f"account {self.leaf_id} {self.kind}{owner} {self.currency}"

    @property
    def id(self) -> int:
        return self.leaf_id

    @property
    def rule(self) -> AccountRule:
        return ACCOUNT_RULES[self.kind]


class AccountBalance(models.Model):
    """The stored balance of one account (debit-positive minor units), updated with each posting."""

    account = models.OneToOneField(
        Account, primary_key=True, on_delete=models.PROTECT, related_name="balance"
    )
    balance_minor = models.BigIntegerField(default=0)
    posting_count = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"balance of account {self.account_id}: {self.balance_minor}"

    @property
    def normal_balance_minor(self) -> int:
        """The balance in the account's normal sense (a credit-normal account with credits is positive)."""
        return self.balance_minor if self.account.normal_side == DEBIT else -self.balance_minor


class JournalTransaction(models.Model):
    """A balanced set of postings; ``pk`` is its leaf index; ``idempotency_key`` comes from its cause."""

    leaf = models.OneToOneField(
        LogLeaf, primary_key=True, on_delete=models.PROTECT, db_column="id", related_name="transaction"
    )
    idempotency_key = models.CharField(max_length=255, unique=True)
    kind = models.CharField(max_length=60)
    refs = models.JSONField(default=dict)
    memo = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["leaf_id"]

    def __str__(self) -> str:
        return f"transaction {self.leaf_id} {self.kind}"

    @property
    def id(self) -> int:
        return self.leaf_id


class Posting(models.Model):
    """One leg of a journal transaction: signed minor units (positive = debit) in the account's currency."""

    transaction = models.ForeignKey(JournalTransaction, on_delete=models.PROTECT, related_name="postings")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="postings")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(amount_minor=0), name="ledger_posting_nonzero")
        ]

    def __str__(self) -> str:
        return f"posting {self.pk}: {self.amount_minor} {self.currency} to account {self.account_id}"


class LedgerEvent(models.Model):
    """A non-money fact (entitlement granted, download, certificate issued ...); ``pk`` is its leaf index."""

    leaf = models.OneToOneField(
        LogLeaf, primary_key=True, on_delete=models.PROTECT, db_column="id", related_name="event"
    )
    idempotency_key = models.CharField(max_length=255, unique=True)
    kind = models.CharField(max_length=60)
    refs = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["leaf_id"]

    def __str__(self) -> str:
        return f"event {self.leaf_id} {self.kind}"

    @property
    def id(self) -> int:
        return self.leaf_id


class EntryRef(models.Model):
    """One ``key=value`` ref of a transaction or event, indexed so an order's entries are found in O(log n)."""

    leaf = models.ForeignKey(LogLeaf, on_delete=models.PROTECT, related_name="refs")
    key = models.CharField(max_length=40)
    value = models.CharField(max_length=200)

    class Meta:
        indexes = [models.Index(fields=["key", "value"], name="ledger_entryref_lookup")]

    def __str__(self) -> str:
        return f"{self.key}={self.value} of leaf {self.leaf_id}"


class LogState(models.Model):
    """The single row (pk 1) that every append locks: log size, compact-range hashes (largest subtree first,
    concatenated) and the current root. Derived from the leaves; the audit recomputes it."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    size = models.BigIntegerField(default=0)
    compact_range = models.BinaryField(default=b"")
    root = models.BinaryField(max_length=32)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="ledger_logstate_single_row")]

    def __str__(self) -> str:
        return f"log of {self.size} entries"


class TreeHead(models.Model):
    """A signed tree head: the C2SP checkpoint text over (origin, size, root, time)."""

    size = models.BigIntegerField()
    root = models.BinaryField(max_length=32)
    checkpoint = models.TextField()
    key_id = models.CharField(max_length=80)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        get_latest_by = "id"

    def __str__(self) -> str:
        return f"tree head {self.pk}: {self.size} entries"
