"""Retry policy mapping onto real Prefect task retries, and AdvancedRetryManager."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace

import httpx
import openai
import pytest

from steer_llm_sdk.config import RetryPolicy
from steer_llm_sdk.errors import ErrorCategory, ProviderError, RetryAfterTooLong
from steer_llm_sdk.reliability.retry import (
    AdvancedRetryManager,
    check_retry_after_budget,
    make_retry_condition,
    prefect_retry_options,
)

FAST = RetryPolicy(max_attempts=3, initial_delay=0.01, backoff_factor=2.0, max_delay=0.05,
                   jitter=0.0)


def _status_error(cls: type[openai.APIStatusError], status: int,
                  headers: dict[str, str] | None = None) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://x/v1/chat/completions")
    response = httpx.Response(status, headers=headers or {}, request=request,
                              json={"error": {"message": "x"}})
    return cls(f"status {status}", response=response, body=None)


def _server_error(retry_after: float | None = None) -> ProviderError:
    return ProviderError("server broke", category="server_error", provider="openai",
                         status_code=503, retry_after=retry_after)


class Flaky:
    """Fails ``failures`` times with ``errors()`` then succeeds; records call times."""

    def __init__(self, failures: int, errors: object) -> None:
        self.failures = failures
        self.errors = errors
        self.times: list[float] = []

    def __call__(self) -> str:
        self.times.append(time.monotonic())
        if len(self.times) <= self.failures:
            raise self.errors()  # type: ignore[operator]
        return "ok"

    async def acall(self) -> str:
        return self()

    @property
    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.times, self.times[1:], strict=False)]


# --- options and condition, no server ------------------------------------------------------


def test_prefect_retry_options_shape() -> None:
    policy = RetryPolicy(max_attempts=4, initial_delay=0.5, backoff_factor=2, max_delay=1.5,
                         jitter=0.3)
    opts = prefect_retry_options(policy)
    assert opts["retries"] == 3 and opts["retry_delay_seconds"] == policy.delays()
    assert opts["retry_delay_seconds"] == [0.5, 1.0, 1.5]
    assert opts["retry_jitter_factor"] == 0.3 and callable(opts["retry_condition_fn"])
    assert prefect_retry_options(policy, enabled=False)["retries"] == 0
    many = prefect_retry_options(policy, max_retries=80)
    assert many["retries"] == 80 and len(many["retry_delay_seconds"]) == 50
    assert prefect_retry_options(policy, max_retries=1)["retry_delay_seconds"] == [0.5]


def test_options_are_accepted_by_prefect_task() -> None:
    from prefect import task

    @task
    def noop() -> None:
        return None

    configured = noop.with_options(**prefect_retry_options(FAST, max_retries=60))
    assert configured.retries == 60 and len(configured.retry_delay_seconds) == 50


async def _condition(policy: RetryPolicy, exc: BaseException, *, run_count: int = 1,
                     deadline: float | None = None) -> bool:
    from prefect.states import Failed

    opts = prefect_retry_options(policy, deadline=deadline)
    return await opts["retry_condition_fn"](None, SimpleNamespace(run_count=run_count),
                                            Failed(data=exc))


async def test_condition_classifies() -> None:
    assert await _condition(FAST, _status_error(openai.InternalServerError, 500))
    assert await _condition(FAST, openai.APITimeoutError(request=httpx.Request("GET", "http://x")))
    assert not await _condition(FAST, _status_error(openai.AuthenticationError, 401))
    assert not await _condition(FAST, ValueError("bug"))
    assert not await _condition(FAST, RetryAfterTooLong("openai", 10, 1))
    only_timeouts = FAST.model_copy(update={"retry_on": {ErrorCategory.TIMEOUT}})
    assert not await _condition(only_timeouts, _status_error(openai.InternalServerError, 500))


async def test_condition_sleeps_for_retry_after_minus_next_delay() -> None:
    policy = FAST.model_copy(update={"initial_delay": 0.1})
    start = time.monotonic()
    assert await _condition(policy, _server_error(retry_after=0.3))
    assert 0.17 <= time.monotonic() - start < 0.5  # 0.3 - 0.1 (Prefect waits the 0.1)
    ignoring = policy.model_copy(update={"respect_retry_after": False})
    start = time.monotonic()
    assert await _condition(ignoring, _server_error(retry_after=5))
    assert time.monotonic() - start < 0.1


async def test_condition_respects_deadline() -> None:
    soon = time.monotonic() + 1.0
    assert not await _condition(FAST, _server_error(retry_after=5), deadline=soon)
    assert not await _condition(FAST, _server_error(), deadline=time.monotonic() - 1)
    assert await _condition(FAST, _server_error(), deadline=soon)


async def test_condition_without_exception_does_not_retry() -> None:
    from prefect.states import Failed

    condition = make_retry_condition(FAST, [0.01])
    assert not await condition(None, SimpleNamespace(run_count=1), Failed(data=None))


def test_check_retry_after_budget() -> None:
    check_retry_after_budget(_server_error(retry_after=5), None)
    check_retry_after_budget(_server_error(), time.monotonic() + 1)
    check_retry_after_budget(_server_error(retry_after=0.5), time.monotonic() + 10)
    with pytest.raises(RetryAfterTooLong) as info:
        check_retry_after_budget(_server_error(retry_after=30), time.monotonic() + 2)
    assert info.value.retry_after == 30 and not info.value.is_retryable
    assert info.value.provider == "openai" and isinstance(info.value.__cause__, ProviderError)


# --- real Prefect task runs ----------------------------------------------------------------


@pytest.fixture
def prefect_server(prefect_backend: None) -> Iterator[None]:
    """The session-wide Prefect test harness (tests/conftest.py): one server per run."""
    yield


async def _run_in_flow(flaky: Flaky, options: dict[str, object]) -> str:
    from prefect import flow, task

    @task(persist_result=False)
    async def provider_call() -> str:
        return await flaky.acall()

    @flow(persist_result=False)
    async def run() -> str:
        return await provider_call.with_options(**options)()

    return await run()


async def test_prefect_retries_retryable_errors(prefect_server: None) -> None:
    flaky = Flaky(2, lambda: _status_error(openai.InternalServerError, 500))
    assert await _run_in_flow(flaky, prefect_retry_options(FAST)) == "ok"
    assert len(flaky.times) == 3


async def test_prefect_does_not_retry_client_errors(prefect_server: None) -> None:
    flaky = Flaky(5, lambda: _status_error(openai.AuthenticationError, 401))
    with pytest.raises(openai.AuthenticationError):
        await _run_in_flow(flaky, prefect_retry_options(FAST))
    assert len(flaky.times) == 1


async def test_prefect_disabled_runs_once(prefect_server: None) -> None:
    flaky = Flaky(5, lambda: _status_error(openai.InternalServerError, 500))
    with pytest.raises(openai.InternalServerError):
        await _run_in_flow(flaky, prefect_retry_options(FAST, enabled=False))
    assert len(flaky.times) == 1


async def test_prefect_honours_retry_after(prefect_server: None) -> None:
    flaky = Flaky(1, lambda: _status_error(openai.RateLimitError, 429, {"Retry-After": "0.3"}))
    assert await _run_in_flow(flaky, prefect_retry_options(FAST)) == "ok"
    assert len(flaky.times) == 2 and flaky.gaps[0] >= 0.28


async def test_prefect_deadline_shorter_than_retry_after(prefect_server: None) -> None:
    flaky = Flaky(1, lambda: _status_error(openai.RateLimitError, 429, {"Retry-After": "30"}))
    options = prefect_retry_options(FAST, deadline=time.monotonic() + 10)
    with pytest.raises(openai.RateLimitError):
        await _run_in_flow(flaky, options)
    assert len(flaky.times) == 1


# --- AdvancedRetryManager ------------------------------------------------------------------


async def test_manager_retries_then_succeeds() -> None:
    flaky = Flaky(2, lambda: _status_error(openai.InternalServerError, 500))
    manager = AdvancedRetryManager(FAST, provider="openai")
    assert await manager.execute(flaky.acall) == "ok"
    assert manager.attempts == 3 and len(manager.last_errors) == 2
    assert [a["category"] for a in manager.last_attempts] == ["server_error", "server_error",
                                                              None]
    assert [a["delay_s"] for a in manager.last_attempts[:2]] == [0.01, 0.02]


async def test_manager_stops_on_non_retryable_and_keeps_chain() -> None:
    errors = iter([_status_error(openai.InternalServerError, 500),
                   _status_error(openai.AuthenticationError, 401)])
    flaky = Flaky(5, lambda: next(errors))
    manager = AdvancedRetryManager(FAST)
    with pytest.raises(openai.AuthenticationError) as info:
        await manager.execute(flaky)  # sync callables work in execute too
    assert manager.attempts == 2 and manager.last_attempts[-1]["delay_s"] is None
    assert any("attempt 1 failed (server_error)" in n for n in info.value.__notes__)


async def test_manager_gives_up_after_max_attempts() -> None:
    flaky = Flaky(10, lambda: _status_error(openai.InternalServerError, 500))
    manager = AdvancedRetryManager(FAST)
    with pytest.raises(openai.InternalServerError):
        await manager.execute(flaky.acall)
    assert len(flaky.times) == FAST.max_attempts


async def test_manager_honours_retry_after_and_deadline() -> None:
    flaky = Flaky(1, lambda: _server_error(retry_after=0.2))
    manager = AdvancedRetryManager(FAST)
    assert await manager.execute(flaky.acall) == "ok"
    assert flaky.gaps[0] >= 0.19 and manager.last_attempts[0]["delay_s"] == 0.2

    tight = AdvancedRetryManager(FAST, deadline=time.monotonic() + 1)
    flaky = Flaky(1, lambda: _server_error(retry_after=5))
    with pytest.raises(RetryAfterTooLong):
        await tight.execute(flaky.acall)
    assert len(flaky.times) == 1


def test_manager_execute_sync() -> None:
    flaky = Flaky(1, lambda: ConnectionResetError("reset"))
    manager = AdvancedRetryManager(FAST)
    assert manager.execute_sync(flaky) == "ok"
    assert manager.attempts == 2 and manager.last_attempts[0]["category"] == "network"


def test_should_retry_and_compute_delay() -> None:
    policy = RetryPolicy(max_attempts=4, initial_delay=1.0, backoff_factor=2.0, max_delay=3.0,
                         jitter=0.5)
    manager = AdvancedRetryManager(policy)
    assert manager.should_retry(TimeoutError(), 1)
    assert not manager.should_retry(TimeoutError(), 4)
    assert not manager.should_retry(ValueError(), 1)
    for _ in range(50):
        assert 0.5 <= manager.compute_delay(1) <= 1.0  # equal jitter around base 1.0
        assert 1.5 <= manager.compute_delay(3) <= 3.0  # capped at max_delay 3.0
    assert manager.compute_delay(1, retry_after=7.0) == 7.0
    full = AdvancedRetryManager(policy.model_copy(update={"jitter": 1.0}))
    assert all(0 <= full.compute_delay(2) <= 2.0 for _ in range(50))
    none = AdvancedRetryManager(policy.model_copy(update={"jitter": 0.0}))
    assert none.compute_delay(2) == 2.0
