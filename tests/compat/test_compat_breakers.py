"""CircuitBreakerConfig's 0.3.2 fields; on_open / on_close fire on real pybreaker transitions
and never reach JSON (they are callables)."""

from __future__ import annotations

import asyncio

import pytest

from steer_llm_sdk.config import CircuitBreakerConfig, ReliabilityConfig
from steer_llm_sdk.errors import ProviderError
from steer_llm_sdk.reliability import BreakerRegistry


def test_0_3_2_fields_and_aliases():
    config = CircuitBreakerConfig(failure_threshold=3, timeout=1.0, window_size=5,
                                  half_open_requests=2)
    assert (config.reset_timeout_s, config.timeout) == (1.0, 1.0)
    assert (config.window_size, config.half_open_requests) == (5, 2)


def test_callbacks_are_excluded_from_json():
    config = CircuitBreakerConfig(on_open=print, on_close=print)
    dumped = config.model_dump(mode="json")
    assert "on_open" not in dumped and "on_close" not in dumped
    reliability = ReliabilityConfig(circuit_breaker_configs={"openai": config})
    assert "on_open" not in reliability.model_dump_json()


async def test_on_open_and_async_on_close_fire_on_transitions():
    opened, closed = [], []

    async def on_close(cb):
        await asyncio.sleep(0)
        closed.append(cb.name)

    config = CircuitBreakerConfig(failure_threshold=2, reset_timeout_s=0.05,
                                  on_open=lambda cb: opened.append(cb.name), on_close=on_close)
    registry = BreakerRegistry()

    async def fail():
        raise ProviderError("down", provider="compat-cb", status_code=503)

    async def ok():
        return "ok"

    for _ in range(2):
        with pytest.raises(ProviderError):
            await registry.call("compat-cb", config, fail)
    assert opened == ["compat-cb"] and closed == []
    assert registry.states()["compat-cb"] == "open"
    await asyncio.sleep(0.06)  # reset timeout elapses: the next call is the half-open trial
    assert await registry.call("compat-cb", config, ok) == "ok"
    for _ in range(3):  # the coroutine callback was scheduled on this loop; let it run
        await asyncio.sleep(0)
    assert closed == ["compat-cb"]


async def test_a_failing_callback_does_not_break_the_breaker():
    def explode(cb):
        raise RuntimeError("callback bug")

    config = CircuitBreakerConfig(failure_threshold=1, on_open=explode)
    registry = BreakerRegistry()

    async def fail():
        raise ProviderError("down", status_code=500)

    with pytest.raises(ProviderError):
        await registry.call("compat-cb2", config, fail)
    assert registry.states()["compat-cb2"] == "open"


def test_default_entry_of_circuit_breaker_configs_applies_to_other_providers():
    config = ReliabilityConfig(circuit_breaker_configs={
        "mock": CircuitBreakerConfig(failure_threshold=3),
        "default": CircuitBreakerConfig(failure_threshold=4)})
    assert config.breaker_for("mock").failure_threshold == 3
    assert config.breaker_for("other").failure_threshold == 4
    assert ReliabilityConfig().breaker_for("x").failure_threshold == 5
