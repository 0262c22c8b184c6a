"""``CircuitBreakerConfig.on_open`` / ``on_close`` (0.3.2) as a pybreaker listener.

pybreaker reports state changes to listeners from inside the breaker's lock, in a synchronous
section (reliability/breakers.py). So a synchronous callback runs right there, and a coroutine
callback is scheduled on the running loop rather than awaited; neither may break the breaker:
a callback that raises is logged and ignored.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

from steer_llm_sdk.config import CircuitBreakerConfig

__all__ = ["CallbackListener"]

logger = logging.getLogger(__name__)
_pending: set[asyncio.Future[Any]] = set()  # keeps scheduled callbacks alive until they finish


class CallbackListener:
    """Duck-typed pybreaker ``CircuitBreakerListener`` calling the config's callbacks with the
    breaker (``cb.name`` is the provider endpoint)."""

    def __init__(self, config: CircuitBreakerConfig) -> None:
        self.on_open = config.on_open
        self.on_close = config.on_close

    def before_call(self, cb: Any, func: Any, *args: Any, **kwargs: Any) -> None:
        return None

    def failure(self, cb: Any, exc: BaseException) -> None:
        return None

    def success(self, cb: Any) -> None:
        return None

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        name = str(getattr(new_state, "name", new_state))
        callback = {"open": self.on_open, "closed": self.on_close}.get(name)
        if callback is not None:
            _invoke(callback, cb)


def _invoke(callback: Any, cb: Any) -> None:
    try:
        result = callback(cb)
        if inspect.isawaitable(result):
            future = asyncio.ensure_future(result)  # needs the running loop of the call
            _pending.add(future)
            future.add_done_callback(_finished)
    except Exception:  # noqa: BLE001 - a callback must not change the breaker's behaviour
        logger.exception("breaker %s: state-change callback failed", getattr(cb, "name", "?"))


def _finished(future: asyncio.Future[Any]) -> None:
    _pending.discard(future)
    if not future.cancelled() and future.exception() is not None:
        logger.error("breaker state-change callback failed", exc_info=future.exception())
