"""Per-run state that cannot travel as a Prefect parameter (tool objects, the caller's event
callback, budget counters). Orchestrators register it under a session id before starting the
flow; a deployed run in another process finds none and builds a default one."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from steer_llm_sdk.config import CircuitBreakerConfig, OrchestrationConfig, ReliabilityConfig
from steer_llm_sdk.errors import BudgetExceeded
from steer_llm_sdk.events import EventEmitter
from steer_llm_sdk.providers.ledger import CallLedger
from steer_llm_sdk.reliability.retry import prefect_retry_options
from steer_tools.evidence import Usage
from steer_tools.registry import ToolRegistry, get_global_registry


class BudgetTracker:
    """Counts what a run has spent and answers 'may another replicate start?'."""

    def __init__(self, limits: dict[str, float] | None, started: float) -> None:
        self.limits = dict(limits or {})
        self.started = started
        self.usage = Usage()
        self.cost_usd = 0.0

    def add(self, usage: Usage, cost_usd: float) -> None:
        self.usage = self.usage + usage
        self.cost_usd += cost_usd

    def spent(self) -> dict[str, float]:
        return {
            "tokens": float(self.usage.total_tokens),
            "cost_usd": self.cost_usd,
            "ms": (time.monotonic() - self.started) * 1000,
        }

    def first_exceeded(self, *, inclusive: bool) -> BudgetExceeded | None:
        """inclusive=True: 'spent' means reached (stop launching); False: strictly over."""
        spent = self.spent()
        for key, limit in self.limits.items():
            actual = spent[key]
            if actual > limit or (inclusive and actual >= limit):
                return BudgetExceeded(key, limit, round(actual, 6))
        return None


@dataclass
class RunSession:
    registry: ToolRegistry
    emitter: EventEmitter
    reliability: ReliabilityConfig
    budget: BudgetTracker
    deadline: float | None = None
    started: float = field(default_factory=time.monotonic)
    planner: Any = None
    tools: dict[str, Any] = field(default_factory=dict)
    breakers_enabled: bool = True
    eager: dict[str, Any] = field(default_factory=dict)  # replicate id -> tasks.eager.EagerCall
    defer_api_writes: bool = False  # the caller awaits `deferred` after the flow returns
    deferred: list[asyncio.Task[Any]] = field(default_factory=list)
    run_key: str | None = None  # finished replicates persist under it (tasks/durable.py)
    claim: Any = None  # reliability.run_claims.RunClaim when this run owns an idempotency key
    resumed: list[str] = field(default_factory=list)  # replicate ids served from storage
    ledger: CallLedger = field(default_factory=CallLedger)  # every provider call's usage
    scheduler: Any = None  # the running flows.bundle.BundleScheduler (partial results)
    eager_tool: Any = None  # the bundle tool of the eager first wave, if one was started

    def breaker_config_for(self, provider: str | None) -> CircuitBreakerConfig | None:
        if provider is None:
            return None
        config = self.reliability.breaker_for(provider)
        return config if self.breakers_enabled else config.model_copy(update={"enabled": False})

    def defer(self, write: Any) -> None:
        """Run an API write (artifacts) alongside Prefect's final-state write when the caller
        will await it; otherwise the flow awaits it now."""
        self.deferred.append(asyncio.ensure_future(write))

    async def finish_deferred_writes(self) -> None:
        tasks, self.deferred = self.deferred, []
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(result, BaseException):  # the run's output is already complete
                logger.warning("evidence artifacts were not written: %r", result)

    def task_options(self, cfg: OrchestrationConfig) -> dict[str, Any]:
        """Prefect ``with_options`` kwargs for a tool or replicate task: retries from the
        reliability policy, bounded by the run's deadline; per-attempt timeout."""
        options = prefect_retry_options(self.reliability.retry, enabled=cfg.retry_on_failure,
                                        max_retries=cfg.max_retries, deadline=self.deadline)
        if cfg.per_agent_timeout_ms:
            options["timeout_seconds"] = cfg.per_agent_timeout_ms / 1000
        return options

    @classmethod
    def create(
        cls,
        cfg: OrchestrationConfig,
        *,
        registry: ToolRegistry | None = None,
        on_event: Any = None,
        reliability: ReliabilityConfig | None = None,
        planner: Any = None,
        started: float | None = None,
    ) -> RunSession:
        """The clock starts now (or at ``started``, when ``run()`` was called): budgets and
        ``timeout_ms`` count from there."""
        started = time.monotonic() if started is None else started
        return cls(
            registry=registry if registry is not None else get_global_registry(),
            emitter=EventEmitter(on_event, trace_id=cfg.trace_id or "",
                                 request_id=cfg.request_id or "", redactor=cfg.redactor_cb,
                                 streaming=cfg.streaming,
                                 logger=logging.getLogger("steer_llm_sdk.events")),
            reliability=reliability or ReliabilityConfig(),
            budget=BudgetTracker(cfg.budget, started),
            deadline=started + cfg.timeout_ms / 1000 if cfg.timeout_ms else None,
            started=started,
            planner=planner,
            breakers_enabled=cfg.enable_circuit_breaker,
        )


logger = logging.getLogger("steer_llm_sdk.runtime")
_SESSIONS: dict[str, RunSession] = {}
_LOCK = threading.Lock()


def register_session(session_id: str, session: RunSession) -> None:
    with _LOCK:
        _SESSIONS[session_id] = session


def pop_session(session_id: str) -> RunSession | None:
    with _LOCK:
        return _SESSIONS.pop(session_id, None)


def get_session(session_id: str | None) -> RunSession | None:
    if session_id is None:
        return None
    with _LOCK:
        return _SESSIONS.get(session_id)
