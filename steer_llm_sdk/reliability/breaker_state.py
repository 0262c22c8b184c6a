"""When a provider's failures are *sustained*: the counting rule of our circuit breakers.

A breaker and a retry policy are one policy seen from two sides. The old rule (pybreaker's
``fail_max`` consecutive failures) counted every failed attempt, so a transient fault that the
default retries would rescue (k=3 replicates x 2 failed attempts = 6 failures) opened the
breaker in the middle of the run and failed it. The rule here borrows from three designs:

- Resilience4j: outcomes go into a count-based sliding window (``window_size`` calls) and the
  breaker opens on a failure *rate* (>= 50 %) once the window holds enough failures
  (``failure_threshold``, the "minimum number of calls" of a failing endpoint);
- Envoy outlier detection (``split_external_local_origin_errors``): errors raised before a
  request left the process are not the endpoint's fault and never reach the breaker
  (see ``classification.is_local_error``);
- LiteLLM's router: the retry loop runs first; a deployment cools down for failures that
  retries did not absorb (``allowed_fails``).

So a failed call is recorded in the window only when

1. it is a provider fault (client errors, local errors and cancellations are neutral),
2. no retry is pending for it: the caller said this was its last attempt (``retry_pending``;
   callers that say nothing are treated as final), and
3. it is a new observation: calls already in flight when the previous failure was recorded
   saw the same outage, so K parallel replicates failing together count once.

While half-open, one trial call runs; other callers wait for its outcome (within their own
deadline) instead of failing, and any provider fault of the trial re-opens the breaker.

All state a breaker needs beyond pybreaker's storage (state, opened_at, counters) lives in
one small ``BreakerWindow`` so it can later move to a shared store.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BreakerWindow", "current_retry_pending", "retry_pending"]

_RETRY_PENDING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "steer_breaker_retry_pending", default=False)


@contextlib.contextmanager
def retry_pending(pending: bool) -> Iterator[None]:
    """Tell the breakers whether the retry layer will try again if calls in this block fail
    (set by the replicate task and the eager first wave from the run's retry policy)."""
    token = _RETRY_PENDING.set(pending)
    try:
        yield
    finally:
        _RETRY_PENDING.reset(token)


def current_retry_pending() -> bool:
    return _RETRY_PENDING.get()


@dataclass
class BreakerWindow:
    """The explicit, serialisable part of a breaker's state (pybreaker keeps the rest).

    ``outcomes``: True = recorded failure, False = success, newest last (``window_size``).
    ``clock``: a logical clock, ticked by every admission and every recorded failure.
    ``last_failure_at``: the clock when the last failure was recorded; a call admitted before
    it was in flight during that failure, so its own failure is the same observation.
    ``trial``: token of the half-open trial in flight, if any.
    ``last_error``: the provider's last real error (category, status_code, message), reported
    next to ``circuit_open`` so an open breaker never hides the cause.
    """

    failure_threshold: int
    window_size: int
    outcomes: deque[bool] = field(default_factory=deque)
    clock: int = 0
    last_failure_at: int = 0
    trial: object | None = None
    last_error: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.window_size = max(self.window_size, self.failure_threshold)
        self.outcomes = deque(self.outcomes, maxlen=self.window_size)

    @property
    def failures(self) -> int:
        return sum(self.outcomes)

    def tick(self) -> int:
        self.clock += 1
        return self.clock

    def record_success(self) -> None:
        self.outcomes.append(False)

    def record_failure(self, admitted_at: int, retry_pending: bool) -> str:
        """Apply the counting rule to one provider fault: "ignored" (a retry is pending, or
        a concurrent call's failure was already recorded), "recorded", or "open" (the
        breaker must open now)."""
        if retry_pending or admitted_at < self.last_failure_at:
            return "ignored"
        self.last_failure_at = self.tick()
        self.outcomes.append(True)
        failures = self.failures
        if failures >= self.failure_threshold and 2 * failures >= len(self.outcomes):
            return "open"
        return "recorded"

    def reset(self) -> None:
        """Forget the outcomes (on open and on close: each state starts a fresh window)."""
        self.outcomes.clear()
        self.last_failure_at = self.tick()  # calls in flight now belong to the old state
        self.trial = None
