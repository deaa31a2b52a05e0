"""The ledger audit behind ``manage.py audit_ledger``: every invariant, recomputed from the stored rows.

One streaming pass over the leaves in index order, merged with the account, transaction, posting, event and
ref rows (server-side cursors, so memory stays at the Merkle tree's ~64 bytes per leaf plus one entry per
account). It checks that:

- leaf indexes run from 0 without gaps, and every leaf rehashes to its stored hash;
- every account, transaction and event has exactly one leaf, and its leaf equals the canonical bytes rebuilt
  from its current rows (a row altered after it was logged is named), and its refs rows match its refs;
- every transaction has two or more postings, each in its account's currency, balancing per currency;
- no account whose kind forbids it ever went negative, and no organization was ever paid more than owed;
- the stored balances equal the balances recomputed from the postings;
- the log state (size, compact range, root) equals the tree rebuilt from the leaves;
- every signed tree head verifies against the published keys, is for this log's origin, matches the root of
  its prefix of the log, never shrinks, and is consistent with the head before it (so the Merkle root
  equals the latest signed head); outside checkpoints given by an auditor are checked the same way;
- every check other apps registered (see :func:`register_check`) holds.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import connection

from exchange.ledger import leaves
from exchange.ledger.checkpoint import CheckpointError, parse_and_verify_checkpoint
from exchange.ledger.merkle import MerkleTree, leaf_hash, verify_consistency
from exchange.ledger.models import ACCOUNT_RULES, DEBIT, AccountKind
from marketplace.certification.models import SigningKey
from marketplace.certification.signing import load_public_key_pem


@dataclass(frozen=True)
class Problem:
    """One broken invariant: the check's name, the entry or row it concerns, and a plain sentence."""

    check: str
    subject: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.subject}: {self.message}"


@dataclass(frozen=True)
class AuditReport:
    """``ok`` only when ``problems`` is empty; ``notes`` are the facts that were checked."""

    problems: tuple[Problem, ...]
    notes: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        """The plain report: notes, then one line per problem, then the verdict."""
        lines = [f"ok: {note}" for note in self.notes]
        lines += [f"FAILED {problem}" for problem in self.problems]
        lines.append(
            "OK: every ledger check holds." if self.ok else f"{len(self.problems)} problem(s) found."
        )
        return "\n".join(lines)


Check = Callable[[], Iterable[Problem]]

# Checks other apps add (orders: each paid order has its sale entries; delivery: each download its event).
# An app registers from its AppConfig.ready() by importing its checks module, which calls register_check.
EXTRA_CHECKS: list[tuple[str, Check]] = []


def register_check(name: str) -> Callable[[Check], Check]:
    """Decorator: add ``check`` (returning Problems) to every audit run under ``name``; registering the same
    name again replaces it, so re-imports are harmless."""

    def decorator(check: Check) -> Check:
        EXTRA_CHECKS[:] = [(existing, fn) for existing, fn in EXTRA_CHECKS if existing != name]
        EXTRA_CHECKS.append((name, check))
        return check

    return decorator


def published_keys() -> dict[str, Ed25519PublicKey]:
    """Every public key the platform recorded (active and retired), by key id."""
    return {record.key_id: load_public_key_pem(record.public_key_pem) for record in SigningKey.objects.all()}


def _rows(sql: str, chunk: int = 20_000) -> Iterator[tuple[Any, ...]]:
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql)
        while True:
            batch = cursor.fetchmany(chunk)
            if not batch:
                return
            yield from batch


class _Stream:
    """A peekable iterator over rows ordered by their first column."""

    def __init__(self, rows: Iterator[tuple[Any, ...]]) -> None:
        self._rows = rows
        self.head: tuple[Any, ...] | None = next(rows, None)

    def take(self) -> tuple[Any, ...]:
        row = self.head
        if row is None:
            raise StopIteration
        self.head = next(self._rows, None)
        return row

    def take_while(self, key: int) -> list[tuple[Any, ...]]:
        taken = []
        while self.head is not None and self.head[0] == key:
            taken.append(self.take())
        return taken

    def skip_before(self, key: int) -> list[tuple[Any, ...]]:
        skipped = []
        while self.head is not None and self.head[0] < key:
            skipped.append(self.take())
        return skipped


def _utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str | bytes) else dict(value or {})


def _differences(stored: bytes, rebuilt: bytes) -> str:
    try:
        old, new = json.loads(stored), json.loads(rebuilt)
    except ValueError:
        return "its leaf bytes are not JSON"
    fields = sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))
    return "its rows differ from its logged leaf in " + ", ".join(fields) + " (altered after it was logged)"


class _Auditor:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.notes: list[str] = []
        self.tree = MerkleTree()
        self.accounts: dict[int, tuple[str, str, int | None, str]] = {}
        self.balances: dict[int, int] = defaultdict(int)
        self.counts: dict[int, int] = defaultdict(int)
        self.went_negative: set[int] = set()
        self.overpaid: set[tuple[int | None, str]] = set()
        self.provider_pairs: dict[tuple[int | None, str], list[int]] = defaultdict(list)
        self.entry_counts: dict[str, int] = defaultdict(int)

    def fail(self, check: str, subject: str, message: str) -> None:
        self.problems.append(Problem(check, subject, message))

    def scan(self) -> None:
        leaves_stream = _rows(
            'SELECT "index", entry_type, canonical, leaf_hash FROM ledger_logleaf ORDER BY "index"'
        )
        accounts = _Stream(
            _rows(
                "SELECT id, kind, currency, organization_id, normal_side, opened_at FROM ledger_account ORDER BY id"
            )
        )
        transactions = _Stream(
            _rows(
                "SELECT id, idempotency_key, kind, refs, memo, created_at FROM ledger_journaltransaction ORDER BY id"
            )
        )
        postings = _Stream(
            _rows(
                "SELECT transaction_id, id, account_id, amount_minor, currency FROM ledger_posting "
                "ORDER BY transaction_id, id"
            )
        )
        events = _Stream(
            _rows("SELECT id, idempotency_key, kind, refs, created_at FROM ledger_ledgerevent ORDER BY id")
        )
        refs = _Stream(_rows("SELECT leaf_id, key, value FROM ledger_entryref ORDER BY leaf_id, id"))
        streams = {"account": accounts, "transaction": transactions, "event": events}
        expected = 0
        for index, entry_type, canonical, stored_hash in leaves_stream:
            canonical = bytes(canonical)
            self._log_leaf(index, expected, canonical, bytes(stored_hash))
            expected = index + 1
            for name, stream in (*streams.items(), ("posting", postings), ("ref", refs)):
                for row in stream.skip_before(index):
                    self.fail("orphan", f"{name} row of {row[0]}", "has no leaf in the log")
            entry_stream = streams.get(entry_type)
            if entry_stream is None or entry_stream.head is None or entry_stream.head[0] != index:
                self.fail("orphan", f"leaf {index}", f"logs a {entry_type} that is not in the database")
                postings.take_while(index)
                refs.take_while(index)
                continue
            row = entry_stream.take()
            self.entry_counts[entry_type] += 1
            rebuilt, subject = self._rebuilt_entry(entry_type, index, row, postings)
            if entry_type != "account":
                self._refs(subject, _json(row[3]), refs.take_while(index))
            if rebuilt != canonical:
                self.fail("leaf content", f"{subject} (leaf {index})", _differences(canonical, rebuilt))
        for name, stream in (*streams.items(), ("posting", postings), ("ref", refs)):
            while stream.head is not None:
                self.fail("orphan", f"{name} row of {stream.take()[0]}", "has no leaf in the log")

    def _log_leaf(self, index: int, expected: int, canonical: bytes, stored_hash: bytes) -> None:
        """Add leaf ``index`` to the rebuilt tree, failing a gap before it or a stored hash that is not its own."""
        if index != expected:
            self.fail("log", f"leaves {expected} to {index - 1}", "missing from the log (gap in the indexes)")
        hashed = leaf_hash(canonical)
        self.tree.append(hashed)
        if stored_hash != hashed:
            self.fail("leaf hash", f"leaf {index}", "its stored hash is not SHA-256(0x00 || its bytes)")

    def _rebuilt_entry(
        self, entry_type: str, index: int, row: tuple[Any, ...], postings: _Stream
    ) -> tuple[bytes, str]:
        """The canonical bytes leaf ``index`` should hold, rebuilt from its database row (a transaction takes
        its postings from ``postings``), and how the audit names the entry."""
        if entry_type == "account":
            return self._account(row), f"account {index}"
        if entry_type == "transaction":
            return self._transaction(row, postings.take_while(index)), f"journal transaction {index}"
        rebuilt = leaves.event_leaf(
            event_id=index,
            kind=row[2],
            key_sha256=leaves.sha256_hex(row[1]),
            refs=_json(row[3]),
            time=_utc(row[4]),
        )
        return rebuilt, f"event {index}"

    def _account(self, row: tuple[Any, ...]) -> bytes:
        index, kind, currency, organization_id, normal_side, opened_at = row
        self.accounts[index] = (kind, currency, organization_id, normal_side)
        if kind in (AccountKind.PROVIDER_PAYABLE, AccountKind.PROVIDER_PAID_OUT):
            self.provider_pairs[(organization_id, currency)].append(index)
        rule = ACCOUNT_RULES.get(kind)
        if rule is None or rule.normal_side != normal_side:
            self.fail(
                "account",
                f"account {index}",
                f"kind {kind!r} with normal side {normal_side!r} is not a known rule",
            )
        return leaves.account_leaf(
            account_id=index,
            kind=kind,
            currency=currency,
            organization_id=organization_id,
            time=_utc(opened_at),
        )

    def _transaction(self, row: tuple[Any, ...], postings: Sequence[tuple[Any, ...]]) -> bytes:
        index, key, kind, refs, memo, created_at = row
        subject = f"journal transaction {index}"
        totals: dict[str, int] = defaultdict(int)
        legs = []
        for _transaction_id, posting_id, account_id, amount, currency in postings:
            legs.append(leaves.LeafPosting(account_id, amount, currency))
            totals[currency] += amount
            account = self.accounts.get(account_id)
            if account is None:
                self.fail(
                    "posting",
                    f"posting {posting_id} of {subject}",
                    f"names account {account_id}, not opened before it",
                )
                continue
            if account[1] != currency:
                self.fail(
                    "posting",
                    f"posting {posting_id} of {subject}",
                    f"is in {currency}, its account in {account[1]}",
                )
            self.balances[account_id] += amount
            self.counts[account_id] += 1
            self._check_negative(account_id, subject)
        if len(postings) < 2:
            self.fail("balance", subject, f"has {len(postings)} posting(s); a transaction needs two or more")
        unbalanced = {currency: total for currency, total in totals.items() if total}
        if unbalanced:
            detail = ", ".join(f"{currency} {total:+d}" for currency, total in sorted(unbalanced.items()))
            self.fail("balance", subject, f"does not balance: {detail} minor units")
        return leaves.transaction_leaf(
            transaction_id=index,
            kind=kind,
            key_sha256=leaves.sha256_hex(key),
            postings=legs,
            refs=_json(refs),
            memo_sha256=leaves.sha256_hex(memo) if memo else None,
            time=_utc(created_at),
        )

    def _check_negative(self, account_id: int, subject: str) -> None:
        kind, currency, organization_id, normal_side = self.accounts[account_id]
        balance = self.balances[account_id]
        normal = balance if normal_side == DEBIT else -balance
        rule = ACCOUNT_RULES.get(kind)
        if (
            normal < 0
            and rule is not None
            and not rule.may_go_negative
            and account_id not in self.went_negative
        ):
            self.went_negative.add(account_id)
            self.fail(
                "negative balance",
                f"account {account_id} ({kind} {currency})",
                f"went to {normal} at {subject}",
            )
        pair = (organization_id, currency)
        if pair in self.provider_pairs and pair not in self.overpaid:
            owed = -sum(self.balances[pk] for pk in self.provider_pairs[pair])
            if owed < 0:
                self.overpaid.add(pair)
                self.fail(
                    "negative balance",
                    f"organization {organization_id} ({currency})",
                    f"was paid {-owed} more than owed at {subject}",
                )

    def _refs(self, subject: str, refs: dict[str, Any], rows: Sequence[tuple[Any, ...]]) -> None:
        if sorted((key, value) for _leaf, key, value in rows) != sorted(refs.items()):
            self.fail("refs", subject, "its indexed refs differ from its refs")

    def check_balances(self) -> None:
        stored = {
            row[0]: (row[1], row[2])
            for row in _rows("SELECT account_id, balance_minor, posting_count FROM ledger_accountbalance")
        }
        for account_id in sorted(set(self.accounts) | set(stored)):
            recomputed = (self.balances.get(account_id, 0), self.counts.get(account_id, 0))
            if account_id not in stored:
                self.fail("stored balance", f"account {account_id}", "has no stored balance row")
            elif stored[account_id] != recomputed:
                self.fail(
                    "stored balance",
                    f"account {account_id}",
                    f"stored balance {stored[account_id][0]} over {stored[account_id][1]} postings, "
                    f"recomputed {recomputed[0]} over {recomputed[1]}",
                )

    def check_state(self) -> None:
        rows = list(_rows("SELECT size, compact_range, root FROM ledger_logstate WHERE id = 1"))
        if not rows:
            self.fail("log state", "log state", "the log-state row is missing")
            return
        size, compact, root = rows[0][0], bytes(rows[0][1]), bytes(rows[0][2])
        tree = self.tree
        if size != tree.size:
            self.fail("log state", "log state", f"says {size} entries, the log holds {tree.size}")
            return
        if root != tree.root():
            self.fail("log state", "log state", "its root is not the root of the leaves")
        frontier, start = [], 0
        for bit in reversed(range(tree.size.bit_length())):
            if tree.size >> bit & 1:
                frontier.append(tree.subtree_hash(start, start + (1 << bit)))
                start += 1 << bit
        if compact != b"".join(frontier):
            self.fail("log state", "log state", "its compact range is not the frontier of the leaves")

    def check_heads(self, keys: Mapping[str, Ed25519PublicKey], origin: str, outside: Sequence[str]) -> None:
        previous = None
        heads = list(_rows("SELECT id, size, root, checkpoint FROM ledger_treehead ORDER BY id"))
        for head_id, size, root, text in heads:
            subject = f"tree head {head_id} (size {size})"
            checkpoint = self._checkpoint(subject, text, keys, origin)
            if checkpoint is None:
                continue
            if (checkpoint.size, checkpoint.root) != (size, bytes(root)):
                self.fail("tree head", subject, "its stored size or root differs from its signed checkpoint")
            if previous is not None and checkpoint.size < previous.size:
                self.fail(
                    "tree head",
                    subject,
                    f"covers fewer entries than the head before it ({previous.size}): rolled back",
                )
            elif (
                previous is not None
                and checkpoint.size <= self.tree.size
                and not verify_consistency(
                    previous.size,
                    checkpoint.size,
                    previous.root,
                    checkpoint.root,
                    self.tree.consistency_proof(previous.size, checkpoint.size),
                )
            ):
                self.fail("tree head", subject, "is not consistent with the head before it")
            previous = checkpoint
        for position, text in enumerate(outside):
            self._checkpoint(f"outside checkpoint {position + 1}", text, keys, origin)
        if previous is None:
            self.notes.append("no signed tree head published yet")
        else:
            uncovered = self.tree.size - previous.size
            self.notes.append(
                f"{len(heads)} signed tree heads verified; the latest covers {previous.size} of {self.tree.size} "
                f"entries ({max(uncovered, 0)} not yet covered)"
            )

    def _checkpoint(self, subject: str, text: str, keys: Mapping[str, Ed25519PublicKey], origin: str) -> Any:
        try:
            checkpoint = parse_and_verify_checkpoint(text, keys, origin=origin)
        except CheckpointError as error:
            self.fail("tree head", subject, f"not a valid signed checkpoint: {error}")
            return None
        if checkpoint.size > self.tree.size:
            self.fail(
                "tree head",
                subject,
                f"covers {checkpoint.size} entries but the log holds {self.tree.size}: the log was rolled back",
            )
            return None
        if self.tree.root(checkpoint.size) != checkpoint.root:
            self.fail(
                "tree head",
                subject,
                "its root is not the root of the log's first entries: the log was rewritten or the head forged",
            )
            return None
        return checkpoint


def run_audit(
    *,
    keys: Mapping[str, Ed25519PublicKey] | None = None,
    outside_checkpoints: Sequence[str] = (),
    origin: str | None = None,
) -> AuditReport:
    """Run every check (module docstring) and return the report; never raises for a broken ledger.

    ``keys`` default to every key the platform recorded; an auditor can pass the keys.json they trust.
    ``outside_checkpoints`` are signed heads kept outside the database (a rolled-back log fails them).
    """
    from exchange.ledger.services import ledger_origin

    auditor = _Auditor()
    auditor.scan()
    auditor.check_balances()
    auditor.check_state()
    auditor.check_heads(
        keys if keys is not None else published_keys(), origin or ledger_origin(), outside_checkpoints
    )
    counts = auditor.entry_counts
    auditor.notes.insert(
        0,
        f"{auditor.tree.size} entries rehashed: {counts['account']} accounts, {counts['transaction']} journal "
        f"transactions, {counts['event']} events; root {auditor.tree.root().hex()}",
    )
    for name, check in EXTRA_CHECKS:
        try:
            found = list(check())
        except Exception as error:  # a broken extra check must not hide the others' results
            found = [Problem(name, "check", f"crashed: {error!r}")]
        auditor.problems.extend(found)
        auditor.notes.append(f"check {name}: {len(found)} problem(s)")
    return AuditReport(tuple(auditor.problems), tuple(auditor.notes))
