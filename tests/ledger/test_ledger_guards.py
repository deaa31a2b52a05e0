"""Faults: direct SQL against the journal is refused; tampering after dropping the guards, forged and
rolled-back heads are found and named by the audit (and by ``manage.py audit_ledger``)."""

import hashlib
import io

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from exchange.ledger import schema, services
from exchange.ledger.audit import Problem, register_check, run_audit
from exchange.ledger.checkpoint import sign_checkpoint
from exchange.ledger.models import LogLeaf, LogState, TreeHead
from exchange.ledger.services import record_event

INTRUDER = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"intruder").digest())


def _execute(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _refused(sql, params=()):
    with pytest.raises(IntegrityError), transaction.atomic():
        _execute(sql, params)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ledger_posting SET amount_minor = amount_minor + 1",
        "DELETE FROM ledger_posting",
        "UPDATE ledger_journaltransaction SET kind = 'gift'",
        "DELETE FROM ledger_journaltransaction",
        "UPDATE ledger_ledgerevent SET kind = 'nothing'",
        "DELETE FROM ledger_ledgerevent",
        "UPDATE ledger_logleaf SET canonical = X'00'",
        "DELETE FROM ledger_logleaf",
        "UPDATE ledger_treehead SET size = 0",
        "DELETE FROM ledger_treehead",
        "UPDATE ledger_account SET organization_id = NULL",
        "DELETE FROM ledger_account",
        "UPDATE ledger_entryref SET value = 'ord_9'",
        "DELETE FROM ledger_entryref",
    ],
)
def test_direct_sql_changes_to_journal_rows_are_refused(sale, sql):
    sale()
    record_event(idempotency_key="dl:1", kind="download", refs={"order": "ord_1"})
    services.publish_tree_head()
    before = run_audit()
    _refused(sql)
    assert run_audit() == before
    assert before.ok


def test_sql_insert_of_an_unbalanced_transaction_is_refused(books):
    index = LogState.objects.get(pk=1).size
    insert_posting = "INSERT INTO ledger_posting (transaction_id, account_id, amount_minor, currency) VALUES (%s, %s, %s, 'EUR')"
    with transaction.atomic():
        _execute(insert_posting, [index, books.clearing.pk, 500])
        _execute(insert_posting, [index, books.fees.pk, -400])
        _refused(
            "INSERT INTO ledger_journaltransaction (id, idempotency_key, kind, refs, memo, created_at) "
            "VALUES (%s, 'k', 'sale', '{}', '', %s)",
            [index, timezone.now()],
        )
        # The orphan postings would fail the deferred foreign key at commit; this test never commits them.
        transaction.set_rollback(True)


def test_sql_posting_added_to_a_recorded_transaction_is_refused(books, sale):
    journal = sale()
    _refused(
        "INSERT INTO ledger_posting (transaction_id, account_id, amount_minor, currency) VALUES (%s, %s, 1, 'EUR')",
        [journal.pk, books.clearing.pk],
    )


def test_sql_posting_in_another_currency_is_refused(books):
    _refused(
        "INSERT INTO ledger_posting (transaction_id, account_id, amount_minor, currency) VALUES (%s, %s, 1, 'USD')",
        [10**6, books.clearing.pk],
    )


def test_sql_leaf_with_a_gap_is_refused(sale):
    journal = sale()
    _refused(
        "INSERT INTO ledger_logleaf (\"index\", entry_type, canonical, leaf_hash) VALUES (%s, 'event', X'00', X'00')",
        [journal.pk + 2],
    )


def test_sql_tree_head_that_shrinks_or_overreaches_is_refused(sale):
    sale()
    head = services.publish_tree_head()
    for size in (head.size - 1, head.size + 1):
        _refused(
            "INSERT INTO ledger_treehead (size, root, checkpoint, key_id, created_at) VALUES (%s, X'00', '', '', %s)",
            [size, timezone.now()],
        )


def test_posting_altered_after_dropping_guards_is_named(books, sale):
    sale(1)
    journal = sale(2)
    sale(3)
    schema.drop_guards(connection)
    _execute(
        "UPDATE ledger_posting SET amount_minor = -700 WHERE transaction_id = %s AND account_id = %s",
        [journal.pk, books.payable.pk],
    )
    _execute(
        "UPDATE ledger_posting SET amount_minor = -300 WHERE transaction_id = %s AND account_id = %s",
        [journal.pk, books.fees.pk],
    )
    report = run_audit()
    subjects = {(problem.check, problem.subject) for problem in report.problems}
    assert ("leaf content", f"journal transaction {journal.pk} (leaf {journal.pk})") in subjects
    assert ("stored balance", f"account {books.payable.pk}") in subjects
    assert ("stored balance", f"account {books.fees.pk}") in subjects
    [content] = [problem for problem in report.problems if problem.check == "leaf content"]
    assert "postings" in content.message


def test_unbalanced_rows_after_dropping_guards_are_named(books, sale):
    journal = sale()
    schema.drop_guards(connection)
    _execute(
        "DELETE FROM ledger_posting WHERE transaction_id = %s AND account_id = %s",
        [journal.pk, books.fees.pk],
    )
    problems = {(problem.check, problem.subject, problem.message) for problem in run_audit().problems}
    assert (
        "balance",
        f"journal transaction {journal.pk}",
        "does not balance: EUR +200 minor units",
    ) in problems


def test_stored_balance_edit_is_named(books, sale):
    sale()
    _execute("UPDATE ledger_accountbalance SET balance_minor = 5 WHERE account_id = %s", [books.clearing.pk])
    [problem] = run_audit().problems
    assert problem == Problem(
        "stored balance",
        f"account {books.clearing.pk}",
        "stored balance 5 over 1 postings, recomputed 1000 over 1",
    )


def test_leaf_bytes_rewritten_consistently_are_caught_by_the_signed_head(sale):
    journal = sale()
    services.publish_tree_head()
    schema.drop_guards(connection)
    forged = bytes(LogLeaf.objects.get(index=journal.pk).canonical).replace(b'"ord_1"', b'"ord_9"')
    _execute(
        'UPDATE ledger_logleaf SET canonical = %s, leaf_hash = %s WHERE "index" = %s',
        [forged, hashlib.sha256(b"\x00" + forged).digest(), journal.pk],
    )
    checks = {problem.check for problem in run_audit().problems}
    assert {"leaf content", "log state", "tree head"} <= checks


def test_forged_head_is_detected(sale):
    sale()
    head = services.publish_tree_head()
    schema.drop_guards(connection)
    state = LogState.objects.get(pk=1)
    text = sign_checkpoint(
        "synthex.local/ledger", state.size, bytes(state.root), INTRUDER, "synthex.local/ledger"
    )
    TreeHead.objects.create(
        size=state.size, root=state.root, checkpoint=text, key_id="x", created_at=timezone.now()
    )
    [problem] = run_audit().problems
    assert problem.check == "tree head"
    assert problem.subject == f"tree head {head.pk + 1} (size {state.size})"
    assert "not signed by any published key" in problem.message


def test_head_signed_over_a_wrong_root_is_detected(sale):
    sale()
    services.publish_tree_head()
    sale(2)
    from marketplace.certification import keys

    state = LogState.objects.get(pk=1)
    text = sign_checkpoint(
        "synthex.local/ledger", state.size, b"\x07" * 32, keys.active_private_key(), "synthex.local/ledger"
    )
    TreeHead.objects.create(
        size=state.size, root=b"\x07" * 32, checkpoint=text, key_id="x", created_at=timezone.now()
    )
    [problem] = run_audit().problems
    assert "forged" in problem.message


def test_rolled_back_log_is_detected_by_a_kept_checkpoint_and_by_its_heads(sale):
    sale(1)
    services.publish_tree_head()
    last = sale(2)
    kept = services.publish_tree_head().checkpoint
    schema.drop_guards(connection)
    for table, column in (
        ("ledger_entryref", "leaf_id"),
        ("ledger_posting", "transaction_id"),
        ("ledger_journaltransaction", "id"),
        ("ledger_logleaf", '"index"'),
    ):
        _execute(f"DELETE FROM {table} WHERE {column} = %s", [last.pk])
    _execute("DELETE FROM ledger_treehead WHERE size > %s", [last.pk])
    _execute(
        "UPDATE ledger_accountbalance SET balance_minor = balance_minor / 2, posting_count = posting_count - 1"
    )
    rolled = LogState.objects.get(pk=1)
    LogState.objects.filter(pk=1).update(size=last.pk, root=rolled.root)
    report = run_audit(outside_checkpoints=[kept])
    messages = [str(problem) for problem in report.problems]
    assert (
        f"[tree head] outside checkpoint 1: covers {last.pk + 1} entries but the log holds {last.pk}: the log was rolled back"
        in messages
    )


def test_audit_command_exit_status_and_report(sale, books):
    sale()
    services.publish_tree_head()
    _refused(
        "DELETE FROM ledger_posting"
    )  # the guards dropped by earlier tests came back with their rollback
    out = io.StringIO()
    call_command("audit_ledger", stdout=out)
    assert out.getvalue().strip().endswith("OK: every ledger check holds.")
    _execute("UPDATE ledger_accountbalance SET balance_minor = 1 WHERE account_id = %s", [books.fees.pk])
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("audit_ledger", stdout=out)
    assert exit_info.value.code == 1
    assert (
        f"FAILED [stored balance] account {books.fees.pk}: stored balance 1 over 1 postings, recomputed -200 over 1"
        in out.getvalue()
    )


def test_registered_checks_run_with_the_audit(sale, monkeypatch):
    from exchange.ledger import audit

    monkeypatch.setattr(audit, "EXTRA_CHECKS", [])
    sale()

    @register_check("orders")
    def orders_have_sales():
        return [Problem("orders", "order ord_2", "paid but has no sale entry")]

    @register_check("broken")
    def broken():
        raise ValueError("boom")

    problems = [str(problem) for problem in run_audit().problems]
    assert problems == [
        "[orders] order ord_2: paid but has no sale entry",
        "[broken] check: crashed: ValueError('boom')",
    ]
