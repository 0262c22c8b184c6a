"""Process-wide circuit breakers per provider endpoint, driven correctly from asyncio.

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
import weakref
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from steer_llm_sdk.config import CircuitBreakerConfig
from steer_llm_sdk.errors import CircuitOpenError
from steer_llm_sdk.reliability.classification import is_client_error


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


class _Gate:
    """Per-breaker async bookkeeping pybreaker has no slot for: the in-flight half-open trial."""

    __slots__ = ("trial",)

    def __init__(self) -> None:
        self.trial: object | None = None


_gates: weakref.WeakKeyDictionary[pybreaker.CircuitBreaker, _Gate] = weakref.WeakKeyDictionary()
_gates_lock = threading.Lock()


def _gate(breaker: pybreaker.CircuitBreaker) -> _Gate:
    with _gates_lock:
        gate = _gates.get(breaker)
        if gate is None:
            gate = _gates[breaker] = _Gate()
        return gate


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


def _admit(breaker: pybreaker.CircuitBreaker, fn: Callable[..., Any], args: Any,
           kwargs: Any, token: object) -> Any:
    """Decide, synchronously, whether this call may run; return the state object it ran under.

    Mirrors ``CircuitOpenState.before_call`` (open until ``opened_at + reset_timeout``, then
    half-open) but admits exactly one trial while half-open instead of serialising every call.
    """
    name = breaker.name or "?"
    with breaker._lock:
        state = breaker.state  # re-syncs the cached state object with (possibly shared) storage
        gate = _gate(breaker)
        if state.name == pybreaker.STATE_OPEN:
            remaining = _reopens_in(breaker)
            if remaining > 0:
                raise CircuitOpenError(name, remaining)
            breaker.half_open()
            state = breaker.state
        is_trial = state.name == pybreaker.STATE_HALF_OPEN
        if is_trial and gate.trial is not None:
            raise CircuitOpenError(name, 0.0)  # another call's trial is in flight; it decides
        if is_trial and not _shared().acquire_trial(name, _trial_ttl(breaker)):
            raise CircuitOpenError(name, 0.0)  # another process's trial decides (shared store)
        for listener in breaker.listeners:
            listener.before_call(breaker, fn, *args, **kwargs)
        if is_trial:
            gate.trial = token
        return state


def _settle(breaker: pybreaker.CircuitBreaker, admitted: Any, token: object,
            exc: BaseException | None) -> None:
    """Record the outcome in pybreaker's state/storage, unless the state moved on meanwhile.

    A result from a call admitted under an older state says nothing about the current one (the
    breaker already opened, or a newer trial is deciding), so it only reaches the listeners.
    """
    with breaker._lock:
        gate = _gate(breaker)
        if gate.trial is token:
            gate.trial = None
            _shared().release_trial(breaker.name or "?")
        if breaker.state is not admitted:
            for listener in breaker.listeners:
                if exc is None:
                    listener.success(breaker)
                elif breaker.is_system_error(exc):
                    listener.failure(breaker, exc)
            return
        if exc is None:
            admitted._handle_success()
            return
        try:
            # Counts the failure (or, for excluded errors, a success) and may trip the breaker;
            # on a trip pybreaker raises CircuitBreakerError or re-raises exc. That is only its
            # trip signal: guarded_call re-raises the original exception either way.
            admitted._handle_error(exc, reraise=False)
        except BaseException as raised:
            if raised is not exc and not isinstance(raised, pybreaker.CircuitBreakerError):
                raise  # a listener bug; pybreaker's own call() would surface it too


async def guarded_call(
    breaker: pybreaker.CircuitBreaker | None,
    fn: Callable[..., Awaitable[T]],
    /,
    *args: Any,
    **kwargs: Any,
) -> T:
    """Await ``fn(*args, **kwargs)`` under ``breaker``; ``None`` means breakers are disabled.

    Raises ``CircuitOpenError`` without calling ``fn`` while open (or while another coroutine's
    half-open trial is in flight). Any failure re-raises the original exception so the caller
    can classify it. Cancellation is neutral: it frees the trial slot but counts for nothing.
    """
    if breaker is None:
        return await fn(*args, **kwargs)
    token = object()
    admitted = _admit(breaker, fn, args, kwargs, token)
    try:
        result = await fn(*args, **kwargs)
    except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
        with breaker._lock:
            gate = _gate(breaker)
            if gate.trial is token:
                gate.trial = None
                _shared().release_trial(breaker.name or "?")
        raise
    except BaseException as exc:
        tb = exc.__traceback__  # pybreaker's internal re-raise would append its own frames
        _settle(breaker, admitted, token, exc)
        exc.with_traceback(tb)
        raise
    _settle(breaker, admitted, token, None)
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
                    fail_max=config.failure_threshold,
                    reset_timeout=config.reset_timeout_s,
                    success_threshold=config.success_threshold,
                    exclude=[is_client_error],
                    listeners=[self.listener, *_config_listeners(config)],
                    name=provider,
                    throw_new_error_on_trip=False,
                    state_storage=_shared().storage_for(provider, config.reset_timeout_s),
                )
                self._breakers[provider] = breaker
            return breaker

    async def call(self, provider: str, config: CircuitBreakerConfig,
                   fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        """``guarded_call`` through the provider's breaker, or straight through if disabled."""
        breaker = self.get(provider, config) if config.enabled else None
        return await guarded_call(breaker, fn, *args, **kwargs)

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
                _gate(breaker).trial = None

    def clear(self) -> None:
        """Forget every breaker, so the next ``get`` applies a new config (tests use this)."""
        with self._lock:
            self._breakers.clear()


_registry = BreakerRegistry()


def get_breaker_registry() -> BreakerRegistry:
    """The process-wide registry: breakers must be shared to see a provider's overall health."""
    return _registry
