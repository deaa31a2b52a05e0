"""Ledger benchmark on a file SQLite database (WAL, as in settings), in a temporary folder.

Usage: python bench/ledger.py [AUDIT_TRANSACTIONS] [APPENDS]     (defaults 1000000 and 500)

Prints:
- durable single-commit appends/s through ``post_transaction`` (three postings + leaf per commit), with the
  settings' ``synchronous=NORMAL`` (in WAL a commit is durable against a process crash, not a power cut), DEBUG off
  and with ``synchronous=FULL`` (fsync per commit);
- appends/s batched 100 per commit;
- the build of an AUDIT_TRANSACTIONS ledger with bulk inserts: the same rows, leaves and compact range the
  service writes, inserted with ``executemany`` 10,000 transactions per commit, guards active (so each
  transaction is still checked by the balance trigger); the slow path would take hours at 1M;
- a full ``manage.py audit_ledger`` of it in a fresh process: wall time and peak RSS;
- an inclusion proof at that size: bytes, and verification time (mean of 10,000).
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _setup(var_dir: str) -> None:
    os.environ["SYNTHEX_VAR_DIR"] = var_dir
    os.environ["DJANGO_SETTINGS_MODULE"] = "marketplace.settings"
    # Development settings without DEBUG, as in production: DEBUG logs every query in memory.
    os.environ["DEBUG"] = "0"
    import django

    django.setup()
    from django.conf import settings

    settings.SYNTHEX_LEDGER_HEAD_EVERY_ENTRIES = 0


def _organization():
    from marketplace.accounts.models import Organization

    return Organization.objects.get_or_create(
        slug="bench-append", defaults={"name": "Bench", "is_provider": True}
    )[0]


def _appends(count: int, prefix: str, batch: int) -> float:
    from django.db import transaction

    from exchange.ledger.services import Posting, account_for, post_transaction

    clearing = account_for("stripe_clearing", "EUR")
    fees = account_for("platform_fee_revenue", "EUR")
    payable = account_for("provider_payable", "EUR", _organization())

    def one(number: int) -> None:
        post_transaction(
            idempotency_key=f"{prefix}:{number}",
            kind="sale",
            postings=[Posting(clearing, 1000), Posting(fees, -900), Posting(payable, -100)],
            refs={"order": f"ord_{prefix}_{number}"},
        )

    started = time.perf_counter()
    if batch == 1:
        for number in range(count):
            one(number)
    else:
        for low in range(0, count, batch):
            with transaction.atomic():
                for number in range(low, min(count, low + batch)):
                    one(number)
    return count / (time.perf_counter() - started)


def _bulk_build(count: int) -> float:
    """Append ``count`` sales (3 postings each) with executemany; returns seconds."""
    from django.db import connection, transaction

    from exchange.ledger import leaves
    from exchange.ledger.merkle import HASH_SIZE, CompactRange, leaf_hash
    from exchange.ledger.models import AccountBalance, LogState
    from exchange.ledger.services import account_for
    from marketplace.accounts.models import Organization

    organizations = [
        Organization.objects.get_or_create(
            slug=f"bench-{n}", defaults={"name": f"Bench {n}", "is_provider": True}
        )[0]
        for n in range(10)
    ]
    clearing = account_for("stripe_clearing", "EUR")
    fees = account_for("platform_fee_revenue", "EUR")
    payables = [account_for("provider_payable", "EUR", organization) for organization in organizations]
    state = LogState.objects.get(pk=1)
    stored = bytes(state.compact_range)
    compact = CompactRange(state.size, [stored[i : i + HASH_SIZE] for i in range(0, len(stored), HASH_SIZE)])
    balances: dict[int, list[int]] = {account.pk: [0, 0] for account in (clearing, fees, *payables)}
    rng = random.Random(1)
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    chunk = 10_000
    started = time.perf_counter()
    for low in range(0, count, chunk):
        postings, journal, refs, leaf_rows = [], [], [], []
        for number in range(low, min(count, low + chunk)):
            index = compact.size
            amount = rng.randrange(100, 100_000)
            fee = amount // 5
            payable = payables[number % len(payables)]
            legs = [(clearing.pk, amount), (payable.pk, fee - amount), (fees.pk, -fee)]
            when = moment + timedelta(seconds=number)
            key = f"bulk:{number}"
            ref = {"order": f"ord_{number}"}
            for account_id, value in legs:
                postings.append((index, account_id, value, "EUR"))
                balances[account_id][0] += value
                balances[account_id][1] += 1
            journal.append((index, key, "sale", json.dumps(ref), "", when.strftime("%Y-%m-%d %H:%M:%S.%f")))
            refs.append((index, "order", ref["order"]))
            canonical = leaves.transaction_leaf(
                transaction_id=index,
                kind="sale",
                key_sha256=leaves.sha256_hex(key),
                postings=[leaves.LeafPosting(account_id, value, "EUR") for account_id, value in legs],
                refs=ref,
                memo_sha256=None,
                time=when,
            )
            hashed = leaf_hash(canonical)
            compact.append(hashed)
            leaf_rows.append((index, "transaction", canonical, hashed))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO ledger_posting (transaction_id, account_id, amount_minor, currency) VALUES (%s, %s, %s, %s)",
                postings,
            )
            cursor.executemany(
                "INSERT INTO ledger_journaltransaction (id, idempotency_key, kind, refs, memo, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                journal,
            )
            cursor.executemany("INSERT INTO ledger_entryref (leaf_id, key, value) VALUES (%s, %s, %s)", refs)
            cursor.executemany(
                'INSERT INTO ledger_logleaf ("index", entry_type, canonical, leaf_hash) VALUES (%s, %s, %s, %s)',
                leaf_rows,
            )
            LogState.objects.filter(pk=1).update(
                size=compact.size, compact_range=b"".join(compact.hashes), root=compact.root()
            )
    with transaction.atomic():
        for account_id, (delta, postings_count) in balances.items():
            balance = AccountBalance.objects.get(pk=account_id)
            balance.balance_minor += delta
            balance.posting_count += postings_count
            balance.save(update_fields=["balance_minor", "posting_count"])
    return time.perf_counter() - started


def main() -> None:
    audit_transactions = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    appends = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    with tempfile.TemporaryDirectory(prefix="synthex-ledger-bench-") as var_dir:
        _setup(var_dir)
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        print(f"database: {var_dir}/db.sqlite3 (WAL)")
        rate = _appends(appends, "normal", 1)
        print(f"single-commit appends, synchronous=NORMAL: {rate:,.0f}/s ({appends} transactions)")
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous=FULL")
        rate = _appends(appends, "full", 1)
        print(f"single-commit appends, synchronous=FULL:   {rate:,.0f}/s ({appends} transactions)")
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous=NORMAL")
        batched = max(appends * 10, 1000)
        rate = _appends(batched, "batched", 100)
        print(f"appends batched 100 per commit:            {rate:,.0f}/s ({batched} transactions)")

        seconds = _bulk_build(audit_transactions)
        from exchange.ledger.services import publish_tree_head

        head = publish_tree_head()
        print(f"bulk build of {audit_transactions:,} sales: {seconds:.1f} s; log size {head.size:,}")
        connection.close()

        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, str(REPO / "manage.py"), "audit_ledger"],
            cwd=REPO,
            env={**os.environ, "SYNTHEX_VAR_DIR": var_dir, "DJANGO_SETTINGS_MODULE": "marketplace.settings"},
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(
            f"audit_ledger of {head.size:,} entries: {wall:.1f} s, peak RSS {peak_mb:.0f} MB, exit {result.returncode}"
        )
        print("  " + result.stdout.strip().replace("\n", "\n  "))
        if result.returncode:
            print(result.stderr[-2000:])

        from exchange.ledger.merkle import leaf_hash, verify_inclusion
        from exchange.ledger.selectors import log_tree

        started = time.perf_counter()
        tree = log_tree()
        loaded = time.perf_counter() - started
        index = head.size // 3
        proof = tree.inclusion_proof(index, head.size)
        from exchange.ledger.models import LogLeaf

        leaf = leaf_hash(bytes(LogLeaf.objects.get(index=index).canonical))
        root = bytes(head.root)
        repeats = 10_000
        started = time.perf_counter()
        for _ in range(repeats):
            assert verify_inclusion(leaf, index, head.size, proof, root)
        verify_us = (time.perf_counter() - started) / repeats * 1e6
        print(
            f"inclusion proof at {head.size:,} entries: {len(proof)} hashes = {32 * len(proof)} bytes, "
            f"verified in {verify_us:.1f} µs (tree loaded for the API in {loaded:.1f} s)"
        )


if __name__ == "__main__":
    main()
