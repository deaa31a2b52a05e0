"""The embedded Celery broker: a kombu transport on one SQLite file, ``synthex+sqlite:///PATH``.

Why not kombu's ``filesystem://``: it deletes a message file when it *reads* it (a worker killed after that
loses the message, whatever ``acks_late`` says) and writes message files in place (a reader racing a writer
reads half a JSON document). Why not kombu's ``sqla+``: reads are transactional, but a delivered message is
only flagged invisible and never made visible again, so a killed worker still loses it.

Guarantees here:

- publishing is one ``INSERT`` (WAL, ``synchronous=FULL``): a message is stored whole or not at all, and stays
  stored when any process is killed;
- taking a message is a conditional ``UPDATE`` that names the taking process (host, pid, start time): two
  consumers never take the same message;
- a message leaves the table only when it is acknowledged (Celery acks after the task with ``acks_late``,
  before it otherwise) or rejected without requeue; a reject with requeue, or a warm shutdown, puts it back;
- a message taken by a process that no longer exists (``kill -9``, OOM) is put back as soon as any consumer
  polls; one taken longer ago than ``visibility_timeout`` (seconds, default 7200: above every task's hard
  time limit) is put back too, which covers a consumer on another host sharing the file.

No fanout exchanges: Celery turns remote control, gossip and mingle off on such a transport.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from pathlib import Path
from queue import Empty
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, virtual

SCHEME = "synthex"
RESTORE_EVERY_SECONDS = 2.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS broker_message (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    payload TEXT NOT NULL,
    delivered_to TEXT,
    delivered_at REAL
);
CREATE INDEX IF NOT EXISTS broker_message_waiting ON broker_message (queue, delivered_to, id);
"""


def database_path(url: str) -> Path:
    """The SQLite file of a ``synthex+sqlite:///relative`` or ``synthex+sqlite:////absolute`` URL."""
    prefix = f"{SCHEME}+sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ValueError(f"Not an embedded broker URL ({prefix}PATH): {url!r}")
    return Path(url[len(prefix) :])


def connect(path: Path) -> sqlite3.Connection:
    """An autocommit connection to the broker file, creating it and its table when missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(_SCHEMA)
    return db


def queue_depths(url: str) -> dict[str, int]:
    """Messages waiting (not taken) per queue."""
    db = connect(database_path(url))
    try:
        rows = db.execute(
            "SELECT queue, COUNT(*) FROM broker_message WHERE delivered_to IS NULL GROUP BY queue"
        ).fetchall()
    finally:
        db.close()
    return {str(queue): int(count) for queue, count in rows}


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (None when it does not exist); with the pid it
    names one process even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return "?"
    return stat.rsplit(")", 1)[1].split()[19]


def _this_process() -> str:
    return f"{socket.gethostname()}/{os.getpid()}/{_start_ticks(os.getpid())}"


def _is_gone(owner: str, host: str) -> bool:
    """True only when ``owner`` ran on this host and that very process has ended."""
    owner_host, _, rest = owner.partition("/")
    pid_text, _, ticks = rest.partition("/")
    if owner_host != host or not pid_text.isdigit():
        return False
    if not Path("/proc").is_dir():
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return _start_ticks(int(pid_text)) != ticks


class Channel(virtual.Channel):
    """A channel whose messages live in the broker file until acknowledged."""

    def __init__(self, connection: Any, **kwargs: Any) -> None:
        options = connection.client.transport_options
        self._path = database_path(f"{SCHEME}+{connection.client.hostname}")
        self._visibility_timeout = float(options.get("visibility_timeout", 7200))
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._db_pid = 0
        self._owner = ""
        self._rows: dict[str, int] = {}
        self._no_ack_queues: set[str] = set()
        self._taking_without_ack = False
        self._restored_at = 0.0
        super().__init__(connection, **kwargs)

    @property
    def db(self) -> sqlite3.Connection:
        # A connection is never carried across fork: a child opens its own.
        if self._db is None or self._db_pid != os.getpid():
            self._db = connect(self._path)
            self._db_pid = os.getpid()
            self._owner = _this_process()
        return self._db

    def _new_queue(self, queue: str, **kwargs: Any) -> None:
        """Queues exist as soon as a message names them."""

    def _has_queue(self, queue: str, **kwargs: Any) -> bool:
        return True

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        with self._lock:
            self.db.execute(
                "INSERT INTO broker_message (queue, payload) VALUES (?, ?)", (queue, json.dumps(message))
            )

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        with self._lock:
            self._restore_lost()
            while True:
                row = self.db.execute(
                    "SELECT id FROM broker_message WHERE queue = ? AND delivered_to IS NULL ORDER BY id LIMIT 1",
                    (queue,),
                ).fetchone()
                if row is None:
                    raise Empty()
                taken = self.db.execute(
                    "UPDATE broker_message SET delivered_to = ?, delivered_at = ? "
                    "WHERE id = ? AND delivered_to IS NULL",
                    (self._owner, time.time(), row[0]),
                ).rowcount
                if taken:
                    break
            (payload,) = self.db.execute("SELECT payload FROM broker_message WHERE id = ?", row).fetchone()
            message: dict[str, Any] = json.loads(payload)
            if self._taking_without_ack or queue in self._no_ack_queues:
                self.db.execute("DELETE FROM broker_message WHERE id = ?", row)
            else:
                self._rows[message["properties"]["delivery_tag"]] = row[0]
            return message

    def _restore_lost(self) -> None:
        """Put back messages whose taker died on this host, or that were taken too long ago."""
        now = time.monotonic()
        if now - self._restored_at < RESTORE_EVERY_SECONDS:
            return
        self._restored_at = now
        host = socket.gethostname()
        owners = [
            owner
            for (owner,) in self.db.execute(
                "SELECT DISTINCT delivered_to FROM broker_message WHERE delivered_to IS NOT NULL"
            )
        ]
        for owner in owners:
            if owner != self._owner and _is_gone(owner, host):
                self.db.execute(
                    "UPDATE broker_message SET delivered_to = NULL, delivered_at = NULL WHERE delivered_to = ?",
                    (owner,),
                )
        self.db.execute(
            "UPDATE broker_message SET delivered_to = NULL, delivered_at = NULL "
            "WHERE delivered_to IS NOT NULL AND delivered_at < ?",
            (time.time() - self._visibility_timeout,),
        )

    def basic_consume(self, queue: str, no_ack: bool, *args: Any, **kwargs: Any) -> Any:
        if no_ack:
            self._no_ack_queues.add(queue)
        return super().basic_consume(queue, no_ack, *args, **kwargs)

    def basic_get(self, queue: str, no_ack: bool = False, **kwargs: Any) -> Any:
        self._taking_without_ack = no_ack
        try:
            return super().basic_get(queue, no_ack=no_ack, **kwargs)
        finally:
            self._taking_without_ack = False

    def basic_ack(self, delivery_tag: str, multiple: bool = False) -> None:
        super().basic_ack(delivery_tag, multiple)
        self._forget(delivery_tag)

    def basic_reject(self, delivery_tag: str, requeue: bool = False) -> None:
        super().basic_reject(delivery_tag, requeue=requeue)  # with requeue, _restore has put it back
        self._forget(delivery_tag)

    def _forget(self, delivery_tag: str) -> None:
        with self._lock:
            row = self._rows.pop(delivery_tag, None)
            if row is not None:
                self.db.execute("DELETE FROM broker_message WHERE id = ?", (row,))

    def _restore(self, message: Any) -> None:
        """Put a taken message back where it was (a reject with requeue, a warm shutdown)."""
        with self._lock:
            row = self._rows.pop(message.delivery_tag, None)
            if row is None:
                super()._restore(message)
                return
            self.db.execute(
                "UPDATE broker_message SET delivered_to = NULL, delivered_at = NULL WHERE id = ?", (row,)
            )

    def _size(self, queue: str) -> int:
        with self._lock:
            (count,) = self.db.execute(
                "SELECT COUNT(*) FROM broker_message WHERE queue = ? AND delivered_to IS NULL", (queue,)
            ).fetchone()
        return int(count)

    def _purge(self, queue: str) -> int:
        with self._lock:
            return self.db.execute(
                "DELETE FROM broker_message WHERE queue = ? AND delivered_to IS NULL", (queue,)
            ).rowcount

    def _delete(self, queue: str, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            self.db.execute("DELETE FROM broker_message WHERE queue = ?", (queue,))

    def close(self) -> None:
        super().close()  # restores unacknowledged messages first
        with self._lock:
            if self._db is not None and self._db_pid == os.getpid():
                self._db.close()
            self._db = None


class Transport(virtual.Transport):
    """kombu transport ``synthex+sqlite:///PATH``."""

    Channel = Channel
    can_parse_url = True
    polling_interval = 0.1
    driver_type = "sqlite"
    driver_name = "sqlite3"
    # A locked or unreadable broker file is retried like a lost connection (kombu's stubs type these as 1-tuples).
    connection_errors = (*virtual.Transport.connection_errors, sqlite3.OperationalError)  # type: ignore[assignment]
    channel_errors = (*virtual.Transport.channel_errors, sqlite3.OperationalError)  # type: ignore[assignment]

    def driver_version(self) -> str:
        return sqlite3.sqlite_version


TRANSPORT_ALIASES[SCHEME] = "marketplace.core.broker:Transport"
