"""Writes to the ledger: open accounts, post balanced journal transactions, record events, publish heads.

Every write takes the log lock (an UPDATE of the single log-state row: SQLite's write lock, a PostgreSQL row
lock), allocates the next leaf index, inserts its rows and its leaf, and advances the compact range, all in
one database transaction: an entry and its leaf commit together or not at all, and concurrent writers from
any number of processes get consecutive indexes (no gaps, no forks). Call these inside the caller's
``transaction.atomic()`` so the business row and its ledger entries commit together.
"""

from __future__ import annotations

import base64
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from exchange.ledger import leaves
from exchange.ledger.checkpoint import sign_checkpoint
from exchange.ledger.merkle import EMPTY_ROOT, HASH_SIZE, CompactRange, leaf_hash
from exchange.ledger.models import (
    ACCOUNT_RULES,
    Account,
    AccountBalance,
    AccountKind,
    JournalTransaction,
    LedgerEvent,
    LogLeaf,
    LogState,
    TreeHead,
)
from exchange.ledger.selectors import LedgerEntry, entries_for, log_tree
from exchange.money import validate_currency
from marketplace.accounts.models import Organization
from marketplace.certification import keys, signing

__all__ = [
    "LedgerEntry",
    "LedgerError",
    "Posting",
    "account_for",
    "build_receipt",
    "entries_for",
    "ledger_origin",
    "maybe_publish_tree_head",
    "post_transaction",
    "publish_tree_head",
    "record_event",
]

logger = logging.getLogger(__name__)

DEFAULT_ORIGIN = "synthex.local/ledger"
MAX_KEY_LENGTH = 255
_REFS_FIELD = JournalTransaction._meta.get_field("refs")


class LedgerError(Exception):
    """A ledger write was refused; nothing was written. ``code`` is machine-readable."""

    def __init__(self, message: str, code: str = "ledger_refused") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Posting:
    """One leg to post: ``amount_minor`` in the account's currency, positive = debit, negative = credit."""

    account: Account
    amount_minor: int


def ledger_origin() -> str:
    """The log's origin line in checkpoints (setting ``SYNTHEX_LEDGER_ORIGIN``)."""
    return settings.SYNTHEX_LEDGER_ORIGIN or DEFAULT_ORIGIN


def _head_every_entries() -> int:
    return int(settings.SYNTHEX_LEDGER_HEAD_EVERY_ENTRIES)


def _head_every_minutes() -> int:
    return int(settings.SYNTHEX_LEDGER_HEAD_EVERY_MINUTES)


class _Log:
    """The locked log state during one write: hands out indexes and appends leaves (raw SQL: this is the hot
    path of every ledger write, and the ORM's query building cost more than the database work)."""

    def __init__(self) -> None:
        self.cursor = connection.cursor()
        # The no-op UPDATE takes the write lock now (SQLite) or the row lock (PostgreSQL), before anything is
        # read, so two writers can never both see the same size.
        self.cursor.execute(
            "UPDATE ledger_logstate SET size = size WHERE id = 1 RETURNING size, compact_range"
        )
        row = self.cursor.fetchone()
        if row is None:
            LogState.objects.create(id=1, size=0, compact_range=b"", root=EMPTY_ROOT)
            row = (0, b"")
        size, stored = row
        stored = bytes(stored)
        self.range = CompactRange(size, [stored[i : i + HASH_SIZE] for i in range(0, len(stored), HASH_SIZE)])
        self.start_size = size

    @property
    def next_index(self) -> int:
        return self.range.size

    @property
    def root(self) -> bytes:
        return self.range.root()

    def append(self, entry_type: str, canonical: bytes) -> None:
        hashed = leaf_hash(canonical)
        self.cursor.execute(
            'INSERT INTO ledger_logleaf ("index", entry_type, canonical, leaf_hash) VALUES (%s, %s, %s, %s)',
            [self.range.size, entry_type, canonical, hashed],
        )
        self.range.append(hashed)

    def save(self) -> None:
        self.cursor.execute(
            "UPDATE ledger_logstate SET size = %s, compact_range = %s, root = %s WHERE id = 1",
            [self.range.size, b"".join(self.range.hashes), self.range.root()],
        )
        self.cursor.close()
        every = _head_every_entries()
        if every > 0 and self.range.size // every > self.start_size // every:
            from exchange.ledger.tasks import publish_tree_head_task

            transaction.on_commit(publish_tree_head_task.delay)


def _refs(refs: Mapping[str, str] | None) -> dict[str, str]:
    try:
        return leaves.check_refs(refs or {})
    except leaves.LeafError as error:
        raise LedgerError(str(error), "invalid_refs") from error


def _check_key_and_kind(idempotency_key: str, kind: str) -> None:
    if not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= MAX_KEY_LENGTH:
        raise LedgerError(f"an idempotency key is 1 to {MAX_KEY_LENGTH} characters", "invalid_key")
    try:
        leaves.check_kind(kind)
    except leaves.LeafError as error:
        raise LedgerError(str(error), "invalid_kind") from error


def _insert_refs(log: _Log, index: int, refs: Mapping[str, str]) -> None:
    if refs:
        log.cursor.executemany(
            "INSERT INTO ledger_entryref (leaf_id, key, value) VALUES (%s, %s, %s)",
            [(index, key, value) for key, value in refs.items()],
        )


def account_for(kind: str, currency: str, organization: Organization | None = None) -> Account:
    """Return the account of ``kind`` in ``currency`` (per organization for provider kinds), opening it on
    first use. Opening writes the account's leaf (id, kind, currency, organization id) to the log.

    Raises LedgerError for an unknown kind or currency, or an organization given where the kind has none
    (or missing where it needs one).
    """
    rule = ACCOUNT_RULES.get(kind)
    if rule is None:
        raise LedgerError(
            f"unknown account kind {kind!r}; known: {', '.join(AccountKind.values)}", "invalid_account"
        )
    try:
        validate_currency(currency)
    except ValueError as error:
        raise LedgerError(str(error), "invalid_currency") from error
    if rule.per_organization != (organization is not None):
        needs = (
            "needs an organization"
            if rule.per_organization
            else "belongs to the platform, not an organization"
        )
        raise LedgerError(f"a {kind} account {needs}", "invalid_account")
    lookup = {"kind": kind, "currency": currency, "organization": organization}
    account = Account.objects.filter(**lookup).first()
    if account is not None:
        return account
    with transaction.atomic():
        log = _Log()
        account = Account.objects.filter(**lookup).first()
        if account is not None:
            return account
        now = timezone.now()
        index = log.next_index
        account = Account.objects.create(
            leaf_id=index,
            kind=kind,
            currency=currency,
            organization=organization,
            normal_side=rule.normal_side,
            opened_at=now,
        )
        AccountBalance.objects.create(account=account)
        log.append(
            LogLeaf.EntryType.ACCOUNT,
            leaves.account_leaf(
                account_id=index,
                kind=kind,
                currency=currency,
                organization_id=organization.pk if organization else None,
                time=now,
            ),
        )
        log.save()
    return account


def _normalized_postings(postings: Sequence[Posting]) -> list[tuple[int, int]]:
    return sorted((posting.account.pk, posting.amount_minor) for posting in postings)


def _check_postings(postings: Sequence[Posting]) -> None:
    if len(postings) < 2:
        raise LedgerError("a journal transaction needs at least two postings", "unbalanced")
    totals: dict[str, int] = defaultdict(int)
    for posting in postings:
        if (
            not isinstance(posting, Posting)
            or not isinstance(posting.account, Account)
            or posting.account.pk is None
        ):
            raise LedgerError("each posting needs an account from account_for()", "invalid_posting")
        amount = posting.amount_minor
        if not isinstance(amount, int) or isinstance(amount, bool) or amount == 0:
            raise LedgerError(
                f"a posting amount is a non-zero integer of minor units, got {amount!r}", "invalid_posting"
            )
        if abs(amount) > leaves.MAX_SAFE_INTEGER:
            raise LedgerError(
                f"a posting amount must stay within ±2**53 minor units, got {amount}", "invalid_posting"
            )
        totals[posting.account.currency] += amount
    unbalanced = {currency: total for currency, total in totals.items() if total}
    if unbalanced:
        detail = ", ".join(f"{currency} {total:+d}" for currency, total in sorted(unbalanced.items()))
        raise LedgerError(f"the postings do not balance per currency ({detail} minor units)", "unbalanced")


def _new_balances(log: _Log, postings: Sequence[Posting]) -> dict[int, int]:
    """Return the new debit-positive balance of each touched account, or raise LedgerError when a balance
    that may not go negative (in its normal sense) would, or when a payout would exceed what is owed."""
    deltas: dict[int, int] = defaultdict(int)
    accounts = {}
    for posting in postings:
        deltas[posting.account.pk] += posting.amount_minor
        accounts[posting.account.pk] = posting.account
    stored = _stored_balances(log, list(deltas))
    balances = {pk: stored.get(pk, 0) + delta for pk, delta in deltas.items()}
    for pk, balance in balances.items():
        account = accounts[pk]
        normal = balance if account.normal_side == "debit" else -balance
        if normal < 0 and not ACCOUNT_RULES[account.kind].may_go_negative:
            raise LedgerError(
                f"the posting would make account {pk} ({account.kind} {account.currency}) negative: {normal}",
                "negative_balance",
            )
    provider_kinds = (AccountKind.PROVIDER_PAYABLE, AccountKind.PROVIDER_PAID_OUT)
    pairs = {(a.organization_id, a.currency) for a in accounts.values() if a.kind in provider_kinds}
    for organization_id, currency in sorted(pairs):
        log.cursor.execute(
            "SELECT id FROM ledger_account WHERE organization_id = %s AND currency = %s AND kind IN (%s, %s)",
            [organization_id, currency, *provider_kinds],
        )
        current = _stored_balances(log, [row[0] for row in log.cursor.fetchall()])
        current.update({pk: balance for pk, balance in balances.items() if pk in current})
        # payable is credit-normal (stored negative), paid out debit-normal: owed = payable - paid out.
        owed = -sum(current.values())
        if owed < 0:
            raise LedgerError(
                f"organization {organization_id} would be paid {-owed} {currency} minor units more than it is owed",
                "overpaid",
            )
    return balances


def _stored_balances(log: _Log, account_ids: Sequence[int]) -> dict[int, int]:
    if not account_ids:
        return {}
    marks = ", ".join(["%s"] * len(account_ids))
    log.cursor.execute(
        f"SELECT account_id, balance_minor FROM ledger_accountbalance WHERE account_id IN ({marks})",
        list(account_ids),
    )
    return dict(log.cursor.fetchall())


def post_transaction(
    *,
    idempotency_key: str,
    kind: str,
    postings: Sequence[Posting],
    refs: Mapping[str, str] | None = None,
    memo: str = "",
) -> JournalTransaction:
    """Post a balanced journal transaction and its Merkle leaf, atomically.

    Amounts are minor units, positive = debit. Guarantees: two or more postings balancing per currency, each
    in its account's currency; no forbidden negative balance; the stored balances move by the postings. The
    same ``idempotency_key`` again returns the original transaction and posts nothing; with other postings
    or another kind it raises LedgerError. ``refs`` carry ids and hashes only (see leaves.check_refs); the
    memo stays in the database, the leaf holds its SHA-256. Raises LedgerError, writing nothing, on refusal.
    """
    _check_key_and_kind(idempotency_key, kind)
    checked_refs = _refs(refs)
    if not isinstance(memo, str):
        raise LedgerError("a memo is text", "invalid_memo")
    _check_postings(postings)
    with transaction.atomic():
        log = _Log()
        log.cursor.execute(
            "SELECT id, kind FROM ledger_journaltransaction WHERE idempotency_key = %s", [idempotency_key]
        )
        found = log.cursor.fetchone()
        if found is not None:
            log.cursor.execute(
                "SELECT account_id, amount_minor FROM ledger_posting WHERE transaction_id = %s", [found[0]]
            )
            if sorted(log.cursor.fetchall()) != _normalized_postings(postings) or found[1] != kind:
                raise LedgerError("idempotency key reused with different postings", "idempotency_conflict")
            return JournalTransaction.objects.get(pk=found[0])
        balances = _new_balances(log, postings)
        index = log.next_index
        now = timezone.now()
        log.cursor.executemany(
            "INSERT INTO ledger_posting (transaction_id, account_id, amount_minor, currency) VALUES (%s, %s, %s, %s)",
            [(index, p.account.pk, p.amount_minor, p.account.currency) for p in postings],
        )
        journal = JournalTransaction(
            leaf_id=index,
            idempotency_key=idempotency_key,
            kind=kind,
            refs=checked_refs,
            memo=memo,
            created_at=now,
        )
        log.cursor.execute(
            "INSERT INTO ledger_journaltransaction (id, idempotency_key, kind, refs, memo, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [
                index,
                idempotency_key,
                kind,
                _REFS_FIELD.get_db_prep_save(checked_refs, connection),
                memo,
                connection.ops.adapt_datetimefield_value(now),
            ],
        )
        counts: dict[int, int] = defaultdict(int)
        for posting in postings:
            counts[posting.account.pk] += 1
        log.cursor.executemany(
            "UPDATE ledger_accountbalance SET balance_minor = %s, posting_count = posting_count + %s "
            "WHERE account_id = %s",
            [(balance, counts[pk], pk) for pk, balance in balances.items()],
        )
        _insert_refs(log, index, checked_refs)
        log.append(
            LogLeaf.EntryType.TRANSACTION,
            leaves.transaction_leaf(
                transaction_id=index,
                kind=kind,
                key_sha256=leaves.sha256_hex(idempotency_key),
                postings=[
                    leaves.LeafPosting(posting.account.pk, posting.amount_minor, posting.account.currency)
                    for posting in postings
                ],
                refs=checked_refs,
                memo_sha256=leaves.sha256_hex(memo) if memo else None,
                time=now,
            ),
        )
        log.save()
    journal._state.adding = False
    journal._state.db = connection.alias
    return journal


def record_event(*, idempotency_key: str, kind: str, refs: Mapping[str, str]) -> LedgerEvent:
    """Record a non-money event (``entitlement.granted``, ``download``, ``certificate.issued`` ...) as a leaf.

    Idempotent like :func:`post_transaction`: the same key returns the original event (LedgerError when its
    kind or refs differ). Refs carry ids and hashes only. Raises LedgerError, writing nothing, on refusal.
    """
    _check_key_and_kind(idempotency_key, kind)
    checked_refs = _refs(refs)
    with transaction.atomic():
        log = _Log()
        original = LedgerEvent.objects.filter(idempotency_key=idempotency_key).first()
        if original is not None:
            if original.kind != kind or original.refs != checked_refs:
                raise LedgerError("idempotency key reused with a different event", "idempotency_conflict")
            return original
        index = log.next_index
        now = timezone.now()
        event = LedgerEvent.objects.create(
            leaf_id=index, idempotency_key=idempotency_key, kind=kind, refs=checked_refs, created_at=now
        )
        _insert_refs(log, index, checked_refs)
        log.append(
            LogLeaf.EntryType.EVENT,
            leaves.event_leaf(
                event_id=index,
                kind=kind,
                key_sha256=leaves.sha256_hex(idempotency_key),
                refs=checked_refs,
                time=now,
            ),
        )
        log.save()
    return event


def publish_tree_head(*, force: bool = False) -> TreeHead:
    """Sign and store a tree head for the whole log now, with the platform's active key.

    Returns the latest head unchanged when it already covers every entry (unless ``force``). Heads are
    written under the log lock, so their sizes never decrease.
    """
    with transaction.atomic():
        log = _Log()
        latest = TreeHead.objects.order_by("-id").first()
        if latest is not None and latest.size == log.next_index and not force:
            return latest
        private_key = keys.active_private_key()
        now = timezone.now()
        origin = ledger_origin()
        root = log.root
        text = sign_checkpoint(origin, log.next_index, root, private_key, origin, issued_at=now)
        return TreeHead.objects.create(
            size=log.next_index,
            root=root,
            checkpoint=text,
            key_id=signing.key_id(private_key.public_key()),
            created_at=now,
        )


def maybe_publish_tree_head(now: datetime | None = None) -> TreeHead | None:
    """Publish a head when none exists, when ``SYNTHEX_LEDGER_HEAD_EVERY_ENTRIES`` new entries are uncovered,
    or when the latest head is older than ``SYNTHEX_LEDGER_HEAD_EVERY_MINUTES`` and entries are uncovered."""
    now = now or timezone.now()
    size = LogState.objects.filter(pk=1).values_list("size", flat=True).first() or 0
    latest = TreeHead.objects.order_by("-id").first()
    if latest is None:
        return publish_tree_head()
    uncovered = size - latest.size
    every = _head_every_entries()
    stale = latest.created_at <= now - timedelta(minutes=_head_every_minutes())
    if uncovered > 0 and ((every > 0 and uncovered >= every) or stale):
        return publish_tree_head()
    return None


def build_receipt(*, receipt: Mapping[str, Any], leaf_indexes: Sequence[int]) -> dict[str, Any]:
    """Return a signed receipt (docs/ledger-format.md): ``receipt``, each entry's leaf bytes (base64) with its
    inclusion proof (hex) in the latest signed head, the head's checkpoint text, and an Ed25519 signature.

    Publishes a new head first when the latest one does not cover every listed entry. Raises LedgerError for
    an index that is not in the log.
    """
    indexes = sorted(set(leaf_indexes))
    size = LogState.objects.filter(pk=1).values_list("size", flat=True).first() or 0
    for index in indexes:
        if not isinstance(index, int) or not 0 <= index < size:
            raise LedgerError(f"there is no ledger entry {index!r}", "unknown_entry")
    head = TreeHead.objects.order_by("-id").first()
    if head is None or (indexes and head.size <= indexes[-1]):
        head = publish_tree_head()
    tree = log_tree()
    stored = dict(LogLeaf.objects.filter(index__in=indexes).values_list("index", "canonical"))
    entries = [
        {
            "index": index,
            "leaf": base64.b64encode(bytes(stored[index])).decode("ascii"),
            "proof": [value.hex() for value in tree.inclusion_proof(index, head.size)],
        }
        for index in indexes
    ]
    document = {"receipt": dict(receipt), "entries": entries, "checkpoint": head.checkpoint}
    return signing.sign_document(document, keys.active_private_key())
