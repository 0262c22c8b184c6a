"""guarded_call / BreakerRegistry against real pybreaker breakers."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import httpx
import openai
import pybreaker
import pytest

from steer_llm_sdk.config import CircuitBreakerConfig
from steer_llm_sdk.errors import CircuitOpenError
from steer_llm_sdk.reliability.breaker_state import retry_pending
from steer_llm_sdk.reliability.breakers import (
    BreakerRegistry,
    BreakerStateCounter,
    get_breaker_registry,
    guarded_call,
)

RESET = 0.2
_names = itertools.count()


def _error(status: int) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://x/v1/chat/completions")
    response = httpx.Response(status, request=request, json={"error": {"message": "x"}})
    cls = openai.InternalServerError if status >= 500 else openai.BadRequestError
    return cls(f"status {status}", response=response, body=None)


class Provider:
    """An async fake endpoint that counts invocations."""

    def __init__(self) -> None:
        self.calls = 0

    async def fail(self, status: int = 500, delay: float = 0.0) -> str:
        self.calls += 1
        if delay:
            await asyncio.sleep(delay)
        raise _error(status)

    async def ok(self, delay: float = 0.0) -> str:
        self.calls += 1
        if delay:
            await asyncio.sleep(delay)
        return "ok"


@pytest.fixture
def registry() -> BreakerRegistry:
    return BreakerRegistry()


def _breaker(registry: BreakerRegistry, **overrides: object) -> pybreaker.CircuitBreaker:
    config = CircuitBreakerConfig(**{"failure_threshold": 3, "reset_timeout_s": RESET,
                                     **overrides})
    return registry.get(f"prov{next(_names)}", config)


async def _trip(breaker: pybreaker.CircuitBreaker, provider: Provider, n: int) -> None:
    for _ in range(n):
        with pytest.raises(openai.InternalServerError):
            await guarded_call(breaker, provider.fail)


async def test_failures_open_then_fail_fast_without_calling(registry: BreakerRegistry) -> None:
    breaker, provider = _breaker(registry), Provider()
    await _trip(breaker, provider, 2)
    assert breaker.fail_counter == 2 and breaker.current_state == "closed"
    with pytest.raises(openai.InternalServerError):  # the tripping call: original error
        await guarded_call(breaker, provider.fail)
    assert registry.states()[breaker.name] == "open"
    assert registry.listener.transitions_for(breaker.name) == [("closed", "open")]
    assert registry.listener.failures[breaker.name] == 3

    with pytest.raises(CircuitOpenError) as info:
        await guarded_call(breaker, provider.ok)
    assert provider.calls == 3  # fn was not invoked
    assert info.value.category == "circuit_open" and info.value.provider == breaker.name
    assert 0 < info.value.reopens_in_s <= RESET


async def test_half_open_trial_success_closes(registry: BreakerRegistry) -> None:
    breaker, provider = _breaker(registry), Provider()
    await _trip(breaker, provider, 3)
    await asyncio.sleep(RESET + 0.05)
    assert await guarded_call(breaker, provider.ok) == "ok"
    assert registry.states()[breaker.name] == "closed" and breaker.fail_counter == 0
    assert registry.listener.transitions_for(breaker.name) == [
        ("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


async def test_half_open_trial_failure_reopens(registry: BreakerRegistry) -> None:
    breaker, provider = _breaker(registry), Provider()
    await _trip(breaker, provider, 3)
    await asyncio.sleep(RESET + 0.05)
    with pytest.raises(openai.InternalServerError):
        await guarded_call(breaker, provider.fail)
    assert breaker.current_state == "open" and provider.calls == 4
    with pytest.raises(CircuitOpenError):  # a fresh reset_timeout started
        await guarded_call(breaker, provider.ok)
    assert provider.calls == 4
    assert registry.listener.transitions_for(breaker.name)[-2:] == [
        ("open", "half_open"), ("half_open", "open")]


async def test_half_open_runs_one_trial_and_the_others_wait_for_it(
    registry: BreakerRegistry,
) -> None:
    breaker, provider = _breaker(registry), Provider()
    await _trip(breaker, provider, 3)
    await asyncio.sleep(RESET + 0.05)
    in_flight: list[int] = []
    running = 0

    async def tracked() -> str:
        nonlocal running
        running += 1
        in_flight.append(running)
        try:
            return await provider.ok(0.05)
        finally:
            running -= 1

    results = await asyncio.gather(*(guarded_call(breaker, tracked) for _ in range(20)),
                                   return_exceptions=True)
    assert results == ["ok"] * 20  # the 19 waited for the trial instead of failing
    assert provider.calls == 3 + 20
    assert in_flight[0] == 1 and in_flight[1:] == sorted(in_flight[1:])  # the trial ran alone
    assert registry.listener.transitions_for(breaker.name) == [
        ("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


async def test_waiters_on_a_failing_trial_get_the_real_cause(registry: BreakerRegistry) -> None:
    breaker, provider = _breaker(registry), Provider()
    await _trip(breaker, provider, 3)
    await asyncio.sleep(RESET + 0.05)
    results = await asyncio.gather(*(guarded_call(breaker, provider.fail, 503, 0.05)
                                     for _ in range(5)), return_exceptions=True)
    assert isinstance(results[0], openai.InternalServerError)  # the trial: a real 503
    assert provider.calls == 3 + 1
    for waiter in results[1:]:
        assert isinstance(waiter, CircuitOpenError)
        assert waiter.last_error["category"] == "server_error"
        assert waiter.last_error["status_code"] == 503
        assert "503" in str(waiter) and waiter.to_dict()["last_error"]["status_code"] == 503


async def test_a_waiter_gives_up_at_its_own_deadline(registry: BreakerRegistry) -> None:
    breaker, provider = _breaker(registry), Provider()
    await _trip(breaker, provider, 3)
    await asyncio.sleep(RESET + 0.05)
    trial = asyncio.ensure_future(guarded_call(breaker, provider.ok, 0.5))
    await asyncio.sleep(0.01)
    with pytest.raises(CircuitOpenError):
        await guarded_call(breaker, provider.ok, wait_until=time.monotonic() + 0.05)
    assert await trial == "ok" and breaker.current_state == "closed"


async def test_failures_with_a_retry_pending_never_open(registry: BreakerRegistry) -> None:
    breaker, provider = _breaker(registry), Provider()
    with retry_pending(True):
        for _ in range(10):
            with pytest.raises(openai.InternalServerError):
                await guarded_call(breaker, provider.fail)
    assert breaker.current_state == "closed"
    assert registry.listener.failures[breaker.name] == 10  # still observed, not counted
    await _trip(breaker, provider, 3)  # last attempts count
    assert breaker.current_state == "open"


async def test_errors_raised_before_the_request_left_are_neutral(
    registry: BreakerRegistry,
) -> None:
    breaker, provider = _breaker(registry, failure_threshold=1), Provider()

    async def bad_header() -> str:
        provider.calls += 1
        raise openai.APIConnectionError(request=httpx.Request("POST", "http://x")) from (
            httpx.LocalProtocolError("Illegal header value b'a\\r\\nb'"))

    async def bad_arguments() -> str:  # client-side validation, before any request
        provider.calls += 1
        raise TypeError("create() got an unexpected keyword argument 'temprature'")

    for _ in range(5):
        with pytest.raises(openai.APIConnectionError):
            await guarded_call(breaker, bad_header)
        with pytest.raises(TypeError):
            await guarded_call(breaker, bad_arguments)
    assert breaker.current_state == "closed" and registry.listener.failures[breaker.name] == 0


async def test_success_threshold_needs_several_trials(registry: BreakerRegistry) -> None:
    breaker, provider = _breaker(registry, success_threshold=2), Provider()
    assert breaker.success_threshold == 2
    await _trip(breaker, provider, 3)
    await asyncio.sleep(RESET + 0.05)
    await guarded_call(breaker, provider.ok)
    assert breaker.current_state == "half-open" and breaker.success_counter == 1
    await guarded_call(breaker, provider.ok)
    assert breaker.current_state == "closed"


async def test_client_errors_never_open(registry: BreakerRegistry) -> None:
    breaker, provider = _breaker(registry), Provider()
    for _ in range(10):
        with pytest.raises(openai.BadRequestError):
            await guarded_call(breaker, provider.fail, 400)
    assert breaker.current_state == "closed" and breaker.fail_counter == 0
    assert registry.listener.failures[breaker.name] == 0


async def test_storage_counters_reflect_async_calls(registry: BreakerRegistry) -> None:
    breaker, provider = _breaker(registry, failure_threshold=5), Provider()
    await _trip(breaker, provider, 2)
    assert breaker.fail_counter == 2 == breaker._state_storage.counter
    await guarded_call(breaker, provider.ok)  # a success resets consecutive failures
    assert breaker.fail_counter == 0
    await _trip(breaker, provider, 1)
    assert breaker.fail_counter == 1


async def test_twenty_concurrent_failures_are_one_observation(
    registry: BreakerRegistry,
) -> None:
    breaker, provider = _breaker(registry, failure_threshold=5), Provider()
    results = await asyncio.gather(*(guarded_call(breaker, provider.fail, 500, 0.02)
                                     for _ in range(20)), return_exceptions=True)
    assert provider.calls == 20  # all were admitted while still closed
    assert all(isinstance(r, openai.InternalServerError) for r in results)
    # they saw one outage together: one recorded failure, not a sustained one
    assert breaker.current_state == "closed" and breaker.fail_counter == 1
    assert registry.listener.failures[breaker.name] == 20
    await _trip(breaker, provider, 4)  # four more, one after another: sustained
    assert breaker.current_state == "open"
    assert registry.listener.transitions_for(breaker.name) == [("closed", "open")]


async def test_a_success_rate_above_half_keeps_it_closed(registry: BreakerRegistry) -> None:
    breaker, provider = _breaker(registry, failure_threshold=3, window_size=10), Provider()
    for _ in range(4):  # 4 of 10 calls fail: below the 50 % rate, however many failures
        await guarded_call(breaker, provider.ok)
        await guarded_call(breaker, provider.ok)
        with pytest.raises(openai.InternalServerError):
            await guarded_call(breaker, provider.fail)
    assert breaker.current_state == "closed"


async def test_mixed_concurrency_keeps_state_machine_consistent(
    registry: BreakerRegistry,
) -> None:
    breaker, provider = _breaker(registry, failure_threshold=4), Provider()

    async def one(i: int) -> str:
        await asyncio.sleep(0.001 * (i % 5))
        if i % 3 == 0:
            return await guarded_call(breaker, provider.ok, 0.005)
        return await guarded_call(breaker, provider.fail, 500, 0.005)

    await asyncio.gather(*(one(i) for i in range(20)), return_exceptions=True)
    transitions = registry.listener.transitions_for(breaker.name)
    for (_, new), (old, _) in itertools.pairwise(transitions):
        assert new == old  # each transition starts where the previous one ended
    assert breaker.current_state in {"closed", "open"}


async def test_original_exception_and_cancellation(registry: BreakerRegistry) -> None:
    breaker, provider = _breaker(registry), Provider()
    await _trip(breaker, provider, 2)
    with pytest.raises(openai.InternalServerError) as info:  # the trip: pybreaker re-raises
        await guarded_call(breaker, provider.fail)
    assert breaker.current_state == "open"
    assert not any("pybreaker" in str(entry.path) for entry in info.traceback)

    await asyncio.sleep(RESET + 0.05)
    task = asyncio.ensure_future(guarded_call(breaker, provider.ok, 1.0))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # cancellation is neutral: the trial slot is free again and nothing was counted
    assert breaker.current_state == "half-open"
    assert await guarded_call(breaker, provider.ok) == "ok"
    assert breaker.current_state == "closed"


async def test_disabled_config_and_none_pass_through(registry: BreakerRegistry) -> None:
    provider = Provider()
    disabled = CircuitBreakerConfig(failure_threshold=1, enabled=False)
    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            await registry.call("off", disabled, provider.fail)
    assert "off" not in registry.states() and provider.calls == 3
    assert await guarded_call(None, provider.ok) == "ok"


async def test_registry_get_reset_states_and_logging(
    registry: BreakerRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    config = CircuitBreakerConfig(failure_threshold=1, reset_timeout_s=30)
    breaker = registry.get("openai", config)
    assert registry.get("openai", CircuitBreakerConfig()) is breaker
    provider = Provider()
    with caplog.at_level(logging.INFO, logger="steer_llm_sdk.reliability.breakers"), \
            pytest.raises(openai.InternalServerError):
        await registry.call("openai", config, provider.fail)
    assert "breaker openai: closed -> open" in caplog.text
    assert registry.states() == {"openai": "open"}
    registry.reset("openai")
    assert registry.states() == {"openai": "closed"} and breaker.fail_counter == 0
    assert await registry.call("openai", config, provider.ok) == "ok"
    registry.clear()
    assert registry.states() == {}
    assert get_breaker_registry() is get_breaker_registry()


async def test_state_counter_on_foreign_breaker() -> None:
    counter = BreakerStateCounter(log=False)
    breaker = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=RESET, listeners=[counter],
                                       name="foreign")  # throw_new_error_on_trip left True
    provider = Provider()
    with pytest.raises(openai.InternalServerError):  # still the original, not pybreaker's
        await guarded_call(breaker, provider.fail)
    assert counter.counts["closed->open"] == 1
    with pytest.raises(CircuitOpenError):
        await guarded_call(breaker, provider.ok)
