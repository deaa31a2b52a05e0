"""Concurrent appends from several real processes against one file SQLite database: no gaps, no forks."""

import multiprocessing
import os
import sqlite3
from typing import Any

import pytest

from exchange.ledger.merkle import leaf_hash, root_from_leaf_hashes

WORKERS = 4
SALES_PER_WORKER = 25


def _setup(var_dir: str) -> None:
    os.environ["SYNTHEX_VAR_DIR"] = var_dir
    os.environ["DJANGO_SETTINGS_MODULE"] = "marketplace.settings.test"
    import django

    django.setup()


def _migrate(var_dir: str) -> None:
    _setup(var_dir)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _append(var_dir: str, worker: int, start: Any) -> None:
    _setup(var_dir)
    from exchange.ledger.services import Posting, account_for, post_transaction, record_event

    clearing, fees = account_for("stripe_clearing", "EUR"), account_for("platform_fee_revenue", "EUR")
    start.wait(30)
    for number in range(SALES_PER_WORKER):
        post_transaction(
            idempotency_key=f"sale:{worker}:{number}",
            kind="sale",
            postings=[Posting(clearing, 100 + number), Posting(fees, -(100 + number))],
        )
        # Every worker records the same events: each must exist once.
        record_event(
            idempotency_key=f"shared:{number}", kind="download", refs={"entitlement": f"ent_{number}"}
        )


def _audit(var_dir: str, results: Any) -> None:
    _setup(var_dir)
    from exchange.ledger import audit

    # The workers wrote entries with no business rows behind them: the ledger's own checks only (as in
    # conftest.py's _ledger_checks_only).
    audit.EXTRA_CHECKS[:] = [
        (name, check) for name, check in audit.EXTRA_CHECKS if name in ("orders.stripe_fees", "downloads")
    ]
    results.put(audit.run_audit().text())


@pytest.mark.slow
def test_concurrent_appends_from_processes_leave_no_gap_or_fork(tmp_path):
    context = multiprocessing.get_context("spawn")
    var_dir = str(tmp_path)
    migrate = context.Process(target=_migrate, args=(var_dir,))
    migrate.start()
    migrate.join(120)
    assert migrate.exitcode == 0
    start = context.Event()
    workers = [context.Process(target=_append, args=(var_dir, worker, start)) for worker in range(WORKERS)]
    for process in workers:
        process.start()
    start.set()
    for process in workers:
        process.join(120)
    assert [process.exitcode for process in workers] == [0] * WORKERS

    database = sqlite3.connect(tmp_path / "db.sqlite3")
    rows = database.execute(
        'SELECT "index", canonical, leaf_hash FROM ledger_logleaf ORDER BY "index"'
    ).fetchall()
    expected = 2 + WORKERS * SALES_PER_WORKER + SALES_PER_WORKER  # 2 accounts, the sales, the shared events
    assert [row[0] for row in rows] == list(range(expected))
    assert all(leaf_hash(row[1]) == row[2] for row in rows)
    size, root = database.execute("SELECT size, root FROM ledger_logstate").fetchone()
    assert (size, root) == (expected, root_from_leaf_hashes([row[2] for row in rows]))
    assert database.execute("SELECT COUNT(*) FROM ledger_ledgerevent").fetchone() == (SALES_PER_WORKER,)
    heads = database.execute("SELECT size FROM ledger_treehead ORDER BY id").fetchall()
    assert heads and heads == sorted(heads)

    results = context.Queue()
    audit = context.Process(target=_audit, args=(var_dir, results))
    audit.start()
    report = results.get(timeout=120)
    audit.join(30)
    assert report.endswith("OK: every ledger check holds."), report
