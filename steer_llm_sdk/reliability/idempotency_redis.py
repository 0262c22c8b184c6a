"""Redis idempotency store: one claim shared by every process and host using the same Redis.

Each key is one Redis string holding a JSON record. Redis does the expiry itself (PX), so an
expired lease or answer simply disappears. Claim, complete and release are Lua scripts, so the
check and the write happen atomically on the server (no WATCH retry loops): the claim is a
``SET NX PX``, and complete/release are compare-and-set on the owner token.

redis.asyncio connections belong to the event loop that opened them, so the store keeps one
client per running loop; one store object can therefore be shared by threads with their own
loops.
"""

from __future__ import annotations

import asyncio
import json
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

__all__ = ["RedisIdempotencyStore"]

# KEYS[1]=key ARGV[1]=in-flight record json ARGV[2]=lease ms ARGV[3]=take over a failed record
# ('1'/'0'). Returns {1} when claimed, else {0, existing record json, pttl}.
# KEYS[2]=the key's run ref (kept past the lease, see _ANNOTATE): returned and dropped on a
# successful claim, so the new owner learns which run a crashed owner left behind.
_CLAIM = """
local function owned()
  local ref = redis.call('GET', KEYS[2])
  redis.call('DEL', KEYS[2])
  return {1, ref}
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return owned() end
local raw = redis.call('GET', KEYS[1])
if raw and ARGV[3] == '1' and cjson.decode(raw).state == 'failed' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return owned()
end
return {0, raw, redis.call('PTTL', KEYS[1])}
"""
# KEYS[1]=key KEYS[2]=run ref key ARGV[1]=owner ARGV[2]=run ref ARGV[3]=keep ms.
_ANNOTATE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local rec = cjson.decode(raw)
if rec.state ~= 'in_flight' or rec.owner ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
"""
# KEYS[1]=key ARGV[1]=owner ARGV[2]=hash ARGV[3]=result json ARGV[4]=ttl ms
# ARGV[5]=expires_at (unix s) ARGV[6]=new state (completed|failed). Keeps created_at.
_COMPLETE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local rec = cjson.decode(raw)
if rec.state ~= 'in_flight' or rec.owner ~= ARGV[1] or rec.hash ~= ARGV[2] then return 0 end
rec.state = ARGV[6]
if ARGV[6] == 'completed' then rec.owner = nil end
rec.result = ARGV[3]
rec.expires_at = tonumber(ARGV[5])
redis.call('SET', KEYS[1], cjson.encode(rec), 'PX', ARGV[4])
return 1
"""
# KEYS[1]=key ARGV[1]=owner ARGV[2]=lease ms ARGV[3]=expires_at (unix s).
_RENEW = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local rec = cjson.decode(raw)
if rec.state ~= 'in_flight' or rec.owner ~= ARGV[1] then return 0 end
rec.expires_at = tonumber(ARGV[3])
redis.call('SET', KEYS[1], cjson.encode(rec), 'PX', ARGV[2])
return 1
"""
# KEYS[1]=key ARGV[1]=owner.
_RELEASE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local rec = cjson.decode(raw)
if rec.state ~= 'in_flight' or rec.owner ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""


def _import_redis() -> Any:
    try:
        import redis.asyncio as aioredis
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "RedisIdempotencyStore needs the redis package: pip install 'steer-llm-sdk[redis]'"
        ) from exc
    return aioredis


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class _LoopClient:
    """A redis client and its registered scripts, bound to one event loop."""

    def __init__(self, aioredis: Any, url: str, max_connections: int) -> None:
        # A blocking pool makes bursts of claimers queue for a connection instead of failing
        # with "Too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(
            url, decode_responses=True, max_connections=max_connections, timeout=30)
        self.client = aioredis.Redis.from_pool(pool)
        self.claim = self.client.register_script(_CLAIM)
        self.complete = self.client.register_script(_COMPLETE)
        self.release = self.client.register_script(_RELEASE)
        self.renew = self.client.register_script(_RENEW)
        self.annotate = self.client.register_script(_ANNOTATE)


class RedisIdempotencyStore(IdempotencyStore):
    """Idempotency records as JSON strings under ``prefix + key`` in Redis.

    ``max_connections`` caps connections per event loop; more concurrent calls wait their turn.
    """

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", prefix: str = "steer:idem:", *,
                 lease_s: float = DEFAULT_LEASE_S, heartbeat_s: float | None = None,
                 failure_ttl_s: float = DEFAULT_FAILURE_TTL_S,
                 max_connections: int = 32) -> None:
        super().__init__(lease_s=lease_s, heartbeat_s=heartbeat_s, failure_ttl_s=failure_ttl_s)
        self._aioredis = _import_redis()
        self.url = url
        self.prefix = prefix
        self.max_connections = max_connections
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient] = (
            weakref.WeakKeyDictionary())
        self._lock = threading.Lock()

    def _c(self) -> _LoopClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            lc = self._clients.get(loop)
            if lc is None:
                lc = self._clients[loop] = _LoopClient(self._aioredis, self.url,
                                                        self.max_connections)
            return lc

    def _record(self, key: str, raw: str | None) -> IdempotencyRecord | None:
        if raw is None:
            return None
        d = json.loads(raw)
        return IdempotencyRecord(key=key, request_hash=d["hash"], state=d["state"],
                                 owner=d.get("owner"), result_json=d.get("result"),
                                 created_at=d["created_at"], expires_at=d["expires_at"])

    async def _try_claim(self, key: str, request_hash: str, token: str, lease_s: float,
                         ttl_s: float, take_failed: bool = True) -> ClaimOutcome:
        now = time.time()
        rec = json.dumps({"hash": request_hash, "state": "in_flight", "owner": token,
                          "created_at": now, "expires_at": now + lease_s})
        lc = self._c()
        while True:
            res = await lc.claim(keys=[self.prefix + key, self._run_key(key)],
                                 args=[rec, _ms(lease_s), "1" if take_failed else "0"])
            if int(res[0]) == 1:
                previous = res[1] if len(res) > 1 and res[1] else None
                return ClaimOutcome("owned", lease_expires_at=now + lease_s,
                                    previous_run=previous)
            existing = self._record(key, res[1])
            if existing is not None:  # None only if it expired inside the script: try again
                break
        ensure_same_hash(key, existing.request_hash, request_hash)
        if existing.state in ("completed", "failed"):
            return ClaimOutcome(existing.state, result_json=existing.result_json)
        return ClaimOutcome("in_flight", lease_expires_at=time.time() + int(res[2]) / 1000)

    async def _complete(self, key: str, request_hash: str, token: str, result_json: str,
                        ttl_s: float) -> bool:
        res = await self._c().complete(
            keys=[self.prefix + key],
            args=[token, request_hash, result_json, _ms(ttl_s), repr(time.time() + ttl_s),
                  "completed"])
        return int(res) == 1

    async def _fail(self, key: str, request_hash: str, token: str, failure_json: str,
                    ttl_s: float) -> bool:
        res = await self._c().complete(
            keys=[self.prefix + key],
            args=[token, request_hash, failure_json, _ms(ttl_s), repr(time.time() + ttl_s),
                  "failed"])
        return int(res) == 1

    def _run_key(self, key: str) -> str:
        return f"{self.prefix}{key}\x00run"

    async def _annotate(self, key: str, token: str, run_ref: str) -> bool:
        res = await self._c().annotate(keys=[self.prefix + key, self._run_key(key)],
                                       args=[token, run_ref, _ms(86400)])
        return int(res) == 1

    async def _renew(self, key: str, token: str, lease_s: float) -> bool:
        res = await self._c().renew(keys=[self.prefix + key],
                                    args=[token, _ms(lease_s), repr(time.time() + lease_s)])
        return int(res) == 1

    async def _release(self, key: str, token: str) -> bool:
        res = await self._c().release(keys=[self.prefix + key], args=[token])
        return int(res) == 1

    async def get(self, key: str) -> IdempotencyRecord | None:
        return self._record(key, await self._c().client.get(self.prefix + key))

    async def purge_expired(self) -> int:
        """Always 0: Redis expires records itself."""
        return 0

    async def aclose_loop(self) -> None:
        with self._lock:
            lc = self._clients.pop(asyncio.get_running_loop(), None)
        if lc is not None:
            await lc.client.aclose()

    async def aclose(self) -> None:
        """Close this loop's client and drop clients of loops that are gone or closed."""
        loop = asyncio.get_running_loop()
        with self._lock:
            items = list(self._clients.items())
            self._clients = weakref.WeakKeyDictionary()
        for owner_loop, lc in items:
            if owner_loop is loop:
                await lc.client.aclose()
            elif not owner_loop.is_closed() and owner_loop.is_running():
                asyncio.run_coroutine_threadsafe(lc.client.aclose(), owner_loop)

    def close(self) -> None:
        """Sync close: schedules each client's close on its own loop when that loop runs.

        Clients of loops that already finished are dropped; their sockets close with them.
        """
        with self._lock:
            items = list(self._clients.items())
            self._clients = weakref.WeakKeyDictionary()
        for owner_loop, lc in items:
            if not owner_loop.is_closed() and owner_loop.is_running():
                asyncio.run_coroutine_threadsafe(lc.client.aclose(), owner_loop)

    def __repr__(self) -> str:
        return f"RedisIdempotencyStore({self.url!r}, prefix={self.prefix!r})"
