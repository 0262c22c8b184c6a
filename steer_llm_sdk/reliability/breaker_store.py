"""Breaker state shared by every process and host (Redis), behind a narrow interface.

``STEER_BREAKER_URL=redis://host:6379/0`` (or :func:`configure_breaker_store`) makes every
breaker keep its state, failure/success counters and open-since timestamp in one Redis hash
per endpoint, ``<prefix>:breaker:<name>`` (prefix ``STEER_BREAKER_PREFIX``, default
``steer``), and lets exactly one call fleet-wide run the half-open trial (``SET NX PX`` on
``<prefix>:breaker:<name>:trial``). Unset, breakers stay in-process (pybreaker's memory
storage) and nothing here touches the network.

breakers.py talks to this module through four calls only -- ``storage_for`` (a pybreaker
storage, or None for the default), ``acquire_trial`` / ``release_trial`` and ``shared_states``
-- so the breaker semantics can change without touching the store.

If Redis cannot be reached, every operation falls back to a per-process memory copy: one
warning per outage, short socket timeouts, and Redis is retried only after
``RETRY_AFTER_S``, so an outage never blocks or fails a provider call.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from steer_llm_sdk.reliability.breakers import pybreaker  # without its eager redis import

logger = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_AFTER_S = 30.0
SOCKET_TIMEOUT_S = 0.5

__all__ = [
    "RedisBreakerStore",
    "acquire_trial",
    "configure_breaker_store",
    "get_breaker_store",
    "release_trial",
    "shared_states",
    "storage_for",
]


class RedisBreakerStore:
    """State, counters, opened-at and the half-open trial lock of every breaker, in Redis."""

    def __init__(self, url: str, prefix: str = "steer") -> None:
        import redis  # the `redis` extra

        self.url = url
        self.prefix = prefix
        self._redis = redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_S,
                                           socket_connect_timeout=SOCKET_TIMEOUT_S)
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._trial_tokens: dict[str, str] = {}

    # -- keys and fallback --------------------------------------------------------------------
    def key(self, name: str) -> str:
        return f"{self.prefix}:breaker:{name}"

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def run(self, op: Callable[[Any], T], fallback: Callable[[], T]) -> T:
        """``op(redis)``, or ``fallback()`` while the store is down (one warning per outage)."""
        if not self.available:
            return fallback()
        try:
            return op(self._redis)
        except self._errors as exc:
            with self._lock:
                first = self.available
                self._down_until = time.monotonic() + RETRY_AFTER_S
            if first:
                logger.warning("breaker store %s unreachable (%s: %s): breakers use "
                               "process-local state; retrying the store in %.0f s",
                               self.url, type(exc).__name__, exc, RETRY_AFTER_S)
            return fallback()

    # -- the half-open trial ----------------------------------------------------------------
    def acquire_trial(self, name: str, ttl_s: float) -> bool:
        """True for exactly one caller fleet-wide until released or ``ttl_s`` passes."""
        token = f"{os.getpid()}:{threading.get_ident()}:{time.monotonic_ns()}"
        got = self.run(lambda r: bool(r.set(self.key(name) + ":trial", token, nx=True,
                                            px=max(1, int(ttl_s * 1000)))), lambda: True)
        if got:
            with self._lock:
                self._trial_tokens[name] = token
        return got

    def release_trial(self, name: str) -> None:
        with self._lock:
            token = self._trial_tokens.pop(name, None)
        if token is None:
            return
        script = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
                  "return redis.call('del', KEYS[1]) else return 0 end")
        self.run(lambda r: r.eval(script, 1, self.key(name) + ":trial", token), lambda: 0)

    # -- listing -------------------------------------------------------------------------------
    def states(self) -> dict[str, dict[str, Any]]:
        """Every breaker in the store: state, counters, opened_at (epoch s), reset_timeout_s."""
        def read(r: Any) -> dict[str, dict[str, Any]]:
            found: dict[str, dict[str, Any]] = {}
            prefix = self.key("")
            for raw in r.scan_iter(match=prefix + "*", count=200):
                key = raw.decode()
                if key.endswith(":trial"):
                    continue
                fields = {k.decode(): v.decode() for k, v in r.hgetall(key).items()}
                found[key.removeprefix(prefix)] = {
                    "state": fields.get("state", pybreaker.STATE_CLOSED),
                    "fail_counter": int(fields.get("fail", 0) or 0),
                    "success_counter": int(fields.get("success", 0) or 0),
                    "opened_at": float(fields["opened_at"]) if fields.get("opened_at") else None,
                    "reset_timeout_s": float(fields.get("reset_timeout_s", 0) or 0),
                }
            return found

        return self.run(read, dict)


class SharedStorage(pybreaker.CircuitBreakerStorage):
    """pybreaker storage over :class:`RedisBreakerStore`, with a memory copy for outages."""

    is_shared = True  # breakers.py: the fleet's failure counter may open the breaker

    def __init__(self, store: RedisBreakerStore, name: str, reset_timeout_s: float) -> None:
        super().__init__(name)
        self._store = store
        self._key = store.key(name)
        self._local = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
        store.run(lambda r: r.pipeline().hsetnx(self._key, "state", pybreaker.STATE_CLOSED)
                  .hset(self._key, "reset_timeout_s", reset_timeout_s).execute(), lambda: None)

    def _get(self, field: str) -> str | None:
        raw = self._store.run(lambda r: r.hget(self._key, field), lambda: b"\0")
        if raw == b"\0":
            raise LookupError  # store down: the caller reads the local copy
        return raw.decode() if raw is not None else None

    @property
    def state(self) -> str:
        try:
            return self._get("state") or pybreaker.STATE_CLOSED
        except LookupError:
            return self._local.state

    @state.setter
    def state(self, state: str) -> None:
        self._local.state = state
        self._store.run(lambda r: r.hset(self._key, "state", str(state)), lambda: None)

    def _incr(self, field: str, local: Callable[[], None]) -> None:
        local()
        self._store.run(lambda r: r.hincrby(self._key, field, 1), lambda: None)

    def _zero(self, field: str, local: Callable[[], None]) -> None:
        local()
        self._store.run(lambda r: r.hset(self._key, field, 0), lambda: None)

    def increment_counter(self) -> None:
        self._incr("fail", self._local.increment_counter)

    def reset_counter(self) -> None:
        self._zero("fail", self._local.reset_counter)

    def increment_success_counter(self) -> None:
        self._incr("success", self._local.increment_success_counter)

    def reset_success_counter(self) -> None:
        self._zero("success", self._local.reset_success_counter)

    def _int(self, field: str, local: int) -> int:
        try:
            return int(self._get(field) or 0)
        except LookupError:
            return local

    @property
    def counter(self) -> int:
        return self._int("fail", self._local.counter)

    @property
    def success_counter(self) -> int:
        return self._int("success", self._local.success_counter)

    @property
    def opened_at(self) -> datetime | None:
        try:
            raw = self._get("opened_at")
        except LookupError:
            return self._local.opened_at
        return datetime.fromtimestamp(float(raw), UTC) if raw else None

    @opened_at.setter
    def opened_at(self, now: datetime) -> None:
        self._local.opened_at = now
        self._store.run(lambda r: r.hset(self._key, "opened_at", f"{now.timestamp():.6f}"),
                        lambda: None)


# -- the process-wide store (None = in-process breakers) -----------------------------------

_store: RedisBreakerStore | None = None
_configured = False
_store_lock = threading.Lock()


def configure_breaker_store(url: str | None, prefix: str | None = None) -> None:
    """Use ``url`` (``redis://...``) for breakers created from now on; None = in-process."""
    global _store, _configured
    with _store_lock:
        if url and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"STEER_BREAKER_URL must be a redis:// URL, got {url!r}")
        _store = RedisBreakerStore(url, prefix or os.environ.get("STEER_BREAKER_PREFIX")
                                   or "steer") if url else None
        _configured = True


def get_breaker_store() -> RedisBreakerStore | None:
    """The configured store; read from ``STEER_BREAKER_URL`` on first use."""
    if not _configured:
        configure_breaker_store(os.environ.get("STEER_BREAKER_URL") or None)
    return _store


def storage_for(name: str, reset_timeout_s: float) -> pybreaker.CircuitBreakerStorage | None:
    store = get_breaker_store()
    return SharedStorage(store, name, reset_timeout_s) if store is not None else None


def acquire_trial(name: str, ttl_s: float) -> bool:
    store = get_breaker_store()
    return True if store is None else store.acquire_trial(name, ttl_s)


def release_trial(name: str) -> None:
    store = get_breaker_store()
    if store is not None:
        store.release_trial(name)


def shared_states() -> dict[str, dict[str, Any]]:
    store = get_breaker_store()
    return {} if store is None else store.states()
