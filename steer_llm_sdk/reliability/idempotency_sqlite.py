"""SQLite idempotency store: zero-setup persistence shared by threads and processes of one host.

Why SQLite: it survives restarts with no server to run, and its file locks make a claim atomic
across every process that opens the same file. ``BEGIN IMMEDIATE`` takes the write lock before
reading, so two claimers can never both see "absent" and both insert. WAL lets readers (waiters
polling for a result) proceed while a writer holds the lock. Not for multiple hosts: use Redis
or PostgreSQL there (network filesystems break SQLite locking).

Blocking calls run in ``asyncio.to_thread``; connections come from a small pool so any thread
may use any idle connection (``check_same_thread=False``, one user at a time).
"""

from __future__ import annotations

import asyncio
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from steer_llm_sdk.reliability.idempotency import (
    DEFAULT_FAILURE_TTL_S,
    DEFAULT_LEASE_S,
    ClaimOutcome,
    IdempotencyRecord,
    IdempotencyStore,
    ensure_same_hash,
    steer_home,
)

__all__ = ["SQLiteIdempotencyStore"]

_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    key          TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('in_flight', 'completed', 'failed')),
    owner        TEXT,
    result       TEXT,
    created_at   REAL NOT NULL,
    expires_at   REAL NOT NULL,
    run_ref      TEXT
)"""
_SCHEMA = _TABLE.format(name="idempotency") + """;
CREATE INDEX IF NOT EXISTS idempotency_expires_at ON idempotency (expires_at);
"""
_COLUMNS = "key, request_hash, state, owner, result, created_at, expires_at"
_POOL_MAX = 8
# an expired in-flight row that names its run is kept this long, so a later claimer can still
# learn which run the crashed owner left behind
_RUN_REF_GRACE_S = 86400.0
_PURGE = ("DELETE FROM idempotency WHERE expires_at <= ? AND NOT (state = 'in_flight' "
          "AND run_ref IS NOT NULL AND expires_at > ?)")


class SQLiteIdempotencyStore(IdempotencyStore):
    """Idempotency records in one SQLite file (default ``<steer home>/idempotency.sqlite3``).

    Expired rows count as absent everywhere; they are deleted when a claim meets them and in
    bulk at most every ``purge_interval_s`` seconds (or on ``purge_expired()``).
    """

    def __init__(self, path: str | Path | None = None, *, lease_s: float = DEFAULT_LEASE_S,
                 heartbeat_s: float | None = None,
                 failure_ttl_s: float = DEFAULT_FAILURE_TTL_S,
                 busy_timeout_s: float = 30.0, purge_interval_s: float = 60.0) -> None:
        super().__init__(lease_s=lease_s, heartbeat_s=heartbeat_s, failure_ttl_s=failure_ttl_s)
        self.path = Path(path).expanduser() if path else steer_home() / "idempotency.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._busy_timeout_s = busy_timeout_s
        self._purge_interval_s = purge_interval_s
        self._last_purge = 0.0
        self._pool: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._pid = os.getpid()
        self._closed = False
        self._init_lock = threading.Lock()
        with self._connection() as conn:  # fail fast on a bad path; create the schema once
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            _migrate(conn)

    # ---- connections ------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so BEGIN IMMEDIATE is explicit.
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_s * 1000)}")
        # NORMAL is durable against process crashes in WAL mode; a power cut may lose the last
        # commits, which only means a request may run again.
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise RuntimeError("SQLiteIdempotencyStore is closed")
        if os.getpid() != self._pid:
            self._after_fork()
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = self._connect()
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        finally:
            if self._closed or self._pool.qsize() >= _POOL_MAX:
                conn.close()
            else:
                self._pool.put(conn)

    def _after_fork(self) -> None:
        """SQLite connections must not cross fork(): drop (never close) the parent's ones."""
        with self._init_lock:
            if os.getpid() != self._pid:
                self._pool = queue.SimpleQueue()
                self._pid = os.getpid()
                self._forget_owners()

    # ---- primitives (blocking; run in a worker thread) --------------------------------------

    def _claim_sync(self, key: str, request_hash: str, token: str, lease_s: float,
                    ttl_s: float, take_failed: bool) -> ClaimOutcome:
        with self._connection() as conn:
            now = time.time()
            # Fast path without the write lock: waiters poll here while the owner runs.
            row = conn.execute("SELECT request_hash, state, result, expires_at FROM idempotency "
                               "WHERE key = ? AND expires_at > ?", (key, now)).fetchone()
            if row is not None and not (take_failed and row[1] == "failed"):
                return _outcome(key, request_hash, row)
            conn.execute("BEGIN IMMEDIATE")
            try:
                now = time.time()
                row = conn.execute("SELECT request_hash, state, result, expires_at, run_ref "
                                   "FROM idempotency WHERE key = ?", (key,)).fetchone()
                if row is not None and row[3] > now and not (take_failed and row[1] == "failed"):
                    conn.execute("COMMIT")
                    return _outcome(key, request_hash, row[:4])
                previous = row[4] if row is not None and row[1] == "in_flight" else None
                if now - self._last_purge >= self._purge_interval_s:
                    conn.execute(_PURGE, (now, now - _RUN_REF_GRACE_S))
                    self._last_purge = now
                conn.execute(
                    "INSERT OR REPLACE INTO idempotency (key, request_hash, state, owner, "
                    "result, created_at, expires_at) VALUES (?, ?, 'in_flight', ?, NULL, ?, ?)",
                    (key, request_hash, token, now, now + lease_s))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return ClaimOutcome("owned", lease_expires_at=now + lease_s, previous_run=previous)

    def _complete_sync(self, key: str, request_hash: str, token: str, result_json: str,
                       ttl_s: float) -> bool:
        with self._connection() as conn:
            now = time.time()
            cur = conn.execute(
                "UPDATE idempotency SET state = 'completed', owner = NULL, result = ?, "
                "expires_at = ? WHERE key = ? AND state = 'in_flight' AND owner = ? "
                "AND request_hash = ?", (result_json, now + ttl_s, key, token, request_hash))
            return cur.rowcount == 1

    def _annotate_sync(self, key: str, token: str, run_ref: str) -> bool:
        with self._connection() as conn:
            cur = conn.execute("UPDATE idempotency SET run_ref = ? WHERE key = ? "
                               "AND state = 'in_flight' AND owner = ?", (run_ref, key, token))
            return cur.rowcount == 1

    def _renew_sync(self, key: str, token: str, lease_s: float) -> bool:
        with self._connection() as conn:
            cur = conn.execute(
                "UPDATE idempotency SET expires_at = ? WHERE key = ? AND state = 'in_flight' "
                "AND owner = ?", (time.time() + lease_s, key, token))
            return cur.rowcount == 1

    def _fail_sync(self, key: str, request_hash: str, token: str, failure_json: str,
                   ttl_s: float) -> bool:
        with self._connection() as conn:
            cur = conn.execute(
                "UPDATE idempotency SET state = 'failed', result = ?, expires_at = ? "
                "WHERE key = ? AND state = 'in_flight' AND owner = ? AND request_hash = ?",
                (failure_json, time.time() + ttl_s, key, token, request_hash))
            return cur.rowcount == 1

    def _release_sync(self, key: str, token: str) -> bool:
        with self._connection() as conn:
            cur = conn.execute("DELETE FROM idempotency WHERE key = ? AND state = 'in_flight' "
                               "AND owner = ?", (key, token))
            return cur.rowcount == 1

    def _get_sync(self, key: str) -> IdempotencyRecord | None:
        with self._connection() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM idempotency WHERE key = ? "
                               "AND expires_at > ?", (key, time.time())).fetchone()
        return IdempotencyRecord(*row) if row else None

    def _purge_sync(self) -> int:
        with self._connection() as conn:
            now = time.time()
            cur = conn.execute(_PURGE, (now, now - _RUN_REF_GRACE_S))
            self._last_purge = now
            return cur.rowcount

    # ---- async API --------------------------------------------------------------------------

    async def _try_claim(self, key: str, request_hash: str, token: str, lease_s: float,
                         ttl_s: float, take_failed: bool = True) -> ClaimOutcome:
        return await asyncio.to_thread(self._claim_sync, key, request_hash, token, lease_s,
                                       ttl_s, take_failed)

    async def _renew(self, key: str, token: str, lease_s: float) -> bool:
        return await asyncio.to_thread(self._renew_sync, key, token, lease_s)

    async def _annotate(self, key: str, token: str, run_ref: str) -> bool:
        return await asyncio.to_thread(self._annotate_sync, key, token, run_ref)

    async def _fail(self, key: str, request_hash: str, token: str, failure_json: str,
                    ttl_s: float) -> bool:
        return await asyncio.to_thread(self._fail_sync, key, request_hash, token, failure_json,
                                       ttl_s)

    async def _complete(self, key: str, request_hash: str, token: str, result_json: str,
                        ttl_s: float) -> bool:
        return await asyncio.to_thread(self._complete_sync, key, request_hash, token,
                                       result_json, ttl_s)

    async def _release(self, key: str, token: str) -> bool:
        return await asyncio.to_thread(self._release_sync, key, token)

    async def get(self, key: str) -> IdempotencyRecord | None:
        return await asyncio.to_thread(self._get_sync, key)

    async def purge_expired(self) -> int:
        return await asyncio.to_thread(self._purge_sync)

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        """Close idle connections; ones in use close when their operation finishes."""
        self._closed = True
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return

    def __repr__(self) -> str:
        return f"SQLiteIdempotencyStore({str(self.path)!r}, lease_s={self.lease_s:g})"


def _outcome(key: str, request_hash: str, row: tuple[str, str, str | None, float]
             ) -> ClaimOutcome:
    stored_hash, state, result, expires_at = row
    ensure_same_hash(key, stored_hash, request_hash)
    if state in ("completed", "failed"):
        return ClaimOutcome(state, result_json=result)  # type: ignore[arg-type]
    return ClaimOutcome("in_flight", lease_expires_at=expires_at)


def _migrate(conn: sqlite3.Connection) -> None:
    """Files created before the ``failed`` state and ``run_ref`` existed carry a CHECK that
    rejects the state; SQLite cannot alter a CHECK, so such a table is copied into the current
    shape once."""
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' "
                       "AND name = 'idempotency'").fetchone()
    if sql is None or "run_ref" in sql[0]:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' "
                           "AND name = 'idempotency'").fetchone()
        if "run_ref" not in sql[0]:  # another process may have migrated meanwhile
            conn.execute(_TABLE.format(name="idempotency_new"))
            conn.execute(f"INSERT INTO idempotency_new ({_COLUMNS}) SELECT {_COLUMNS} "
                         "FROM idempotency")
            conn.execute("DROP TABLE idempotency")
            conn.execute("ALTER TABLE idempotency_new RENAME TO idempotency")
            conn.execute("CREATE INDEX IF NOT EXISTS idempotency_expires_at "
                         "ON idempotency (expires_at)")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
