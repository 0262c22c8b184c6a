"""PostgreSQL idempotency store: durable claims shared by many hosts through one database.

Why these statements: the claim is a single ``INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE
expired`` so inserting a new claim and taking over an expired one are one atomic statement
(Postgres locks the conflicting row while it decides; no explicit ``SELECT ... FOR UPDATE``
round trip is needed). Complete and release are compare-and-set ``UPDATE``/``DELETE`` on the
owner token. All times come from the database clock (``clock_timestamp()``) so hosts with
skewed clocks still agree on lease and TTL expiry.

psycopg async connections belong to the event loop that opened them, so the store keeps one
autocommit connection per running loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from typing import Any

from steer_llm_sdk.reliability.idempotency import (
    DEFAULT_FAILURE_TTL_S,
    DEFAULT_LEASE_S,
    ClaimOutcome,
    IdempotencyRecord,
    IdempotencyStore,
    ensure_same_hash,
)

__all__ = ["PostgresIdempotencyStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {t} (
    key          text PRIMARY KEY,
    request_hash text NOT NULL,
    state        text NOT NULL,
    owner        text,
    result       text,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    run_ref      text
);
ALTER TABLE {t} ADD COLUMN IF NOT EXISTS run_ref text;
CREATE INDEX IF NOT EXISTS {i} ON {t} (expires_at);
DO $$ BEGIN  -- tables created before the 'failed' state: widen their CHECK once
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = {tl}::regclass
                 AND conname = {cl} AND pg_get_constraintdef(oid) LIKE '%failed%') THEN
    ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {c};
    ALTER TABLE {t} ADD CONSTRAINT {c} CHECK (state IN ('in_flight', 'completed', 'failed'));
  END IF;
END $$;
"""
_CLAIM = """
WITH old AS (SELECT state, run_ref FROM {t} WHERE key = %(key)s)
INSERT INTO {t} AS cur (key, request_hash, state, owner, result, created_at, expires_at)
VALUES (%(key)s, %(hash)s, 'in_flight', %(owner)s, NULL, clock_timestamp(),
        clock_timestamp() + %(lease)s * interval '1 second')
ON CONFLICT (key) DO UPDATE SET request_hash = EXCLUDED.request_hash, state = 'in_flight',
    owner = EXCLUDED.owner, result = NULL, created_at = EXCLUDED.created_at,
    expires_at = EXCLUDED.expires_at, run_ref = NULL
WHERE cur.expires_at <= clock_timestamp() OR (%(take_failed)s AND cur.state = 'failed')
RETURNING extract(epoch FROM expires_at)::float8,
    (SELECT run_ref FROM old WHERE state = 'in_flight')
"""
_LIVE = ("SELECT request_hash, state, result, extract(epoch FROM expires_at)::float8 FROM {t} "
         "WHERE key = %s AND expires_at > clock_timestamp()")
_COMPLETE = ("UPDATE {t} SET state = 'completed', owner = NULL, result = %s, "
             "expires_at = clock_timestamp() + %s * interval '1 second' "
             "WHERE key = %s AND state = 'in_flight' AND owner = %s AND request_hash = %s")
_FAIL = ("UPDATE {t} SET state = 'failed', result = %s, "
         "expires_at = clock_timestamp() + %s * interval '1 second' "
         "WHERE key = %s AND state = 'in_flight' AND owner = %s AND request_hash = %s")
_RENEW = ("UPDATE {t} SET expires_at = clock_timestamp() + %s * interval '1 second' "
          "WHERE key = %s AND state = 'in_flight' AND owner = %s")
_RELEASE = "DELETE FROM {t} WHERE key = %s AND state = 'in_flight' AND owner = %s"
_GET = ("SELECT key, request_hash, state, owner, result, "
        "extract(epoch FROM created_at)::float8, extract(epoch FROM expires_at)::float8 "
        "FROM {t} WHERE key = %s AND expires_at > clock_timestamp()")
# an expired in-flight row naming its run is kept a day: a later claimer learns the orphan
_PURGE = ("DELETE FROM {t} WHERE expires_at <= clock_timestamp() AND NOT (state = 'in_flight' "
          "AND run_ref IS NOT NULL AND expires_at > clock_timestamp() - interval '1 day')")
_ANNOTATE = "UPDATE {t} SET run_ref = %s WHERE key = %s AND state = 'in_flight' AND owner = %s"


def _import_psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "PostgresIdempotencyStore needs psycopg: pip install 'steer-llm-sdk[postgres]'"
        ) from exc
    return psycopg


class PostgresIdempotencyStore(IdempotencyStore):
    """Idempotency records in table ``table`` (created on first use)."""

    def __init__(self, dsn: str, *, table: str = "steer_idempotency",
                 lease_s: float = DEFAULT_LEASE_S, heartbeat_s: float | None = None,
                 failure_ttl_s: float = DEFAULT_FAILURE_TTL_S,
                 purge_interval_s: float = 60.0) -> None:
        super().__init__(lease_s=lease_s, heartbeat_s=heartbeat_s, failure_ttl_s=failure_ttl_s)
        self._psycopg = _import_psycopg()
        from psycopg import sql

        self.dsn = dsn
        self.table = table
        ident = sql.Identifier(table)
        fmt = {"t": ident, "i": sql.Identifier(f"{table}_expires_at"),
               "c": sql.Identifier(f"{table}_state_check"),
               "cl": sql.Literal(f"{table}_state_check"),
               "tl": sql.Literal('"' + table.replace('"', '""') + '"')}
        self._q = {name: sql.SQL(text).format(**fmt) for name, text in {
            "schema": _SCHEMA, "claim": _CLAIM, "live": _LIVE, "complete": _COMPLETE,
            "fail": _FAIL, "renew": _RENEW, "annotate": _ANNOTATE, "release": _RELEASE,
            "get": _GET, "purge": _PURGE}.items()}
        self._purge_interval_s = purge_interval_s
        self._last_purge = 0.0
        self._schema_ready = False
        self._conns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary())
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary())
        self._lock = threading.Lock()

    async def _conn(self) -> Any:
        loop = asyncio.get_running_loop()
        with self._lock:
            conn = self._conns.get(loop)
            if conn is not None and not conn.closed:
                return conn
            lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:  # one connect per loop even when many coroutines start together
            conn = self._conns.get(loop)
            if conn is None or conn.closed:
                conn = await self._psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
                if not self._schema_ready:
                    await self._create_schema(conn)
                with self._lock:
                    self._conns[loop] = conn
            return conn

    async def _create_schema(self, conn: Any) -> None:
        # The advisory lock serialises concurrent CREATE ... IF NOT EXISTS, which can otherwise
        # fail with a unique violation when two processes start at once.
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.table,))
            await conn.execute(self._q["schema"])
        self._schema_ready = True

    async def _execute(self, name: str, params: Any) -> Any:
        conn = await self._conn()
        return await conn.execute(self._q[name], params)

    async def _try_claim(self, key: str, request_hash: str, token: str, lease_s: float,
                         ttl_s: float, take_failed: bool = True) -> ClaimOutcome:
        if time.monotonic() - self._last_purge >= self._purge_interval_s:
            self._last_purge = time.monotonic()
            await self.purge_expired()
        while True:
            cur = await self._execute("claim", {"key": key, "hash": request_hash,
                                                "owner": token, "lease": lease_s,
                                                "take_failed": take_failed})
            row = await cur.fetchone()
            if row is not None:
                return ClaimOutcome("owned", lease_expires_at=row[0], previous_run=row[1])
            cur = await self._execute("live", (key,))
            live = await cur.fetchone()
            if live is not None:  # None: it expired between the two statements; claim again
                break
        stored_hash, state, result, expires_at = live
        ensure_same_hash(key, stored_hash, request_hash)
        if state in ("completed", "failed"):
            return ClaimOutcome(state, result_json=result)
        return ClaimOutcome("in_flight", lease_expires_at=expires_at)

    async def _complete(self, key: str, request_hash: str, token: str, result_json: str,
                        ttl_s: float) -> bool:
        cur = await self._execute("complete", (result_json, ttl_s, key, token, request_hash))
        return cur.rowcount == 1

    async def _fail(self, key: str, request_hash: str, token: str, failure_json: str,
                    ttl_s: float) -> bool:
        cur = await self._execute("fail", (failure_json, ttl_s, key, token, request_hash))
        return cur.rowcount == 1

    async def _annotate(self, key: str, token: str, run_ref: str) -> bool:
        cur = await self._execute("annotate", (run_ref, key, token))
        return cur.rowcount == 1

    async def _renew(self, key: str, token: str, lease_s: float) -> bool:
        cur = await self._execute("renew", (lease_s, key, token))
        return cur.rowcount == 1

    async def _release(self, key: str, token: str) -> bool:
        cur = await self._execute("release", (key, token))
        return cur.rowcount == 1

    async def get(self, key: str) -> IdempotencyRecord | None:
        cur = await self._execute("get", (key,))
        row = await cur.fetchone()
        return IdempotencyRecord(*row) if row else None

    async def purge_expired(self) -> int:
        cur = await self._execute("purge", None)
        return cur.rowcount

    def _take_conns(self) -> list[tuple[asyncio.AbstractEventLoop, Any]]:
        with self._lock:
            items = list(self._conns.items())
            self._conns = weakref.WeakKeyDictionary()
        return items

    async def aclose_loop(self) -> None:
        with self._lock:
            conn = self._conns.pop(asyncio.get_running_loop(), None)
        if conn is not None:
            await conn.close()

    async def aclose(self) -> None:
        """Close this loop's connection; schedule the others' close on their running loops."""
        loop = asyncio.get_running_loop()
        for owner_loop, conn in self._take_conns():
            if owner_loop is loop:
                await conn.close()
            elif owner_loop.is_running():
                asyncio.run_coroutine_threadsafe(conn.close(), owner_loop)

    def close(self) -> None:
        """Sync close: schedules each connection's close on its loop if that loop still runs."""
        for owner_loop, conn in self._take_conns():
            if owner_loop.is_running():
                asyncio.run_coroutine_threadsafe(conn.close(), owner_loop)

    def __repr__(self) -> str:
        return f"PostgresIdempotencyStore(table={self.table!r}, lease_s={self.lease_s:g})"
