"""Breakers shared through Redis (STEER_BREAKER_URL): two registries stand for two processes
(each builds its own pybreaker breaker over the shared store), real Redis on 127.0.0.1,
guarded_call as providers use it. Skipped when Redis is not running."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid

import pytest

from steer_llm_sdk.config import CircuitBreakerConfig
from steer_llm_sdk.errors import CircuitOpenError
from steer_llm_sdk.reliability import breaker_store
from steer_llm_sdk.reliability.breakers import BreakerRegistry

pytestmark = pytest.mark.services
REDIS_URL = os.environ.get("STEER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CFG = CircuitBreakerConfig(failure_threshold=3, reset_timeout_s=0.3)


class Down(Exception):
    """A provider failure (a system error for the breaker): it carries the provider's HTTP
    status, so the breaker knows the request reached the provider."""

    status_code = 503


@pytest.fixture
def shared_store():
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        pytest.skip("Redis is not reachable on 127.0.0.1:6379 (start redis-server)")
    prefix = f"steer-test-{uuid.uuid4().hex[:10]}"
    breaker_store.configure_breaker_store(REDIS_URL, prefix=prefix)
    store = breaker_store.get_breaker_store()
    yield store
    for key in store._redis.scan_iter(match=prefix + ":*"):
        store._redis.delete(key)
    breaker_store.configure_breaker_store(None)


async def _fail() -> None:
    raise Down("503")


async def _ok() -> str:
    return "ok"


async def _call(registry: BreakerRegistry, fn) -> str:
    try:
        return await registry.call("sim", CFG, fn)
    except CircuitOpenError:
        return "rejected"
    except Down:
        return "failed"


async def test_failures_of_two_processes_open_one_shared_breaker(shared_store):
    a, b = BreakerRegistry(), BreakerRegistry()
    assert [await _call(a, _fail), await _call(b, _fail), await _call(a, _fail)] == ["failed"] * 3
    # the third failure (counted across both) opened it for both
    assert await _call(b, _ok) == "rejected"
    assert a.states() == b.states() == {"sim": "open"}
    # a process that never called the endpoint sees the shared state too
    assert BreakerRegistry().states() == {"sim": "open"}
    assert shared_store.states()["sim"]["fail_counter"] == 3


async def test_half_open_trial_is_one_call_fleet_wide(shared_store):
    a, b = BreakerRegistry(), BreakerRegistry()
    for _ in range(3):
        await _call(a, _fail)
    await asyncio.sleep(CFG.reset_timeout_s + 0.05)
    release = asyncio.Event()

    async def slow_ok() -> str:
        await release.wait()
        return "ok"

    calls: list[str] = []

    async def counted_ok() -> str:
        calls.append("b")
        return "ok"

    trial = asyncio.create_task(_call(a, slow_ok))
    await asyncio.sleep(0.05)
    # b's breaker is half-open too, but a (another process) holds the one fleet-wide trial:
    # b waits for its outcome instead of making a second trial call
    waiter = asyncio.create_task(_call(b, counted_ok))
    await asyncio.sleep(0.3)
    assert not waiter.done() and calls == []
    release.set()
    assert await trial == "ok"
    assert await asyncio.wait_for(waiter, 10) == "ok"  # the trial closed it for everyone
    assert calls == ["b"]
    assert b.states() == {"sim": "closed"}


async def test_unreachable_store_falls_back_to_local_state_with_one_warning(caplog):
    breaker_store.configure_breaker_store("redis://127.0.0.1:1/0", prefix="nowhere")
    try:
        registry = BreakerRegistry()
        with caplog.at_level(logging.WARNING, logger="steer_llm_sdk.reliability.breaker_store"):
            results = [await _call(registry, _fail) for _ in range(4)]
        assert results == ["failed", "failed", "failed", "rejected"]  # local breaker works
        assert await _call(registry, _ok) == "rejected"
        warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(warnings) == 1
    finally:
        breaker_store.configure_breaker_store(None)


def test_store_url_must_be_redis():
    with pytest.raises(ValueError, match="STEER_BREAKER_URL must be a redis:// URL"):
        breaker_store.configure_breaker_store("postgresql://x")
    breaker_store.configure_breaker_store(None)


async def test_steer_breakers_shows_the_shared_state(shared_store):
    from typer.testing import CliRunner

    from steer_llm_sdk.cli import app

    registry = BreakerRegistry()
    for _ in range(3):
        await _call(registry, _fail)
    result = CliRunner().invoke(app, ["breakers"])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if x.startswith("sim "))
    assert "open" in line and " 3 " in line


def test_reliability_config_chooses_the_shared_store(shared_store):
    from steer_llm_sdk.config import ReliabilityConfig
    from steer_llm_sdk.orchestration import Orchestrator

    breaker_store.configure_breaker_store(None)
    Orchestrator(reliability_config=ReliabilityConfig(breaker_url=REDIS_URL))
    assert breaker_store.get_breaker_store() is not None
    assert breaker_store.get_breaker_store().url == REDIS_URL
