"""RetryPolicy's 0.3.2 fields and AdvancedRetryManager's 0.3.2 bookkeeping API."""

from __future__ import annotations

import pytest

from steer_llm_sdk.errors import ErrorCategory, ProviderError
from steer_llm_sdk.reliability import AdvancedRetryManager, RetryPolicy, prefect_retry_options

FAST = RetryPolicy(max_attempts=3, initial_delay=0.0, jitter_factor=0.0)


def server_error() -> ProviderError:
    return ProviderError("Server error", provider="openai", status_code=500)


def test_retry_on_flags_edit_retry_on():
    policy = RetryPolicy(retry_on_timeout=False, retry_on_rate_limit=True)
    assert policy.should_retry_category(ErrorCategory.RATE_LIMIT) is True
    assert policy.should_retry_category(ErrorCategory.TIMEOUT) is False
    assert policy.should_retry_category(ErrorCategory.AUTHENTICATION) is False
    assert (policy.retry_on_timeout, policy.retry_on_server_error,
            policy.retry_on_network_error) == (False, True, True)
    assert ErrorCategory.TIMEOUT not in policy.retry_on
    assert RetryPolicy(jitter_factor=0.0).jitter == 0.0 == RetryPolicy(jitter=0).jitter_factor


async def test_retry_on_server_error_false_stops_retries():
    policy = RetryPolicy(max_attempts=3, initial_delay=0, retry_on_server_error=False)
    calls = []

    async def fail():
        calls.append(1)
        raise server_error()

    with pytest.raises(ProviderError):
        await AdvancedRetryManager(default_policy=FAST).execute_with_retry(
            fail, request_id="r", provider="openai", policy=policy)
    assert len(calls) == 1


async def test_max_total_delay_caps_the_sum_of_delays():
    policy = RetryPolicy(max_attempts=10, initial_delay=0.05, backoff_factor=1.0, jitter=0.0,
                         max_total_delay=0.12)
    calls = []

    async def fail():
        calls.append(1)
        raise server_error()

    with pytest.raises(ProviderError):
        await AdvancedRetryManager(policy).execute(fail)
    assert len(calls) == 3  # 0.05 + 0.05 fit; a third delay would make 0.15 > 0.12
    options = prefect_retry_options(policy)  # the same cap inside flows
    assert options["retries"] == 2 and options["retry_delay_seconds"] == [0.05, 0.05]


async def test_retry_state_exists_while_retrying_and_is_removed_after():
    manager = AdvancedRetryManager(default_policy=FAST)
    seen = []

    async def flaky():
        state = manager.get_retry_state("op-1")
        seen.append(state.attempts)
        if len(seen) < 3:
            raise server_error()
        return "ok"

    assert await manager.execute_with_retry(flaky, request_id="op-1", provider="openai") == "ok"
    assert seen == [0, 1, 2]
    assert manager.get_retry_state("op-1") is None and "op-1" not in manager.retry_states


async def test_metrics_per_provider_and_reset():
    manager = AdvancedRetryManager(default_policy=FAST)
    assert manager.get_metrics().retry_attempts == {}
    outcomes = iter([server_error(), "ok"])

    async def once_then_ok():
        item = next(outcomes)
        if isinstance(item, BaseException):
            raise item
        return item

    async def always():
        raise server_error()

    await manager.execute_with_retry(once_then_ok, request_id="a", provider="openai")
    with pytest.raises(ProviderError):
        await manager.execute_with_retry(always, request_id="b", provider="openai")
    metrics = manager.get_metrics()
    assert metrics.retry_successes == {"openai": 1} and metrics.retry_failures == {"openai": 1}
    assert metrics.retry_attempts == {"openai": 3}  # 1 retry for "a", 2 for "b"
    assert metrics.total_retry_delay == 0.0
    manager.reset_metrics()
    assert manager.get_metrics().retry_attempts == {}


async def test_non_retryable_is_not_retried_and_not_counted():
    manager = AdvancedRetryManager(default_policy=FAST)
    calls = []

    async def auth():
        calls.append(1)
        raise ProviderError("Authentication failed", provider="openai", status_code=401)

    with pytest.raises(ProviderError) as caught:
        await manager.execute_with_retry(auth, request_id="c", provider="openai")
    assert len(calls) == 1 and caught.value.status_code == 401
    assert manager.get_metrics().retry_failures == {}
