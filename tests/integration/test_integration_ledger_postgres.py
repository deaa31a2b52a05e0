"""The ledger's PostgreSQL guards, on a real PostgreSQL: append-only tables refuse UPDATE, DELETE and TRUNCATE;
an unbalanced journal transaction is refused by the deferred constraint trigger at COMMIT (and at once under
SET CONSTRAINTS ... IMMEDIATE); a balanced one written the same way commits."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from exchange.ledger import schema
from exchange.ledger.audit import run_audit
from exchange.ledger.models import JournalTransaction, LogLeaf, LogState, Posting
from exchange.ledger.services import Posting as Leg
from exchange.ledger.services import account_for, post_transaction, publish_tree_head, record_event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ledger_checks_only")]


@pytest.fixture
def books(ledger_guarded: None) -> dict[str, Any]:
    clearing = account_for("stripe_clearing", "EUR")
    fees = account_for("platform_fee_revenue", "EUR")
    post_transaction(
        idempotency_key="sale:1",
        kind="sale",
        postings=[Leg(clearing, 1000), Leg(fees, -1000)],
        refs={"order": "ord_1"},
    )
    record_event(idempotency_key="dl:1", kind="download", refs={"order": "ord_1"})
    publish_tree_head()
    return {"clearing": clearing, "fees": fees}


def _execute(sql: str, params: list[Any] | tuple[Any, ...] = ()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _snapshot() -> tuple[int, int, int, list[int]]:
    return (
        JournalTransaction.objects.count(),
        Posting.objects.count(),
        LogLeaf.objects.count(),
        list(Posting.objects.order_by("id").values_list("amount_minor", flat=True)),
    )


@pytest.mark.parametrize("table", schema.APPEND_ONLY_TABLES)
@pytest.mark.parametrize(
    "statement", ["UPDATE {table} SET id = id", "DELETE FROM {table}", "TRUNCATE {table} CASCADE"]
)
def test_append_only_tables_refuse_changes(books: dict[str, Any], table: str, statement: str) -> None:
    sql = statement.format(table=table).replace("SET id = id", _noop_update(table))
    before = _snapshot()
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        _execute(sql)
    assert _snapshot() == before
    assert run_audit().ok


def _noop_update(table: str) -> str:
    column = {"ledger_logleaf": '"index"', "ledger_entryref": "value", "ledger_treehead": "size"}.get(
        table, "id"
    )
    return f"SET {column} = {column}"


def _write_transaction_by_sql(books: dict[str, Any], amounts: tuple[int, int]) -> int:
    """Postings, then the transaction row, then its leaf — the order the service uses — straight in SQL."""
    index = LogState.objects.get(pk=1).size
    for account, amount in zip((books["clearing"], books["fees"]), amounts, strict=True):
        _execute(
            "INSERT INTO ledger_posting (transaction_id, account_id, amount_minor, currency) VALUES (%s, %s, %s, 'EUR')",
            [index, account.pk, amount],
        )
    _execute(
        "INSERT INTO ledger_journaltransaction (id, idempotency_key, kind, refs, memo, created_at) "
        "VALUES (%s, %s, 'sale', '{}', '', %s)",
        [index, f"sql:{index}", timezone.now()],
    )
    canonical = f"sql transaction {index}".encode()
    _execute(
        'INSERT INTO ledger_logleaf ("index", entry_type, canonical, leaf_hash) VALUES (%s, %s, %s, %s)',
        [index, "transaction", canonical, hashlib.sha256(b"\x00" + canonical).digest()],
    )
    return index


def test_unbalanced_transaction_is_refused_at_commit_and_leaves_nothing(books: dict[str, Any]) -> None:
    before = _snapshot()
    with pytest.raises(IntegrityError, match="does not balance"):
        with transaction.atomic():
            _write_transaction_by_sql(books, (500, -400))
            # Deferred: inside the transaction every statement succeeded.
            assert Posting.objects.count() == before[1] + 2
    assert _snapshot() == before
    assert run_audit().ok


def test_set_constraints_immediate_refuses_the_unbalanced_statement_itself(books: dict[str, Any]) -> None:
    before = _snapshot()
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        _execute("SET CONSTRAINTS ledger_transaction_balanced IMMEDIATE")
        _write_transaction_by_sql(books, (500, -400))
    assert _snapshot() == before


def test_balanced_transaction_written_the_same_way_commits(books: dict[str, Any]) -> None:
    before = _snapshot()
    with transaction.atomic():
        index = _write_transaction_by_sql(books, (700, -700))
    assert JournalTransaction.objects.filter(pk=index).exists()
    assert _snapshot()[:3] == (before[0] + 1, before[1] + 2, before[2] + 1)


def test_single_posting_transaction_is_refused(books: dict[str, Any]) -> None:
    before = _snapshot()
    index = LogState.objects.get(pk=1).size
    with pytest.raises(IntegrityError, match="at least two postings"), transaction.atomic():
        _execute(
            "INSERT INTO ledger_posting (transaction_id, account_id, amount_minor, currency) VALUES (%s, %s, 5, 'EUR')",
            [index, books["clearing"].pk],
        )
        _execute(
            "INSERT INTO ledger_journaltransaction (id, idempotency_key, kind, refs, memo, created_at) "
            "VALUES (%s, 'one-leg', 'sale', '{}', '', %s)",
            [index, timezone.now()],
        )
    assert _snapshot() == before
