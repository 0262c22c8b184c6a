"""One ``RetryPolicy``, two executors: Prefect task retries inside flows, a loop outside them.

Inside flows Prefect owns the retry loop (so retries show up as task-run states in the UI);
``prefect_retry_options`` turns the policy into ``Task.with_options`` kwargs whose
``retry_condition_fn`` classifies the failure, honours ``Retry-After`` and the run deadline.
Outside flows ``AdvancedRetryManager`` applies the same policy in-process.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from steer_llm_sdk.config import RetryPolicy
from steer_llm_sdk.errors import ErrorCategory, ProviderError, RetryAfterTooLong
from steer_llm_sdk.reliability.classification import classify_exception
from steer_llm_sdk.reliability.retry_state import RetryMetrics, RetryState

__all__ = [
    "AdvancedRetryManager",
    "RetryMetrics",
    "RetryState",
    "check_retry_after_budget",
    "make_retry_condition",
    "prefect_retry_options",
]

T = TypeVar("T")
logger = logging.getLogger(__name__)
PREFECT_MAX_DELAYS = 50  # Task() rejects longer retry_delay_seconds lists


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def check_retry_after_budget(error: ProviderError, deadline: float | None) -> None:
    """Raise ``RetryAfterTooLong`` when the server's wait does not fit before ``deadline``.

    Providers call this before raising a rate-limit/503 error, so the run fails fast with a
    precise reason instead of sleeping past its budget (``deadline`` is a monotonic time).
    """
    remaining = _remaining(deadline)
    if remaining is None or error.retry_after is None or error.retry_after <= remaining:
        return
    raise RetryAfterTooLong(error.provider, error.retry_after, max(0.0, remaining)) from error


def policy_retries(policy: RetryPolicy, error: ProviderError) -> bool:
    """Whether ``policy`` retries ``error``. A category outside ``retry_on`` is not retried;
    an ``unknown`` error is retried only when whoever raised it marked it ``is_retryable``
    (it knows more than the classifier), as docs/providers.md says."""
    if not error.is_retryable:
        return False
    return error.category in policy.retry_on or error.category == ErrorCategory.UNKNOWN


def _base_delays(policy: RetryPolicy, retries: int) -> list[float]:
    """``policy.delays()`` stretched or cut to ``retries`` entries (Prefect repeats the last),
    then cut where their sum would pass ``max_total_delay``."""
    count = min(retries, PREFECT_MAX_DELAYS)
    delays = policy.model_copy(update={"max_attempts": count + 1}).delays()
    if policy.max_total_delay is None:
        return delays
    kept: list[float] = []
    for delay in delays:
        if sum(kept) + delay > policy.max_total_delay:
            break
        kept.append(delay)
    return kept


def _min_jittered(delay: float, jitter: float) -> float:
    """Smallest delay Prefect's ``clamped_poisson_interval`` can draw for ``delay``."""
    if jitter <= 0 or delay <= 0:
        return delay
    try:
        from prefect.utilities.math import lower_clamp_multiple
    except ImportError:  # pragma: no cover - be safe: assume it may draw zero
        return 0.0
    return delay * lower_clamp_multiple(1 + jitter)


async def _exception_of(state: Any) -> BaseException | None:
    """The engine hands us ``Failed(data=exc)``; a task returning a Failed state may carry a
    result record instead, which ``aget_state_exception`` resolves."""
    data = getattr(state, "data", None)
    if isinstance(data, BaseException):
        return data
    try:
        from prefect.states import aget_state_exception

        return await aget_state_exception(state)
    except Exception:  # noqa: BLE001 - no exception to classify means "do not retry"
        logger.debug("could not read the exception of %r", state, exc_info=True)
        return None


def make_retry_condition(
    policy: RetryPolicy, delays: list[float], deadline: float | None = None
) -> Callable[[Any, Any, Any], Awaitable[bool]]:
    """Build the async ``retry_condition_fn(task, task_run, state) -> bool`` for Prefect."""

    async def retry_condition(task: Any, task_run: Any, state: Any) -> bool:
        exc = await _exception_of(state)
        if exc is None:
            return False
        error = classify_exception(exc)
        if not policy_retries(policy, error):
            return False
        # run_count is the number of attempts so far; Prefect picks delays[retries_done].
        index = max(0, int(getattr(task_run, "run_count", 1) or 1) - 1)
        next_delay = delays[min(index, len(delays) - 1)] if delays else 0.0
        remaining = _remaining(deadline)
        if remaining is not None and remaining <= 0:
            return False
        retry_after = error.retry_after if policy.respect_retry_after else None
        if retry_after is None:
            return remaining is None or next_delay <= remaining
        if remaining is not None and retry_after > remaining:
            logger.info("not retrying: Retry-After %.2fs exceeds the %.2fs left", retry_after,
                        remaining)
            return False
        extra = retry_after - _min_jittered(next_delay, policy.jitter)
        if extra > 0:  # Prefect then waits next_delay; together they cover Retry-After
            await asyncio.sleep(extra)
        return True

    return retry_condition


def prefect_retry_options(
    policy: RetryPolicy,
    *,
    enabled: bool = True,
    max_retries: int | None = None,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Kwargs for ``Task.with_options``: retries, delays, jitter and the retry condition."""
    retries = 0 if not enabled else (
        policy.max_attempts - 1 if max_retries is None else max(0, max_retries)
    )
    delays = _base_delays(policy, retries)
    if policy.max_total_delay is not None:
        retries = min(retries, len(delays))
    return {
        "retries": retries,
        "retry_delay_seconds": delays or 0,
        "retry_jitter_factor": policy.jitter,
        "retry_condition_fn": make_retry_condition(policy, delays, deadline),
    }


class AdvancedRetryManager:
    """The same policy for code outside flows: backoff with jitter, Retry-After, deadline.

    ``last_attempts`` / ``last_errors`` describe the latest ``execute`` on this instance; use
    one instance per concurrent operation if you read them. ``execute_with_retry`` (0.3.2)
    keys its bookkeeping by ``request_id`` instead, so one manager can serve many operations:
    ``get_retry_state(request_id)`` while an operation retries, ``get_metrics()`` per provider.
    """

    def __init__(self, policy: RetryPolicy | None = None, *, provider: str | None = None,
                 deadline: float | None = None,
                 default_policy: RetryPolicy | None = None) -> None:
        self.policy = policy or default_policy or RetryPolicy()
        self.provider = provider
        self.deadline = deadline
        self.last_attempts: list[dict[str, Any]] = []
        self.last_errors: list[BaseException] = []
        self.retry_states: dict[str, RetryState] = {}
        self._metrics = RetryMetrics()

    @property
    def attempts(self) -> int:
        """Calls made by the latest ``execute`` (failed ones and the final success)."""
        return len(self.last_attempts)

    def get_retry_state(self, request_id: str) -> RetryState | None:
        return self.retry_states.get(request_id)

    def get_metrics(self) -> RetryMetrics:
        return self._metrics

    def reset_metrics(self) -> None:
        self._metrics = RetryMetrics()

    def should_retry(self, exc: BaseException, attempt: int,
                     policy: RetryPolicy | None = None) -> bool:
        """Whether failure number ``attempt`` (1-based) may be followed by another attempt."""
        policy = policy or self.policy
        if attempt >= policy.max_attempts:
            return False
        return policy_retries(policy, classify_exception(exc, self.provider))

    def compute_delay(self, attempt: int, retry_after: float | None = None,
                      policy: RetryPolicy | None = None) -> float:
        """Delay after failure ``attempt``: exponential base, ``jitter`` share of it randomised
        (1.0 = full jitter, 0.5 = equal jitter, 0 = none); never shorter than a respected
        Retry-After, which may exceed ``max_delay`` because the server asked for it."""
        p = policy or self.policy
        base = min(p.initial_delay * p.backoff_factor ** max(0, attempt - 1), p.max_delay)
        delay = base * (1 - p.jitter) + random.uniform(0, base * p.jitter)
        if retry_after is not None and p.respect_retry_after:
            delay = max(delay, retry_after)
        return delay

    def _plan(self, exc: BaseException, attempt: int, policy: RetryPolicy | None = None,
              slept: float = 0.0) -> float | None:
        """Record the failure; return the delay before the next attempt, or None to give up.
        ``slept`` is the delay already spent, checked against ``max_total_delay``."""
        policy = policy or self.policy
        error = classify_exception(exc, self.provider)
        retry = self.should_retry(exc, attempt, policy)
        delay = self.compute_delay(attempt, error.retry_after, policy) if retry else None
        if delay is not None and policy.max_total_delay is not None and (
            slept + delay > policy.max_total_delay
        ):
            delay = None
        record = {"attempt": attempt, "category": str(error.category), "delay_s": delay,
                  "error": str(error)}
        self.last_attempts.append(record)
        self.last_errors.append(exc)
        remaining = _remaining(self.deadline)
        if delay is not None and remaining is not None:
            if policy.respect_retry_after and error.retry_after is not None:
                record["delay_s"] = None
                check_retry_after_budget(error, self.deadline)
            if delay > remaining:
                record["delay_s"] = delay = None
        return delay

    def _give_up(self, exc: BaseException) -> None:
        """Attach the earlier attempts to the error the caller finally sees."""
        for rec in self.last_attempts[:-1]:
            exc.add_note(f"attempt {rec['attempt']} failed ({rec['category']}): {rec['error']}")

    def _start(self) -> None:
        self.last_attempts = []
        self.last_errors = []

    async def execute(self, fn: Callable[..., Awaitable[T] | T], /, *args: Any,
                      **kwargs: Any) -> T:
        """Call ``fn`` until it succeeds or the policy says stop; re-raise the last error."""
        return await self._run(fn, args, kwargs, None, None)

    async def execute_with_retry(self, fn: Callable[..., Awaitable[T] | T], /, *args: Any,
                                 request_id: str | None = None, provider: str | None = None,
                                 policy: RetryPolicy | None = None, **kwargs: Any) -> T:
        """0.3.2's entry point: ``execute`` with a per-call policy, provider name for the
        metrics, and a retry state readable under ``request_id`` while it retries."""
        state = RetryState(request_id or uuid.uuid4().hex, provider)
        return await self._run(fn, args, kwargs, policy, state)

    async def _run(self, fn: Callable[..., Awaitable[T] | T], args: Any, kwargs: Any,
                   policy: RetryPolicy | None, state: RetryState | None) -> T:
        self._start()
        if state is not None:
            self.retry_states[state.request_id] = state
        attempt, slept = 0, 0.0
        try:
            while True:
                attempt += 1
                try:
                    result = fn(*args, **kwargs)
                    if inspect.isawaitable(result):
                        result = await result
                except Exception as exc:
                    delay = self._plan(exc, attempt, policy, slept)
                    if state is not None:
                        state.attempts, state.last_error = attempt, exc
                    if delay is None:
                        self._give_up(exc)
                        if state is not None and attempt > 1:
                            self._metrics.record_outcome(state.provider, succeeded=False)
                        raise
                    if state is not None:
                        state.total_delay += delay
                        self._metrics.record_retry(state.provider, delay)
                    slept += delay
                    await asyncio.sleep(delay)
                else:
                    self.last_attempts.append(
                        {"attempt": attempt, "category": None, "delay_s": None})
                    if state is not None and attempt > 1:
                        self._metrics.record_outcome(state.provider, succeeded=True)
                    return result  # type: ignore[return-value]
        finally:
            if state is not None:
                self.retry_states.pop(state.request_id, None)

    def execute_sync(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``execute`` for blocking callables (sleeps with ``time.sleep``)."""
        self._start()
        attempt, slept = 0, 0.0
        while True:
            attempt += 1
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                delay = self._plan(exc, attempt, None, slept)
                if delay is None:
                    self._give_up(exc)
                    raise
                slept += delay
                time.sleep(delay)
            else:
                self.last_attempts.append({"attempt": attempt, "category": None, "delay_s": None})
                return result
