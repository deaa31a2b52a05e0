"""Database guards of the ledger, for SQLite and PostgreSQL, installed by migration 0002.

- Append-only: UPDATE and DELETE (and TRUNCATE on PostgreSQL) are refused on leaves, accounts, journal
  transactions, postings, events, refs and tree heads.
- Balance: a journal transaction needs two or more postings summing to zero per currency. SQLite has no
  deferred triggers, so the service inserts the postings first (their foreign key to the transaction is
  deferred) and the transaction row last; a trigger on that insert checks the sums, and a trigger on
  posting insert refuses postings for a transaction already written. PostgreSQL checks the same sums in
  DEFERRABLE INITIALLY DEFERRED constraint triggers, at commit.
- Postings are in their account's currency; leaf indexes are gapless; each leaf has its row; a tree head
  never covers fewer entries than the one before, nor more than the log holds.

Each list is frozen once released (the migration imports it by name); a change is a new list and a new
migration. Tests and the benchmark use :func:`drop_guards` / :func:`install_guards` to tamper on purpose.
"""

from __future__ import annotations

from typing import Any

APPEND_ONLY_TABLES = (
    "ledger_logleaf",
    "ledger_account",
    "ledger_journaltransaction",
    "ledger_posting",
    "ledger_ledgerevent",
    "ledger_entryref",
    "ledger_treehead",
)
DERIVED_TABLES = ("ledger_accountbalance", "ledger_logstate")


def _sqlite_append_only(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused'); END",
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END",
    ]


SQLITE_GUARDS_V1: list[str] = [
    *(statement for table in APPEND_ONLY_TABLES for statement in _sqlite_append_only(table)),
    """CREATE TRIGGER ledger_posting_guard BEFORE INSERT ON ledger_posting BEGIN
        SELECT RAISE(ABORT, 'ledger: postings cannot be added to a recorded journal transaction')
          WHERE EXISTS (SELECT 1 FROM ledger_journaltransaction WHERE id = NEW.transaction_id);
        SELECT RAISE(ABORT, 'ledger: a posting must be in its account''s currency')
          WHERE NEW.currency IS NOT (SELECT currency FROM ledger_account WHERE id = NEW.account_id);
    END""",
    """CREATE TRIGGER ledger_journaltransaction_balanced BEFORE INSERT ON ledger_journaltransaction BEGIN
        SELECT RAISE(ABORT, 'ledger: a journal transaction needs at least two postings')
          WHERE (SELECT COUNT(*) FROM ledger_posting WHERE transaction_id = NEW.id) < 2;
        SELECT RAISE(ABORT, 'ledger: journal transaction does not balance per currency')
          WHERE EXISTS (SELECT 1 FROM ledger_posting WHERE transaction_id = NEW.id
                        GROUP BY currency HAVING SUM(amount_minor) <> 0);
    END""",
    """CREATE TRIGGER ledger_logleaf_guard BEFORE INSERT ON ledger_logleaf BEGIN
        SELECT RAISE(ABORT, 'ledger: leaf index is not the next one')
          WHERE NEW."index" IS NOT (SELECT COALESCE(MAX("index") + 1, 0) FROM ledger_logleaf);
        SELECT RAISE(ABORT, 'ledger: a leaf must follow the row it logs')
          WHERE NOT EXISTS (
            SELECT 1 FROM ledger_journaltransaction WHERE NEW.entry_type = 'transaction' AND id = NEW."index"
            UNION ALL SELECT 1 FROM ledger_ledgerevent WHERE NEW.entry_type = 'event' AND id = NEW."index"
            UNION ALL SELECT 1 FROM ledger_account WHERE NEW.entry_type = 'account' AND id = NEW."index");
    END""",
    """CREATE TRIGGER ledger_treehead_guard BEFORE INSERT ON ledger_treehead BEGIN
        SELECT RAISE(ABORT, 'ledger: a tree head cannot cover fewer entries than the one before')
          WHERE NEW.size < (SELECT COALESCE(MAX(size), 0) FROM ledger_treehead);
        SELECT RAISE(ABORT, 'ledger: a tree head cannot cover more entries than the log holds')
          WHERE NEW.size > (SELECT COALESCE(MAX("index") + 1, 0) FROM ledger_logleaf);
    END""",
]

SQLITE_TRIGGER_NAMES_V1: list[str] = [
    *(f"{table}_no_{operation}" for table in APPEND_ONLY_TABLES for operation in ("update", "delete")),
    "ledger_posting_guard",
    "ledger_journaltransaction_balanced",
    "ledger_logleaf_guard",
    "ledger_treehead_guard",
]


def _raise(message: str, *arguments: str) -> str:
    extra = "".join(f", {argument}" for argument in arguments)
    return f"RAISE EXCEPTION '{message}'{extra} USING ERRCODE = 'integrity_constraint_violation';"


POSTGRES_FUNCTIONS_V1: list[str] = [
    f"""CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN {_raise("% is append-only: % refused", "TG_TABLE_NAME", "TG_OP")} END $$""",
    f"""CREATE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE tid bigint;
    BEGIN
        IF TG_TABLE_NAME = 'ledger_posting' THEN tid := NEW.transaction_id; ELSE tid := NEW.id; END IF;
        IF (SELECT COUNT(*) FROM ledger_posting WHERE transaction_id = tid) < 2 THEN
            {_raise("ledger: journal transaction % needs at least two postings", "tid")}
        END IF;
        IF EXISTS (SELECT 1 FROM ledger_posting WHERE transaction_id = tid
                   GROUP BY currency HAVING SUM(amount_minor) <> 0) THEN
            {_raise("ledger: journal transaction % does not balance per currency", "tid")}
        END IF;
        RETURN NULL;
    END $$""",
    f"""CREATE FUNCTION ledger_check_posting() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM ledger_journaltransaction WHERE id = NEW.transaction_id) THEN
            {_raise("ledger: postings cannot be added to a recorded journal transaction")}
        END IF;
        IF NEW.currency IS DISTINCT FROM (SELECT currency FROM ledger_account WHERE id = NEW.account_id) THEN
            {_raise("ledger: a posting must be in its account''s currency")}
        END IF;
        RETURN NEW;
    END $$""",
    f"""CREATE FUNCTION ledger_check_leaf() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW."index" IS DISTINCT FROM (SELECT COALESCE(MAX("index") + 1, 0) FROM ledger_logleaf) THEN
            {_raise("ledger: leaf index is not the next one")}
        END IF;
        IF NEW.leaf_hash IS DISTINCT FROM sha256('\\x00'::bytea || NEW.canonical) THEN
            {_raise("ledger: the leaf hash is not SHA-256(0x00 || leaf bytes)")}
        END IF;
        IF NOT EXISTS (
            SELECT 1 FROM ledger_journaltransaction WHERE NEW.entry_type = 'transaction' AND id = NEW."index"
            UNION ALL SELECT 1 FROM ledger_ledgerevent WHERE NEW.entry_type = 'event' AND id = NEW."index"
            UNION ALL SELECT 1 FROM ledger_account WHERE NEW.entry_type = 'account' AND id = NEW."index") THEN
            {_raise("ledger: a leaf must follow the row it logs")}
        END IF;
        RETURN NEW;
    END $$""",
    f"""CREATE FUNCTION ledger_check_tree_head() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.size < (SELECT COALESCE(MAX(size), 0) FROM ledger_treehead) THEN
            {_raise("ledger: a tree head cannot cover fewer entries than the one before")}
        END IF;
        IF NEW.size > (SELECT COALESCE(MAX("index") + 1, 0) FROM ledger_logleaf) THEN
            {_raise("ledger: a tree head cannot cover more entries than the log holds")}
        END IF;
        RETURN NEW;
    END $$""",
]


def _postgres_append_only(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()",
    ]


POSTGRES_TRIGGERS_V1: list[tuple[str, str, str]] = [
    *(
        (name, table, statement)
        for table in APPEND_ONLY_TABLES
        for name, statement in zip(
            (f"{table}_append_only", f"{table}_no_truncate"), _postgres_append_only(table), strict=True
        )
    ),
    (
        "ledger_transaction_balanced",
        "ledger_journaltransaction",
        "CREATE CONSTRAINT TRIGGER ledger_transaction_balanced AFTER INSERT ON ledger_journaltransaction "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced()",
    ),
    (
        "ledger_posting_balanced",
        "ledger_posting",
        "CREATE CONSTRAINT TRIGGER ledger_posting_balanced AFTER INSERT ON ledger_posting "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced()",
    ),
    (
        "ledger_posting_guard",
        "ledger_posting",
        "CREATE TRIGGER ledger_posting_guard BEFORE INSERT ON ledger_posting "
        "FOR EACH ROW EXECUTE FUNCTION ledger_check_posting()",
    ),
    (
        "ledger_logleaf_guard",
        "ledger_logleaf",
        "CREATE TRIGGER ledger_logleaf_guard BEFORE INSERT ON ledger_logleaf "
        "FOR EACH ROW EXECUTE FUNCTION ledger_check_leaf()",
    ),
    (
        "ledger_treehead_guard",
        "ledger_treehead",
        "CREATE TRIGGER ledger_treehead_guard BEFORE INSERT ON ledger_treehead "
        "FOR EACH ROW EXECUTE FUNCTION ledger_check_tree_head()",
    ),
]
POSTGRES_FUNCTION_NAMES_V1 = (
    "ledger_refuse_change",
    "ledger_check_balanced",
    "ledger_check_posting",
    "ledger_check_leaf",
    "ledger_check_tree_head",
)


def install_guards(connection: Any) -> None:
    """Create the guard triggers (and PostgreSQL functions) on ``connection``'s database."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for statement in POSTGRES_FUNCTIONS_V1:
                cursor.execute(statement)
            for _name, _table, statement in POSTGRES_TRIGGERS_V1:
                cursor.execute(statement)
        elif connection.vendor == "sqlite":
            for statement in SQLITE_GUARDS_V1:
                cursor.execute(statement)
        else:
            raise NotImplementedError(
                f"the ledger guards exist for SQLite and PostgreSQL, not {connection.vendor}"
            )


def drop_guards(connection: Any) -> None:
    """Remove every guard trigger; only tests that tamper on purpose and :func:`purge_ledger` call this."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for name, table, _statement in POSTGRES_TRIGGERS_V1:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            for name in POSTGRES_FUNCTION_NAMES_V1:
                cursor.execute(f"DROP FUNCTION IF EXISTS {name}()")
        elif connection.vendor == "sqlite":
            for name in SQLITE_TRIGGER_NAMES_V1:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")


def purge_ledger(connection: Any) -> None:
    """Delete every ledger row and reset the log, guards kept in place afterwards.

    For test suites only: a ``transaction=True`` test that wrote ledger rows calls this before Django flushes
    the database (the append-only triggers would refuse the flush's DELETEs).
    """
    drop_guards(connection)
    try:
        with connection.cursor() as cursor:
            for table in (
                "ledger_entryref",
                "ledger_posting",
                "ledger_accountbalance",
                "ledger_journaltransaction",
                "ledger_ledgerevent",
                "ledger_account",
                "ledger_treehead",
                "ledger_logleaf",
            ):
                cursor.execute(f"DELETE FROM {table}")
            cursor.execute("DELETE FROM ledger_logstate")
    finally:
        install_guards(connection)
