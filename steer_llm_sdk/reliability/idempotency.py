"""Persistent idempotency: run an orchestration once per key, replay its answer afterwards.

The 0.3.2 store lived in process memory, so a restart forgot every answer and two workers could
run the same request twice. Here the record lives in a shared backend (SQLite file, Redis or
PostgreSQL) so every process and host sees the same claim.

Caller protocol (the store keeps the bookkeeping, so the caller stays this small)::

    request_hash = canonical_request_hash(request)
    try:
        result = await store.claim(key, request_hash, ttl_s=3600)
    except SharedFailure as failed:         # we waited on a run that failed: its error
        raise rebuild(failed.failure_json)
    if result is None:                      # we own the key: run it
        try:
            answer = await run(request)
            await store.complete(key, request_hash, answer.model_dump_json(), ttl_s=3600)
        except ClassifiedError as exc:
            await store.fail(key, error_json(exc))  # its waiters get it: one execution
            raise
        except BaseException:
            await store.release(key)        # crash/cancel: one waiter runs it again
            raise
    else:
        answer = Answer.model_validate_json(result)   # replay

Ownership design: ``claim`` writes an in-flight record carrying a random owner token and
returns ``None``; the store remembers ``key -> token`` in this process (thread-safe map), and
``complete``/``release`` only act on a record that still carries that token (compare-and-set in
the backend). Thus a worker whose lease expired and was taken over cannot overwrite or drop the
new owner's record from another process. Within one process a key has at most one live token;
if a lease expires mid-run and another coroutine of the same process re-claims the key, the
map holds the newer token, so whichever of the two finishes first completes the record (same
request hash, so either answer is valid) and the other's ``complete`` becomes a logged no-op.
Leases therefore must be longer than the longest run (default 600 s).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import secrets
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Literal

from steer_llm_sdk.errors import ConflictError
from steer_llm_sdk.reliability.request_hash import (  # re-exported: part of this module's API
    canonical_request_hash,
    scoped_key,
    steer_home,
)

__all__ = [
    "DEFAULT_FAILURE_TTL_S",
    "DEFAULT_LEASE_S",
    "DEFAULT_WAIT_S",
    "ENV_IDEMPOTENCY_URL",
    "ClaimOutcome",
    "IdempotencyRecord",
    "IdempotencyStore",
    "SharedFailure",
    "canonical_request_hash",
    "make_idempotency_store",
    "scoped_key",
    "steer_home",
]

log = logging.getLogger(__name__)

ENV_IDEMPOTENCY_URL = "STEER_IDEMPOTENCY_URL"
DEFAULT_LEASE_S = 30.0  # renewed by the owner's heartbeat; a dead owner's key frees within it
DEFAULT_WAIT_S = 300.0  # how long claim() waits for another owner's run by default
DEFAULT_FAILURE_TTL_S = 60.0  # how long a failed execution stays visible to its waiters

RecordState = Literal["in_flight", "completed", "failed"]


class SharedFailure(Exception):
    """The in-flight execution this caller waited on failed; ``failure_json`` is what its owner
    recorded with :meth:`IdempotencyStore.fail` (the classified error, or the failed output).
    Raised by ``claim`` so a failing request runs once for all of its concurrent callers."""

    def __init__(self, key: str, failure_json: str | None) -> None:
        self.key = key
        self.failure_json = failure_json
        super().__init__(f"the run holding idempotency key {key!r} failed")


@dataclasses.dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """One stored key. ``result_json`` holds the answer once ``state == "completed"`` and the
    recorded failure once ``state == "failed"``."""

    key: str
    request_hash: str
    state: RecordState
    owner: str | None
    result_json: str | None
    created_at: float  # unix seconds
    expires_at: float  # unix seconds: lease end while in flight, ttl end once completed


@dataclasses.dataclass(frozen=True, slots=True)
class ClaimOutcome:
    """What one atomic claim attempt found; backends return it, the base class loops on it."""

    status: Literal["owned", "completed", "in_flight", "failed"]
    result_json: str | None = None
    lease_expires_at: float | None = None
    previous_run: str | None = None  # owned: the run ref of a crashed owner's expired claim


@dataclasses.dataclass(slots=True)
class _Ownership:
    token: str
    request_hash: str
    ttl_s: float
    heartbeat: asyncio.Task[None] | None = None
    previous_run: str | None = None


class IdempotencyStore(ABC):
    """Backend-neutral claim/complete/fail/release protocol; see the module docstring.

    Subclasses implement the atomic single-attempt primitives (``_try_claim``, ``_renew``,
    ``_complete``, ``_fail``, ``_release``) plus ``get``/``purge_expired``/``aclose``; waiting,
    timeouts, heartbeats and ownership bookkeeping live here so every backend behaves the same.

    ``lease_s`` is how long an in-flight claim lives without a heartbeat (a crashed owner's key
    is free again after at most this long); ``heartbeat_s`` is how often a live owner renews it
    (default ``lease_s / 3``; ``0`` disables renewal, then the lease must outlast the run).
    """

    def __init__(self, *, lease_s: float = DEFAULT_LEASE_S, heartbeat_s: float | None = None,
                 failure_ttl_s: float = DEFAULT_FAILURE_TTL_S) -> None:
        if lease_s <= 0:
            raise ValueError(f"lease_s must be > 0, got {lease_s}")
        if heartbeat_s is not None and heartbeat_s < 0:
            raise ValueError(f"heartbeat_s must be >= 0 (0 disables renewal), got {heartbeat_s}")
        if failure_ttl_s <= 0:
            raise ValueError(f"failure_ttl_s must be > 0, got {failure_ttl_s}")
        self.lease_s = float(lease_s)
        self.heartbeat_s = heartbeat_s
        self.failure_ttl_s = float(failure_ttl_s)
        self._owners: dict[str, _Ownership] = {}
        self._owners_lock = threading.Lock()
        self._background: set[asyncio.Task[Any]] = set()  # strong refs to orphan releases

    # ---- public API -------------------------------------------------------------------------

    async def claim(self, key: str, request_hash: str, *, ttl_s: float,
                    wait_timeout_s: float = DEFAULT_WAIT_S, poll_s: float = 0.05,
                    lease_s: float | None = None,
                    heartbeat_s: float | None = None) -> str | None:
        """Return the stored result JSON to replay, or ``None`` when the caller now owns ``key``.

        Raises ConflictError if ``key`` is live with another request hash, SharedFailure if the
        execution this call waited on failed, and TimeoutError if another worker keeps the same
        request in flight for longer than ``wait_timeout_s``. ``ttl_s`` is remembered as the
        default retention for ``complete``; ``lease_s`` and ``heartbeat_s`` override the
        store's settings for this claim.
        """
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be > 0, got {ttl_s}")
        lease = self.lease_s if lease_s is None else float(lease_s)
        if lease <= 0:
            raise ValueError(f"lease_s must be > 0, got {lease}")
        deadline = time.monotonic() + max(wait_timeout_s, 0)
        waited = False  # once we saw an execution in flight, its failure is ours to report
        while True:
            token = secrets.token_hex(16)
            outcome = await self._claim_once(key, request_hash, token, ttl_s, lease,
                                             take_failed=not waited, heartbeat_s=heartbeat_s)
            if outcome.status == "owned":
                return None
            if outcome.status == "completed":
                return outcome.result_json
            if outcome.status == "failed":
                raise SharedFailure(key, outcome.result_json)
            waited = True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                lease_left = (outcome.lease_expires_at or 0) - time.time()
                raise TimeoutError(
                    f"idempotency key {key!r} is still being run by another worker after "
                    f"waiting {wait_timeout_s:g}s (its lease ends in {max(lease_left, 0):.0f}s "
                    "unless its owner renews it). Retry later, or allow a longer wait "
                    "(OrchestrationConfig.timeout_ms, ReliabilityConfig.idempotency_wait_s)."
                )
            await asyncio.sleep(min(poll_s, remaining))

    async def complete(self, key: str, request_hash: str, result_json: str, *,
                       ttl_s: float | None = None) -> None:
        """Store ``result_json`` as the answer for ``key``, kept until now + ``ttl_s``.

        Only this process's in-flight claim becomes completed; if the lease was lost (expired
        and taken over, or released) nothing is written and a warning is logged, because the
        record now belongs to someone else.
        """
        with self._owners_lock:
            own = self._owners.get(key)
            if own is not None and own.request_hash != request_hash:
                raise ValueError(f"complete({key!r}) got a request hash other than the claimed one")
            self._owners.pop(key, None)
        if own is None:
            log.warning("complete(%r): this process holds no claim on the key; not stored", key)
            return
        _stop(own)
        ttl = own.ttl_s if ttl_s is None else ttl_s
        if ttl <= 0:
            raise ValueError(f"ttl_s must be > 0, got {ttl}")
        if not await self._complete(key, request_hash, own.token, result_json, ttl):
            log.warning("complete(%r): the claim was lost (lease expired or released); "
                        "result not stored", key)

    async def fail(self, key: str, failure_json: str, *, ttl_s: float | None = None) -> None:
        """Record that this process's run of ``key`` failed with ``failure_json``.

        Callers already waiting on the run get it (``SharedFailure``) instead of running the
        request again; later callers take the key over as if it were free (a failure is never
        replayed as the answer). The record disappears after ``ttl_s`` (``failure_ttl_s``).
        """
        own = self._pop_owner(key)
        if own is None:
            return
        ttl = self.failure_ttl_s if ttl_s is None else ttl_s
        if ttl <= 0:
            raise ValueError(f"ttl_s must be > 0, got {ttl}")
        await self._fail(key, own.request_hash, own.token, failure_json, ttl)

    async def release(self, key: str) -> None:
        """Drop this process's in-flight claim: nothing stored, the next claimer runs it."""
        own = self._pop_owner(key)
        if own is not None:
            await self._release(key, own.token)

    async def annotate(self, key: str, run_ref: str) -> bool:
        """Record which run (e.g. a Prefect flow run id) holds our claim on ``key``, so whoever
        takes the key over after we crash can clean that run up (``taken_over_run``)."""
        with self._owners_lock:
            own = self._owners.get(key)
        return own is not None and await self._annotate(key, own.token, run_ref)

    def taken_over_run(self, key: str) -> str | None:
        """The run ref a crashed previous owner recorded, if our claim took its key over."""
        with self._owners_lock:
            own = self._owners.get(key)
        return own.previous_run if own is not None else None

    def owns(self, key: str) -> bool:
        """True while this process holds an unfinished claim on ``key`` (for diagnostics)."""
        with self._owners_lock:
            return key in self._owners

    async def __aenter__(self) -> IdempotencyStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- backend primitives -----------------------------------------------------------------

    @abstractmethod
    async def _try_claim(self, key: str, request_hash: str, token: str, lease_s: float,
                         ttl_s: float, take_failed: bool = True) -> ClaimOutcome:
        """One atomic attempt: insert an in-flight record (owned) or report the live one.

        Must treat expired records as absent and raise ConflictError on a different hash. A
        ``failed`` record is taken over like an absent one when ``take_failed`` (a new caller),
        else reported as ``failed`` with its failure JSON (a caller that waited on that run).
        """

    @abstractmethod
    async def _renew(self, key: str, token: str, lease_s: float) -> bool:
        """Extend our in-flight claim to now + ``lease_s``; False if it is not ours anymore."""

    @abstractmethod
    async def _annotate(self, key: str, token: str, run_ref: str) -> bool:
        """Store ``run_ref`` on our in-flight claim; it outlives the lease so a new owner learns
        it (``ClaimOutcome.previous_run``) when it takes over an expired claim."""

    @abstractmethod
    async def _complete(self, key: str, request_hash: str, token: str, result_json: str,
                        ttl_s: float) -> bool:
        """Compare-and-set in-flight(token, hash) -> completed; False if not ours anymore."""

    @abstractmethod
    async def _fail(self, key: str, request_hash: str, token: str, failure_json: str,
                    ttl_s: float) -> bool:
        """Compare-and-set in-flight(token, hash) -> failed; False if not ours anymore."""

    @abstractmethod
    async def _release(self, key: str, token: str) -> bool:
        """Delete the in-flight record if it still carries ``token``."""

    @abstractmethod
    async def get(self, key: str) -> IdempotencyRecord | None:
        """The live (unexpired) record for ``key``, or None."""

    @abstractmethod
    async def purge_expired(self) -> int:
        """Delete expired records now; return how many were removed."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release connections (the async form; prefer it inside event loops)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections without an event loop (best effort for async backends)."""

    async def aclose_loop(self) -> None:
        """Close only what belongs to the running event loop.

        A thread that shares the store through its own short-lived loop (``asyncio.run``)
        calls this before the loop ends so its connections do not leak; other loops' users
        are unaffected. Stores without loop-bound connections need do nothing.
        """
        return None

    # ---- helpers ----------------------------------------------------------------------------

    async def _claim_once(self, key: str, request_hash: str, token: str, ttl_s: float,
                          lease_s: float, *, take_failed: bool = True,
                          heartbeat_s: float | None = None) -> ClaimOutcome:
        """Run one attempt; if we are cancelled after the backend granted it, give it back.

        Without this, a cancelled caller could leave an ownerless in-flight record that blocks
        everyone until its lease expires.
        """
        task = asyncio.ensure_future(
            self._try_claim(key, request_hash, token, lease_s, ttl_s, take_failed))
        try:
            outcome = await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(lambda t: self._release_orphan(t, key, token))
            raise
        if outcome.status == "owned":
            own = _Ownership(token, request_hash, ttl_s, previous_run=outcome.previous_run)
            with self._owners_lock:
                previous = self._owners.get(key)
                self._owners[key] = own
            if previous is not None:
                _stop(previous)
            own.heartbeat = self._start_heartbeat(key, token, lease_s, heartbeat_s)
        return outcome

    def _start_heartbeat(self, key: str, token: str, lease_s: float,
                         heartbeat_s: float | None) -> asyncio.Task[None] | None:
        every = heartbeat_s if heartbeat_s is not None else self.heartbeat_s
        every = lease_s / 3 if every is None else every
        if every <= 0:
            return None
        return asyncio.get_running_loop().create_task(
            self._heartbeat(key, token, lease_s, min(every, lease_s / 2)),
            name=f"steer-idempotency-heartbeat:{key}")

    async def _heartbeat(self, key: str, token: str, lease_s: float, every: float) -> None:
        """Renew the lease while this process lives and holds the claim."""
        while True:
            await asyncio.sleep(every)
            try:
                renewed = await self._renew(key, token, lease_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a blip: the lease outlives two more attempts
                log.warning("idempotency heartbeat for %r failed: %r", key, exc)
                continue
            if not renewed:
                log.warning("idempotency claim on %r was lost (lease expired and taken over); "
                            "another worker may now run it too", key)
                return

    def _release_orphan(self, task: asyncio.Future[ClaimOutcome], key: str, token: str) -> None:
        if task.cancelled() or task.exception() is not None or task.result().status != "owned":
            return
        loop = task.get_loop()
        if not loop.is_closed():
            release = loop.create_task(self._release(key, token))
            self._background.add(release)
            release.add_done_callback(self._background.discard)

    def _pop_owner(self, key: str) -> _Ownership | None:
        with self._owners_lock:
            own = self._owners.pop(key, None)
        if own is not None:
            _stop(own)
        return own

    def _forget_owners(self) -> None:
        """Forget claims (after fork the child must not act on the parent's claims)."""
        with self._owners_lock:
            self._owners.clear()


def _stop(own: _Ownership) -> None:
    """Stop an ownership's heartbeat (from any thread: the task belongs to the owner's loop)."""
    task, own.heartbeat = own.heartbeat, None
    if task is None or task.done():
        return
    loop = task.get_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        task.cancel()
    elif not loop.is_closed():
        loop.call_soon_threadsafe(task.cancel)


def ensure_same_hash(key: str, stored_hash: str, request_hash: str) -> None:
    """Backends call this on a live record: reusing a key for another request is a conflict."""
    if stored_hash != request_hash:
        raise ConflictError(key)


def make_idempotency_store(url: str | None = None, **kwargs: Any) -> IdempotencyStore:
    """Build a store from a URL (or ``$STEER_IDEMPOTENCY_URL``; default: SQLite in steer home).

    * ``None`` / ``sqlite://`` -> ``<steer home>/idempotency.sqlite3``
    * ``sqlite:///relative/path.db`` and ``sqlite:////absolute/path.db`` (SQLAlchemy style)
    * ``redis://``, ``rediss://``, ``unix://`` -> Redis
    * ``postgresql://``, ``postgres://`` -> PostgreSQL

    Extra keyword arguments (e.g. ``lease_s``, ``prefix``) go to the store's constructor.
    """
    url = url or os.environ.get(ENV_IDEMPOTENCY_URL) or None
    if url is None:
        from steer_llm_sdk.reliability.idempotency_sqlite import SQLiteIdempotencyStore

        return SQLiteIdempotencyStore(**kwargs)
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        from steer_llm_sdk.reliability.idempotency_sqlite import SQLiteIdempotencyStore

        rest = url[len("sqlite:"):]
        if rest.startswith("//"):
            rest = rest[2:]
        path = rest[1:] if rest.startswith("/") else rest
        return SQLiteIdempotencyStore(Path(path).expanduser() if path else None, **kwargs)
    if scheme in ("redis", "rediss", "unix"):
        from steer_llm_sdk.reliability.idempotency_redis import RedisIdempotencyStore

        return RedisIdempotencyStore(url, **kwargs)
    if scheme in ("postgresql", "postgres"):
        from steer_llm_sdk.reliability.idempotency_postgres import PostgresIdempotencyStore

        return PostgresIdempotencyStore(url, **kwargs)
    raise ValueError(
        f"unsupported idempotency store URL {url!r}; use sqlite:///path, redis://host:port/db "
        f"or postgresql://user@host/db (set via {ENV_IDEMPOTENCY_URL})"
    )
