"""Idempotency stores against real Redis and PostgreSQL on 127.0.0.1 (skipped if not running)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import pytest

from steer_llm_sdk.errors import ConflictError
from steer_llm_sdk.reliability.idempotency import (
    IdempotencyStore,
    SharedFailure,
    canonical_request_hash,
)

pytestmark = pytest.mark.services

REDIS_URL = os.environ.get("STEER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PG_DSN = os.environ.get("STEER_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
H1 = canonical_request_hash({"q": 1})
H2 = canonical_request_hash({"q": 2})
Cleanup = Callable[[IdempotencyStore], Awaitable[None]]


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port),
                                 timeout=0.5).close()
        return True
    except OSError:
        return False


async def _redis_factory() -> tuple[Callable[[float], IdempotencyStore], Cleanup]:
    if not _reachable(REDIS_URL, 6379):
        pytest.skip(f"Redis is not reachable at {REDIS_URL} (start redis-server)")
    from steer_llm_sdk.reliability.idempotency_redis import RedisIdempotencyStore

    prefix = f"steer:test:{uuid.uuid4().hex}:"

    async def cleanup(store: IdempotencyStore) -> None:
        client = store._c().client
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)

    return (lambda lease_s, heartbeat_s: RedisIdempotencyStore(
        REDIS_URL, prefix=prefix, lease_s=lease_s, heartbeat_s=heartbeat_s), cleanup)


async def _pg_factory() -> tuple[Callable[[float], IdempotencyStore], Cleanup]:
    if not _reachable(PG_DSN, 5432):
        pytest.skip(f"PostgreSQL is not reachable at {PG_DSN} (start postgres)")
    import psycopg

    from steer_llm_sdk.reliability.idempotency_postgres import PostgresIdempotencyStore

    try:
        await (await psycopg.AsyncConnection.connect(PG_DSN)).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {PG_DSN} refused the connection: {exc}")
    table = f"steer_idem_test_{uuid.uuid4().hex[:12]}"

    async def cleanup(store: IdempotencyStore) -> None:
        await (await store._conn()).execute(f"DROP TABLE IF EXISTS {table}")

    return (lambda lease_s, heartbeat_s: PostgresIdempotencyStore(
        PG_DSN, table=table, lease_s=lease_s, heartbeat_s=heartbeat_s), cleanup)


@pytest.fixture(params=["redis", "postgres"])
async def make_store(request: pytest.FixtureRequest):
    """Factory fixture: each call is a new store object (like another process or host) on the
    same namespace (Redis prefix / Postgres table), unique to this test and removed after it."""
    factory, cleanup = await {"redis": _redis_factory, "postgres": _pg_factory}[request.param]()
    stores: list[IdempotencyStore] = []

    async def make(lease_s: float = 600.0, heartbeat_s: float | None = None) -> IdempotencyStore:
        stores.append(factory(lease_s, heartbeat_s))
        return stores[-1]

    yield make
    if stores:
        await cleanup(stores[0])
    for store in stores:
        await store.aclose()


async def test_claim_complete_replay_and_conflict(make_store) -> None:
    store = await make_store()
    assert await store.claim("k", H1, ttl_s=60) is None
    with pytest.raises(ConflictError):  # in flight, other request
        await store.claim("k", H2, ttl_s=60)
    await store.complete("k", H1, '{"a": 1}', ttl_s=60)
    assert await store.claim("k", H1, ttl_s=60) == '{"a": 1}'
    rec = await store.get("k")
    assert rec is not None and rec.state == "completed" and rec.result_json == '{"a": 1}'
    with pytest.raises(ConflictError):  # completed, other request
        await store.claim("k", H2, ttl_s=60)


async def test_release_and_ttl(make_store) -> None:
    store = await make_store()
    assert await store.claim("k", H1, ttl_s=60) is None
    await store.release("k")
    assert await store.get("k") is None
    assert await store.claim("k", H1, ttl_s=0.2) is None
    await store.complete("k", H1, "1", ttl_s=0.2)
    assert await store.claim("k", H1, ttl_s=0.2) == "1"
    await asyncio.sleep(0.3)
    assert await store.get("k") is None
    assert await store.claim("k", H2, ttl_s=60) is None  # expired: the key is free again


async def test_crashed_owner_lease_expires(make_store) -> None:
    crashed = await make_store(lease_s=0.3, heartbeat_s=0)  # renews nothing, like a dead owner
    survivor = await make_store(lease_s=0.3)
    assert await crashed.claim("k", H1, ttl_s=60) is None
    assert await crashed.annotate("k", "flow-run-1")
    t0 = time.monotonic()
    assert await survivor.claim("k", H1, ttl_s=60, poll_s=0.02) is None
    assert 0.1 < time.monotonic() - t0 < 3
    assert survivor.taken_over_run("k") == "flow-run-1"
    await crashed.complete("k", H1, '"stale"', ttl_s=60)  # lease lost: must not write
    assert (await survivor.get("k")).state == "in_flight"
    await survivor.complete("k", H1, '"fresh"', ttl_s=60)
    assert await crashed.claim("k", H1, ttl_s=60) == '"fresh"'


async def test_heartbeat_keeps_a_live_owners_claim(make_store) -> None:
    owner = await make_store(lease_s=0.4)  # renews every 0.13 s
    other = await make_store(lease_s=0.4)
    assert await owner.claim("k", H1, ttl_s=60) is None
    with pytest.raises(TimeoutError):  # three leases: never taken over while the owner lives
        await other.claim("k", H1, ttl_s=60, wait_timeout_s=1.2, poll_s=0.05)
    await owner.complete("k", H1, '"live"')
    assert await other.claim("k", H1, ttl_s=60) == '"live"'


async def test_waiters_get_the_failure_new_callers_take_over(make_store) -> None:
    owner, waiter, late = await make_store(), await make_store(), await make_store()
    assert await owner.claim("k", H1, ttl_s=60) is None
    waiting = asyncio.create_task(waiter.claim("k", H1, ttl_s=60, poll_s=0.02))
    await asyncio.sleep(0.15)
    assert not waiting.done()
    await owner.fail("k", '{"error": "401"}')
    with pytest.raises(SharedFailure) as failed:
        await asyncio.wait_for(waiting, 3)
    assert failed.value.failure_json == '{"error": "401"}'
    assert (await late.get("k")).state == "failed"
    assert await late.claim("k", H2, ttl_s=60) is None  # not an answer: free for anyone new
    await late.complete("k", H2, '"second"')
    assert await owner.claim("k", H2, ttl_s=60) == '"second"'


async def _run_once(store: IdempotencyStore, counter: list[int], lock: threading.Lock) -> str:
    result = await store.claim("k", H1, ttl_s=60, poll_s=0.02)
    if result is not None:
        return result
    try:
        with lock:
            counter[0] += 1
        await asyncio.sleep(0.2)
        result = json.dumps({"run": counter[0]})
        await store.complete("k", H1, result, ttl_s=60)
        return result
    except BaseException:
        await store.release("k")
        raise


async def test_eight_concurrent_claimers_run_once(make_store) -> None:
    store = await make_store()
    counter, lock = [0], threading.Lock()
    results = await asyncio.gather(*(_run_once(store, counter, lock) for _ in range(8)))
    assert counter[0] == 1 and set(results) == {'{"run": 1}'}


async def test_eight_threads_with_own_loops_run_once(make_store) -> None:
    store = await make_store()
    counter, lock = [0], threading.Lock()
    results: list[str] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        async def main() -> str:
            try:
                return await _run_once(store, counter, lock)
            finally:
                await store.aclose_loop()

        barrier.wait()
        results.append(asyncio.run(main()))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    await asyncio.to_thread(lambda: [t.start() for t in threads] and [t.join(10) for t in threads])
    assert counter[0] == 1 and len(results) == 8 and set(results) == {'{"run": 1}'}
