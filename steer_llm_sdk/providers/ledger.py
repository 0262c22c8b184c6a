"""What every provider call of a run reported: the source of a run's ``usage``/``cost_usd``.

Summing the replicates' usage misses tokens a provider billed for answers that never became a
valid replicate: content_filter replies, eager first-wave answers discarded when the tool
changed or a breaker opened, attempts that answered after their replicate was given up. The
provider records each response here (the run's ledger is found through a context variable,
so tools need no plumbing); calls that got no usable response (timeouts, dropped
connections, malformed bodies, cancellations) are counted as ``unaccounted_calls`` because
what they cost cannot be known. HTTP error answers (429, 5xx, 4xx) carry no usage and are not
billed: they count as calls with zero tokens.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CallLedger", "current_ledger", "use_ledger"]


@dataclass
class CallLedger:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    unaccounted_calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, usage: dict[str, int], cost_usd: float) -> None:
        with self._lock:
            self.calls += 1
            self.prompt_tokens += int(usage.get("prompt_tokens", 0))
            self.completion_tokens += int(usage.get("completion_tokens", 0))
            self.total_tokens += int(usage.get("total_tokens", 0))
            self.cost_usd += cost_usd

    def record_unaccounted(self) -> None:
        with self._lock:
            self.calls += 1
            self.unaccounted_calls += 1

    def usage(self) -> dict[str, int]:
        with self._lock:
            return {"prompt_tokens": self.prompt_tokens,
                    "completion_tokens": self.completion_tokens,
                    "total_tokens": self.total_tokens}

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {"calls": self.calls, "unaccounted_calls": self.unaccounted_calls,
                    "total_tokens": self.total_tokens, "cost_usd": round(self.cost_usd, 10)}


_CURRENT: contextvars.ContextVar[CallLedger | None] = contextvars.ContextVar(
    "steer_call_ledger", default=None)


def current_ledger() -> CallLedger | None:
    return _CURRENT.get()


@contextlib.contextmanager
def use_ledger(ledger: CallLedger | None) -> Iterator[None]:
    """Provider calls in this block (and in tasks created inside it) record into ``ledger``."""
    token = _CURRENT.set(ledger)
    try:
        yield
    finally:
        _CURRENT.reset(token)
