"""Idempotency: canonical hashing, the SQLite store, and exactly-once across tasks/threads/procs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from pydantic import BaseModel

from steer_llm_sdk.errors import ConflictError
from steer_llm_sdk.reliability.idempotency import (
    IdempotencyStore,
    SharedFailure,
    canonical_request_hash,
    make_idempotency_store,
    scoped_key,
)
from steer_llm_sdk.reliability.idempotency_sqlite import SQLiteIdempotencyStore

H1 = canonical_request_hash({"q": 1})
H2 = canonical_request_hash({"q": 2})
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path):
    s = SQLiteIdempotencyStore(tmp_path / "idem.sqlite3")
    yield s
    s.close()


# ---- hashing ---------------------------------------------------------------------------------


class Req(BaseModel):
    prompt: str
    params: dict[str, float]


def test_hash_ignores_key_order_and_whitespace() -> None:
    a = {"b": 1, "a": {"y": [1, 2], "x": "s"}}
    b = {"a": {"x": "s", "y": [1, 2]}, "b": 1}
    assert canonical_request_hash(a) == canonical_request_hash(b)
    assert len(canonical_request_hash(a)) == 64


def test_hash_differs_for_different_values() -> None:
    assert canonical_request_hash({"a": 1}) != canonical_request_hash({"a": 2})
    assert canonical_request_hash({"a": [1, 2]}) != canonical_request_hash({"a": [2, 1]})


def test_hash_of_pydantic_model_equals_its_json_dump() -> None:
    m = Req(prompt="hi", params={"t": 0.5, "p": 1.0})
    assert canonical_request_hash(m) == canonical_request_hash(
        {"params": {"p": 1.0, "t": 0.5}, "prompt": "hi"})
    assert canonical_request_hash({"req": m}) == canonical_request_hash({"req": m.model_dump()})


def test_hash_rejects_unknown_types_clearly() -> None:
    with pytest.raises(TypeError, match="cannot hash request value of type object"):
        canonical_request_hash({"x": object()})


def test_scoped_key() -> None:
    assert scoped_key("k1", "feasibility") == "k1:feasibility"


# ---- factory ---------------------------------------------------------------------------------


def test_factory_default_uses_steer_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("STEER_IDEMPOTENCY_URL", raising=False)
    s = make_idempotency_store(None)
    try:
        assert isinstance(s, SQLiteIdempotencyStore)
        assert s.path == tmp_path / "home" / "idempotency.sqlite3"
        assert s.path.exists()
    finally:
        s.close()


def test_factory_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = make_idempotency_store(f"sqlite:///{tmp_path}/a.db")  # tmp_path is absolute: 4 slashes
    assert isinstance(s, SQLiteIdempotencyStore) and s.path == tmp_path / "a.db"
    s.close()
    monkeypatch.setenv("STEER_IDEMPOTENCY_URL", f"sqlite:///{tmp_path}/env.db")
    s = make_idempotency_store()
    assert isinstance(s, SQLiteIdempotencyStore) and s.path == tmp_path / "env.db"
    s.close()
    r = make_idempotency_store("redis://127.0.0.1:6379/0", prefix="x:")
    assert type(r).__name__ == "RedisIdempotencyStore"  # constructing does not connect
    p = make_idempotency_store("postgresql://postgres@127.0.0.1/test", table="t")
    assert type(p).__name__ == "PostgresIdempotencyStore"
    with pytest.raises(ValueError, match="unsupported idempotency store URL"):
        make_idempotency_store("ftp://nope")


# ---- SQLite store: core protocol ---------------------------------------------------------------


async def test_claim_complete_replay(store: SQLiteIdempotencyStore) -> None:
    assert await store.claim("k", H1, ttl_s=60) is None
    assert store.owns("k")
    rec = await store.get("k")
    assert rec is not None and rec.state == "in_flight" and rec.owner
    await store.complete("k", H1, '{"answer": 42}', ttl_s=60)
    assert not store.owns("k")
    assert await store.claim("k", H1, ttl_s=60) == '{"answer": 42}'
    rec = await store.get("k")
    assert rec is not None and rec.state == "completed" and rec.result_json == '{"answer": 42}'


async def test_conflict_on_different_hash(store: SQLiteIdempotencyStore) -> None:
    assert await store.claim("k", H1, ttl_s=60) is None
    with pytest.raises(ConflictError) as err:  # in flight
        await store.claim("k", H2, ttl_s=60)
    assert err.value.key == "k"
    await store.complete("k", H1, "1", ttl_s=60)
    with pytest.raises(ConflictError):  # completed
        await store.claim("k", H2, ttl_s=60)


async def test_release_lets_next_claimer_run(store: SQLiteIdempotencyStore) -> None:
    assert await store.claim("k", H1, ttl_s=60) is None
    await store.release("k")  # the run failed: nothing is stored as the answer
    assert await store.get("k") is None
    assert await store.claim("k", H1, ttl_s=60) is None
    await store.complete("k", H1, '"second"')
    assert await store.claim("k", H1, ttl_s=60) == '"second"'


async def test_ttl_expiry(store: SQLiteIdempotencyStore) -> None:
    assert await store.claim("k", H1, ttl_s=0.2) is None
    await store.complete("k", H1, "1", ttl_s=0.2)
    assert await store.claim("k", H1, ttl_s=0.2) == "1"
    await asyncio.sleep(0.3)
    assert await store.get("k") is None
    assert await store.purge_expired() == 1
    assert await store.claim("k", H2, ttl_s=60) is None  # expired: free even for a new hash


async def test_crashed_owner_lease_expires(tmp_path: Path) -> None:
    path = tmp_path / "lease.sqlite3"
    crashed = SQLiteIdempotencyStore(path, lease_s=0.3, heartbeat_s=0)  # renews nothing: dead
    survivor = SQLiteIdempotencyStore(path, lease_s=0.3)
    assert await crashed.claim("k", H1, ttl_s=60) is None  # then the owner "dies"
    assert await crashed.annotate("k", "flow-run-1")
    t0 = time.monotonic()
    assert await survivor.claim("k", H1, ttl_s=60, poll_s=0.02) is None  # waits out the lease
    assert 0.15 < time.monotonic() - t0 < 2
    assert survivor.taken_over_run("k") == "flow-run-1"  # the run the crashed owner left
    await crashed.complete("k", H1, '"stale"', ttl_s=60)  # lost its lease: must not write
    assert (await survivor.get("k")).state == "in_flight"
    await survivor.complete("k", H1, '"fresh"', ttl_s=60)
    assert await crashed.claim("k", H1, ttl_s=60) == '"fresh"'
    crashed.close()
    survivor.close()


async def test_wait_timeout(store: SQLiteIdempotencyStore, tmp_path: Path) -> None:
    other = SQLiteIdempotencyStore(store.path)
    assert await other.claim("k", H1, ttl_s=60) is None
    with pytest.raises(TimeoutError, match="'k' is still being run by another worker"):
        await store.claim("k", H1, ttl_s=60, wait_timeout_s=0.2, poll_s=0.05)
    await other.release("k")
    other.close()


async def test_waiter_gets_result_when_owner_completes(store: SQLiteIdempotencyStore) -> None:
    other = SQLiteIdempotencyStore(store.path)
    assert await other.claim("k", H1, ttl_s=60) is None
    waiter = asyncio.create_task(store.claim("k", H1, ttl_s=60, poll_s=0.02))
    await asyncio.sleep(0.1)
    assert not waiter.done()
    await other.complete("k", H1, '"done"', ttl_s=60)
    assert await asyncio.wait_for(waiter, 2) == '"done"'
    other.close()


async def test_cancelled_claim_does_not_leave_an_orphan(store: SQLiteIdempotencyStore) -> None:
    task = asyncio.create_task(store.claim("k", H1, ttl_s=60))
    await asyncio.sleep(0)  # the insert is now running in a worker thread
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(50):
        await asyncio.sleep(0.02)
        if await store.get("k") is None:
            break
    assert await store.get("k") is None and not store.owns("k")
    assert await store.claim("k", H1, ttl_s=60) is None  # nobody has to wait out a lease


async def test_complete_misuse(store: SQLiteIdempotencyStore,
                               caplog: pytest.LogCaptureFixture) -> None:
    assert await store.claim("k", H1, ttl_s=60) is None
    with pytest.raises(ValueError, match="request hash other than the claimed one"):
        await store.complete("k", H2, "1")
    assert store.owns("k")  # still ours: the caller can complete correctly
    await store.complete("k", H1, "1")
    await store.complete("k", H1, "2")  # no claim any more: ignored, logged
    assert "holds no claim" in caplog.text
    assert await store.claim("k", H1, ttl_s=60) == "1"


async def test_persists_across_store_objects(tmp_path: Path) -> None:
    path = tmp_path / "persist.sqlite3"
    first = SQLiteIdempotencyStore(path)
    assert await first.claim("k", H1, ttl_s=60) is None
    await first.complete("k", H1, '{"v": 1}', ttl_s=60)
    first.close()
    second = SQLiteIdempotencyStore(path)  # as after a restart
    assert await second.claim("k", H1, ttl_s=60) == '{"v": 1}'
    second.close()


# ---- exactly once under concurrency ------------------------------------------------------------


async def run_once(store: IdempotencyStore, key: str, counter: list[int],
                   lock: threading.Lock) -> str:
    """The caller protocol from the module docstring; counts real executions."""
    result = await store.claim(key, H1, ttl_s=60, poll_s=0.02)
    if result is not None:
        return result
    try:
        with lock:
            counter[0] += 1
            n = counter[0]
        await asyncio.sleep(0.2)
        result = json.dumps({"run": n})
        await store.complete(key, H1, result, ttl_s=60)
        return result
    except BaseException:
        await store.release(key)
        raise


async def test_eight_concurrent_coroutines_run_once(store: SQLiteIdempotencyStore) -> None:
    counter, lock = [0], threading.Lock()
    results = await asyncio.gather(*(run_once(store, "k", counter, lock) for _ in range(8)))
    assert counter[0] == 1
    assert set(results) == {'{"run": 1}'}


def test_eight_threads_with_own_loops_run_once(store: SQLiteIdempotencyStore) -> None:
    counter, lock = [0], threading.Lock()
    results: list[str] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        results.append(asyncio.run(run_once(store, "k", counter, lock)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert counter[0] == 1
    assert len(results) == 8 and set(results) == {'{"run": 1}'}


def _run_script(tmp_path: Path, name: str, source: str, *args: str) -> subprocess.Popen[str]:
    script = tmp_path / name
    script.write_text(source)
    return subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE,
                            text=True, cwd=REPO_ROOT,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


_CRASH_SCRIPT = textwrap.dedent("""
    import asyncio, os, sys
    from steer_llm_sdk.reliability.idempotency_sqlite import SQLiteIdempotencyStore

    async def main():
        store = SQLiteIdempotencyStore(sys.argv[1], lease_s=0.5, heartbeat_s=0.1)
        assert await store.claim("crash-key", sys.argv[2], ttl_s=60) is None
        print("claimed", flush=True)
        os._exit(9)  # die mid-run: no complete, no release

    asyncio.run(main())
""")


async def test_crashed_process_lease_expires(tmp_path: Path) -> None:
    db = tmp_path / "crash.sqlite3"
    proc = _run_script(tmp_path, "crash.py", _CRASH_SCRIPT, str(db), H1)
    out, _ = await asyncio.to_thread(proc.communicate, timeout=90)
    assert out.strip() == "claimed" and proc.returncode == 9
    store = SQLiteIdempotencyStore(db)
    assert (await store.get("crash-key")).state == "in_flight"
    assert await store.claim("crash-key", H1, ttl_s=60, wait_timeout_s=5, poll_s=0.02) is None
    await store.complete("crash-key", H1, '"recovered"')
    store.close()


_PROC_SCRIPT = textwrap.dedent("""
    import asyncio, json, os, sys, time
    from steer_llm_sdk.reliability.idempotency_sqlite import SQLiteIdempotencyStore

    db, counter, start_at, h = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]

    async def main():
        store = SQLiteIdempotencyStore(db)
        time.sleep(max(0.0, start_at - time.time()))  # line all processes up
        result = await store.claim("proc-key", h, ttl_s=60, poll_s=0.02)
        if result is None:
            with open(counter, "a") as f:
                f.write(f"{os.getpid()}\\n")
            await asyncio.sleep(0.3)
            result = json.dumps({"pid": os.getpid()})
            await store.complete("proc-key", h, result, ttl_s=60)
        store.close()
        print(result)

    asyncio.run(main())
""")


def test_separate_processes_run_once(tmp_path: Path) -> None:
    db, counter = tmp_path / "procs.sqlite3", tmp_path / "executions.txt"
    SQLiteIdempotencyStore(db).close()  # create the file up front
    start_at = time.time() + 1.0
    procs = [_run_script(tmp_path, "claimer.py", _PROC_SCRIPT, str(db), str(counter),
                         str(start_at), H1) for _ in range(4)]
    outputs = [p.communicate(timeout=90)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    executions = counter.read_text().split()
    assert len(executions) == 1
    assert outputs == [json.dumps({"pid": int(executions[0])})] * 4


# ---- leases that follow their owner; failures shared with waiters -----------------------------


async def test_heartbeat_keeps_a_live_owners_claim_past_its_lease(tmp_path: Path) -> None:
    path = tmp_path / "hb.sqlite3"
    owner = SQLiteIdempotencyStore(path, lease_s=0.3)  # renews every 0.1 s
    other = SQLiteIdempotencyStore(path, lease_s=0.3)
    assert await owner.claim("k", H1, ttl_s=60) is None
    first = (await owner.get("k")).expires_at
    with pytest.raises(TimeoutError):  # three leases long: still in flight, never taken over
        await other.claim("k", H1, ttl_s=60, wait_timeout_s=0.9, poll_s=0.05)
    assert (await owner.get("k")).expires_at > first
    await owner.complete("k", H1, '"live"')
    assert await other.claim("k", H1, ttl_s=60) == '"live"'
    owner.close()
    other.close()


async def test_heartbeat_stops_after_complete(tmp_path: Path) -> None:
    store = SQLiteIdempotencyStore(tmp_path / "stop.sqlite3", lease_s=0.3)
    assert await store.claim("k", H1, ttl_s=60) is None
    heartbeat = store._owners["k"].heartbeat
    assert heartbeat is not None and not heartbeat.done()
    await store.complete("k", H1, "1")
    await asyncio.sleep(0)
    assert heartbeat.cancelled()
    store.close()


async def test_waiters_get_the_owners_failure_new_callers_run_again(tmp_path: Path) -> None:
    path = tmp_path / "fail.sqlite3"
    owner, waiter, late = (SQLiteIdempotencyStore(path) for _ in range(3))
    assert await owner.claim("k", H1, ttl_s=60) is None
    waiting = asyncio.create_task(waiter.claim("k", H1, ttl_s=60, poll_s=0.02))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await owner.fail("k", '{"error": "401"}')
    with pytest.raises(SharedFailure) as failed:
        await asyncio.wait_for(waiting, 2)
    assert failed.value.failure_json == '{"error": "401"}' and failed.value.key == "k"
    rec = await late.get("k")
    assert rec.state == "failed" and not owner.owns("k")
    assert await late.claim("k", H2, ttl_s=60) is None  # a failure is not an answer: free
    await late.complete("k", H2, '"second"')
    assert await owner.claim("k", H2, ttl_s=60) == '"second"'
    for s in (owner, waiter, late):
        s.close()


async def test_waiter_is_bounded_by_its_own_wait(tmp_path: Path) -> None:
    path = tmp_path / "wait.sqlite3"
    owner, waiter = SQLiteIdempotencyStore(path), SQLiteIdempotencyStore(path)
    assert await owner.claim("k", H1, ttl_s=60) is None
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="OrchestrationConfig.timeout_ms"):
        await waiter.claim("k", H1, ttl_s=60, wait_timeout_s=0.3)
    assert time.monotonic() - t0 < 5  # not the store's default wait of 300 s
    await owner.release("k")
    owner.close()
    waiter.close()


def test_old_schema_is_migrated(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE idempotency (key TEXT PRIMARY KEY, request_hash TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('in_flight', 'completed')), owner TEXT,
            result TEXT, created_at REAL NOT NULL, expires_at REAL NOT NULL);
        INSERT INTO idempotency VALUES ('old', 'h', 'completed', NULL, '"kept"', 1, 9e12);
    """)
    conn.commit()
    conn.close()
    store = SQLiteIdempotencyStore(path)

    async def check() -> None:
        assert await store.claim("old", "h", ttl_s=60) == '"kept"'
        assert await store.claim("k", H1, ttl_s=60) is None
        await store.fail("k", "{}")
        assert (await store.get("k")).state == "failed"

    asyncio.run(check())
    store.close()
