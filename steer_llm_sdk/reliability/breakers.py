"""Process-wide circuit breakers per provider endpoint, driven correctly from asyncio.

When a breaker opens is decided by ``breaker_state`` (a sliding window that counts only
sustained provider faults, so breakers compose with retries); this module drives it.

pybreaker's ``call_async`` needs Tornado, and its ``calling()`` context manager neither limits
half-open to one trial nor guards against late results of calls that started before the state
changed (20 stale failures would re-open an already open breaker 20 times and keep pushing
``opened_at`` forward). ``guarded_call`` therefore drives pybreaker's own state objects
(``_handle_error`` / ``_handle_success``, storage counters, listeners, ``success_threshold``,
``exclude``) but decides admission itself, in short synchronous sections under the breaker's
lock: no ``await`` happens between a decision and the state update, so coroutines on one loop
cannot interleave inside it, and the lock covers threads running their own loops.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from steer_llm_sdk.config import CircuitBreakerConfig
from steer_llm_sdk.errors import CircuitOpenError
from steer_llm_sdk.reliability.breaker_state import BreakerWindow, current_retry_pending
from steer_llm_sdk.reliability.classification import (
    classify_exception,
    is_client_error,
    reached_provider,
)


def _import_pybreaker() -> Any:
    """pybreaker imports redis (0.1-0.2 s) whenever it is installed, only for its
    CircuitRedisStorage; the breakers here use in-memory storage, so skip it unless redis is
    already loaded (then CircuitRedisStorage keeps working)."""
    if "redis" in sys.modules or "pybreaker" in sys.modules:
        import pybreaker
        return pybreaker
    sys.modules["redis"] = None  # type: ignore[assignment]  # `import redis` -> ImportError
    try:
        import pybreaker
    finally:
        if "redis" in sys.modules and sys.modules["redis"] is None:
            del sys.modules["redis"]
    return pybreaker


if TYPE_CHECKING:
    import pybreaker
else:
    pybreaker = _import_pybreaker()

__all__ = [
    "BreakerRegistry",
    "BreakerStateCounter",
    "get_breaker_registry",
    "guarded_call",
    "normalise_state",
]

T = TypeVar("T")
logger = logging.getLogger(__name__)


def normalise_state(name: str | None) -> str:
    """pybreaker says "half-open"; our events and metrics use identifiers ("half_open")."""
    return (name or "closed").replace("-", "_")


class BreakerStateCounter(pybreaker.CircuitBreakerListener):
    """Records (and logs) state transitions, failures and successes of the breakers it watches.

    Transitions are rare, so a bounded history is enough for tests and for an ops endpoint.
    """

    def __init__(self, *, log: bool = True, history: int = 1000) -> None:
        self.log = log
        self.transitions: deque[tuple[str, str, str]] = deque(maxlen=history)
        self.counts: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.successes: Counter[str] = Counter()

    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
        name = cb.name or "?"
        old = normalise_state(getattr(old_state, "name", None))
        new = normalise_state(getattr(new_state, "name", None))
        self.transitions.append((name, old, new))
        self.counts[f"{old}->{new}"] += 1
        if self.log:
            level = logging.WARNING if new == "open" else logging.INFO
            logger.log(level, "breaker %s: %s -> %s", name, old, new)

    def failure(self, cb: pybreaker.CircuitBreaker, exc: BaseException) -> None:
        self.failures[cb.name or "?"] += 1

    def success(self, cb: pybreaker.CircuitBreaker) -> None:
        self.successes[cb.name or "?"] += 1

    def transitions_for(self, name: str) -> list[tuple[str, str]]:
        return [(old, new) for n, old, new in self.transitions if n == name]


_windows: weakref.WeakKeyDictionary[pybreaker.CircuitBreaker, BreakerWindow] = (
    weakref.WeakKeyDictionary()
)
_windows_lock = threading.Lock()
_WAIT_SLICE_S = 0.02  # how often a caller waiting on a half-open trial looks again


def window_of(breaker: pybreaker.CircuitBreaker, config: CircuitBreakerConfig | None = None
              ) -> BreakerWindow:
    """The breaker's ``BreakerWindow``; a foreign breaker gets one sized from its fail_max."""
    with _windows_lock:
        window = _windows.get(breaker)
        if window is None:
            threshold = config.failure_threshold if config else breaker.fail_max
            size = (config.window_size if config else None) or 2 * threshold
            window = _windows[breaker] = BreakerWindow(threshold, size)
        return window


def _reopens_in(breaker: pybreaker.CircuitBreaker) -> float:
    opened_at = breaker._state_storage.opened_at
    if opened_at is None:
        return 0.0
    until = opened_at + timedelta(seconds=breaker.reset_timeout)
    return max(0.0, (until - datetime.now(UTC)).total_seconds())


def _shared() -> Any:
    """The shared-state seam (steer_llm_sdk.reliability.breaker_store); imported lazily so
    pybreaker is loaded first, without its eager redis import."""
    from steer_llm_sdk.reliability import breaker_store

    return breaker_store


def _trial_ttl(breaker: pybreaker.CircuitBreaker) -> float:
    """How long a crashed trial holder can block other trials fleet-wide."""
    return max(30.0, float(breaker.reset_timeout))


class _TrialInFlight(Exception):
    """Half-open and another caller's trial is deciding: wait for it (never escapes)."""


def _admit(breaker: pybreaker.CircuitBreaker, fn: Callable[..., Any], args: Any,
           kwargs: Any, token: object) -> tuple[Any, int]:
    """Decide, synchronously, whether this call may run; return the state object it ran under
    and its admission time on the window's clock.

    Mirrors ``CircuitOpenState.before_call`` (open until ``opened_at + reset_timeout``, then
    half-open) but admits exactly one trial while half-open instead of serialising every call.
    """
    name = breaker.name or "?"
    with breaker._lock:
        state = breaker.state  # re-syncs the cached state object with (possibly shared) storage
        window = window_of(breaker)
        if state.name == pybreaker.STATE_OPEN:
            remaining = _reopens_in(breaker)
            if remaining > 0:
                raise CircuitOpenError(name, remaining, last_error=window.last_error)
            breaker.half_open()
            state = breaker.state
        is_trial = state.name == pybreaker.STATE_HALF_OPEN
        if is_trial and window.trial is not None:
            raise _TrialInFlight
        if is_trial and not _shared().acquire_trial(name, _trial_ttl(breaker)):
            raise _TrialInFlight  # another process's trial decides (shared store): wait for it
        for listener in breaker.listeners:
            listener.before_call(breaker, fn, *args, **kwargs)
        if is_trial:
            window.trial = token
        return state, window.tick()


def _fleet_saw_enough(breaker: pybreaker.CircuitBreaker) -> bool:
    """With a shared store, the window of this process sees only its own calls; the fleet's
    recorded failures since the last success (the shared counter, reset by any success)
    open the breaker once they reach ``failure_threshold``, so N hosts do not each spend
    their own threshold on a broken endpoint."""
    storage = breaker._state_storage
    if not getattr(storage, "is_shared", False):
        return False
    return int(storage.counter) >= int(breaker.fail_max)


def _error_summary(exc: BaseException) -> dict[str, Any]:
    error = classify_exception(exc)
    return {"category": str(error.category), "status_code": error.status_code,
            "message": str(error)[:300]}


def _settle(breaker: pybreaker.CircuitBreaker, admitted: Any, token: object,
            admitted_at: int, pending: bool, exc: BaseException | None) -> None:
    """Record the outcome, unless the state moved on meanwhile.

    A result from a call admitted under an older state says nothing about the current one (the
    breaker already opened, or a newer trial is deciding), so it only reaches the listeners.
    In closed state the window decides (breaker_state); half-open keeps pybreaker's rule: a
    trial failure re-opens, ``success_threshold`` trial successes close.
    """
    with breaker._lock:
        window = window_of(breaker)
        if window.trial is token:
            window.trial = None
            _shared().release_trial(breaker.name or "?")
        provider_fault = exc is not None and breaker.is_system_error(exc)
        if provider_fault:
            window.last_error = _error_summary(exc)
        if breaker.state is not admitted:
            for listener in breaker.listeners:
                if exc is None:
                    listener.success(breaker)
                elif provider_fault:
                    listener.failure(breaker, exc)
            return
        if admitted.name == pybreaker.STATE_HALF_OPEN:
            _settle_trial(breaker, admitted, window, exc)
            return
        if not provider_fault:  # success, or the provider rightly refused our request
            window.record_success()
            admitted._handle_success()  # resets pybreaker's consecutive counter; notifies
            return
        for listener in breaker.listeners:
            listener.failure(breaker, exc)
        verdict = window.record_failure(admitted_at, pending)
        if verdict != "ignored":
            breaker._state_storage.increment_counter()  # recorded failures, for observers
            if verdict != "open" and _fleet_saw_enough(breaker):
                verdict = "open"
        if verdict == "open":
            window.reset()
            breaker.open()


def _settle_trial(breaker: pybreaker.CircuitBreaker, admitted: Any, window: BreakerWindow,
                  exc: BaseException | None) -> None:
    if exc is None or not breaker.is_system_error(exc):
        admitted._handle_success()
        if breaker.current_state == pybreaker.STATE_CLOSED:
            window.reset()
        return
    try:
        # Counts the failure and re-opens; pybreaker signals that by raising (exc or
        # CircuitBreakerError): guarded_call re-raises the original exception either way.
        admitted._handle_error(exc, reraise=False)
    except BaseException as raised:
        if raised is not exc and not isinstance(raised, pybreaker.CircuitBreakerError):
            raise  # a listener bug; pybreaker's own call() would surface it too
    window.reset()


async def _admit_or_wait(breaker: pybreaker.CircuitBreaker, fn: Callable[..., Any], args: Any,
                         kwargs: Any, token: object, wait_until: float | None
                         ) -> tuple[Any, int]:
    """Admit the call; while another caller's half-open trial decides, wait for its outcome
    (until ``wait_until``, a monotonic time) instead of failing: the trial either closes the
    breaker (everyone proceeds) or re-opens it (everyone fails fast with the real cause)."""
    while True:
        try:
            return _admit(breaker, fn, args, kwargs, token)
        except _TrialInFlight:
            left = None if wait_until is None else wait_until - time.monotonic()
            if left is not None and left <= 0:
                raise CircuitOpenError(breaker.name or "?", 0.0,
                                       last_error=window_of(breaker).last_error) from None
            await asyncio.sleep(_WAIT_SLICE_S if left is None else min(_WAIT_SLICE_S, left))


async def guarded_call(
    breaker: pybreaker.CircuitBreaker | None,
    fn: Callable[..., Awaitable[T]],
    /,
    *args: Any,
    wait_until: float | None = None,
    **kwargs: Any,
) -> T:
    """Await ``fn(*args, **kwargs)`` under ``breaker``; ``None`` means breakers are disabled.

    Raises ``CircuitOpenError`` (carrying the provider's last real error) without calling
    ``fn`` while open; waits for a half-open trial's outcome until ``wait_until`` (monotonic,
    None = as long as it takes). Any failure re-raises the original exception so the caller
    can classify it. Cancellation and errors that never reached the provider (an invalid
    header value, bad arguments: ``reached_provider``) are neutral: they free the trial slot
    but count for nothing.
    """
    if breaker is None:
        return await fn(*args, **kwargs)
    token = object()
    pending = current_retry_pending()
    admitted, admitted_at = await _admit_or_wait(breaker, fn, args, kwargs, token, wait_until)
    try:
        result = await fn(*args, **kwargs)
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit) or (
                not reached_provider(exc)):
            with breaker._lock:
                window = window_of(breaker)
                if window.trial is token:
                    window.trial = None
                    _shared().release_trial(breaker.name or "?")
            raise
        tb = exc.__traceback__  # pybreaker's internal re-raise would append its own frames
        _settle(breaker, admitted, token, admitted_at, pending, exc)
        exc.with_traceback(tb)
        raise
    _settle(breaker, admitted, token, admitted_at, pending, None)
    return result


def _config_listeners(config: CircuitBreakerConfig) -> list[Any]:
    """The config's on_open/on_close callbacks, as a listener (none when unset)."""
    if config.on_open is None and config.on_close is None:
        return []
    from steer_llm_sdk.reliability.breaker_callbacks import CallbackListener

    return [CallbackListener(config)]


class BreakerRegistry:
    """One breaker per provider endpoint name, shared by every flow and task in the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._breakers: dict[str, pybreaker.CircuitBreaker] = {}
        self.listener = BreakerStateCounter()

    def get(self, provider: str, config: CircuitBreakerConfig) -> pybreaker.CircuitBreaker:
        """Create on first use; later calls return the same breaker and ignore ``config``."""
        with self._lock:
            breaker = self._breakers.get(provider)
            if breaker is None:
                breaker = pybreaker.CircuitBreaker(
                    fail_max=config.failure_threshold,  # the window (breaker_state) decides
                    reset_timeout=config.reset_timeout_s,
                    success_threshold=config.success_threshold,
                    exclude=[is_client_error],
                    listeners=[self.listener, *_config_listeners(config)],
                    name=provider,
                    throw_new_error_on_trip=False,
                    state_storage=_shared().storage_for(provider, config.reset_timeout_s),
                )
                self._breakers[provider] = breaker
                window_of(breaker, config)
            return breaker

    async def call(self, provider: str, config: CircuitBreakerConfig,
                   fn: Callable[..., Awaitable[T]], /, *args: Any,
                   wait_until: float | None = None, **kwargs: Any) -> T:
        """``guarded_call`` through the provider's breaker, or straight through if disabled."""
        breaker = self.get(provider, config) if config.enabled else None
        return await guarded_call(breaker, fn, *args, wait_until=wait_until, **kwargs)

    def last_error(self, provider: str) -> dict[str, Any] | None:
        """The provider's last real error seen by its breaker (category, status, message)."""
        with self._lock:
            breaker = self._breakers.get(provider)
        return None if breaker is None else window_of(breaker).last_error

    def states(self) -> dict[str, str]:
        """Provider -> "closed" | "open" | "half_open", as stored (open stays "open" until a
        call arrives after ``reset_timeout``, like pybreaker)."""
        with self._lock:
            items = list(self._breakers.items())
        shared = _shared().shared_states()  # breakers of other processes (shared store only)
        local = {name: normalise_state(b.current_state) for name, b in items}
        return {**{n: normalise_state(s["state"]) for n, s in shared.items()}, **local}

    def seconds_until_half_open(self, provider: str) -> float:
        """0 when the breaker is not open or its reset timeout has already elapsed."""
        with self._lock:
            breaker = self._breakers.get(provider)
        if breaker is None:
            shared = _shared().shared_states().get(provider) or {}
            if shared.get("state") != "open" or not shared.get("opened_at"):
                return 0.0
            until = shared["opened_at"] + shared.get("reset_timeout_s", 0.0)
            return max(until - datetime.now(UTC).timestamp(), 0.0)
        if normalise_state(breaker.current_state) != "open":
            return 0.0
        return max(_reopens_in(breaker), 0.0)

    def effective_states(self) -> dict[str, str]:
        """Like ``states`` but an open breaker whose reset timeout elapsed reads "half_open":
        the next call would be let through as a trial, so planners should not skip it."""
        return {
            name: "half_open" if state == "open" and self.seconds_until_half_open(name) <= 0
            else state
            for name, state in self.states().items()
        }

    def reset(self, provider: str | None = None) -> None:
        """Close the named breaker (or all) and zero its counters: an operator override."""
        with self._lock:
            targets = (
                list(self._breakers.values()) if provider is None
                else [b for n, b in self._breakers.items() if n == provider]
            )
        for breaker in targets:
            with breaker._lock:
                if breaker.current_state != pybreaker.STATE_CLOSED:
                    breaker.close()
                breaker._state_storage.reset_counter()
                breaker._state_storage.reset_success_counter()
                window_of(breaker).reset()

    def clear(self) -> None:
        """Forget every breaker, so the next ``get`` applies a new config (tests use this)."""
        with self._lock:
            self._breakers.clear()


_registry = BreakerRegistry()


def get_breaker_registry() -> BreakerRegistry:
    """The process-wide registry: breakers must be shared to see a provider's overall health."""
    return _registry
