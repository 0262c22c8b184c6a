"""The run's breaker settings, visible to provider calls made deep inside a tool.

A plain ``Tool.execute(request, options, event_manager)`` (the 0.3.2 signature) has no
argument through which the run's ``ReliabilityConfig`` could reach the providers it calls.
The engine therefore sets the tool's breaker config in a context variable around ``execute``;
a provider called without an explicit ``breaker_config`` reads it. Context variables follow
the coroutine (and tasks it spawns), so concurrent runs never see each other's settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from steer_llm_sdk.config import CircuitBreakerConfig

__all__ = ["current_breaker_config", "use_breaker_config"]

_BREAKER_CONFIG: ContextVar[CircuitBreakerConfig | None] = ContextVar(
    "steer_breaker_config", default=None
)


def current_breaker_config() -> CircuitBreakerConfig | None:
    """The breaker config of the tool call in progress, or None outside one."""
    return _BREAKER_CONFIG.get()


@contextmanager
def use_breaker_config(config: CircuitBreakerConfig | None) -> Iterator[None]:
    token = _BREAKER_CONFIG.set(config)
    try:
        yield
    finally:
        _BREAKER_CONFIG.reset(token)
