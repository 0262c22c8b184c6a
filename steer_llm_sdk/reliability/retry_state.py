"""What ``AdvancedRetryManager`` remembers: the state of operations still retrying, and
counters per provider (the 0.3.2 ``RetryState`` / metrics API).

Kept apart from the retry loop so the loop stays readable and the bookkeeping can be read by
an ops endpoint without importing the executor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class RetryState:
    """One operation that is being retried; ``attempts`` counts failed attempts so far."""

    request_id: str
    provider: str | None = None
    attempts: int = 0
    total_delay: float = 0.0
    last_error: BaseException | None = None
    started_at: float = field(default_factory=time.monotonic)


@dataclass
class RetryMetrics:
    """Counters keyed by provider name ("unknown" when none was given).

    ``retry_attempts``: retries scheduled; ``retry_successes``: operations that succeeded
    after at least one retry; ``retry_failures``: operations that gave up after at least one
    retry; ``total_retry_delay``: seconds slept between attempts.
    """

    retry_attempts: dict[str, int] = field(default_factory=dict)
    retry_successes: dict[str, int] = field(default_factory=dict)
    retry_failures: dict[str, int] = field(default_factory=dict)
    total_retry_delay: float = 0.0

    @staticmethod
    def _bump(counter: dict[str, int], provider: str | None) -> None:
        key = provider or "unknown"
        counter[key] = counter.get(key, 0) + 1

    def record_retry(self, provider: str | None, delay: float) -> None:
        self._bump(self.retry_attempts, provider)
        self.total_retry_delay += delay

    def record_outcome(self, provider: str | None, *, succeeded: bool) -> None:
        self._bump(self.retry_successes if succeeded else self.retry_failures, provider)
