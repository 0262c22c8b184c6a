"""ReliableOrchestrator: a planner picks the tool when none is named; retries, breakers,
fallbacks and persistent idempotency come from its ReliabilityConfig."""

from __future__ import annotations

from typing import Any

from steer_llm_sdk.config import ReliabilityConfig
from steer_llm_sdk.orchestration.orchestrator import BaseOrchestrator
from steer_llm_sdk.reliability.breakers import get_breaker_registry
from steer_llm_sdk.reliability.idempotency import IdempotencyStore
from steer_tools.registry import ToolRegistry


class ReliableOrchestrator(BaseOrchestrator):
    """``ReliableOrchestrator(planner, reliability_config, idempotency_store)``: the 0.3.2
    positional order. The third argument may also be passed as ``idempotency_manager=``
    (0.3.2's name); it must be an ``IdempotencyStore`` (see ``make_idempotency_store``)."""

    requires_tool_name = False

    def __init__(
        self,
        planner: Any = None,
        reliability_config: ReliabilityConfig | None = None,
        idempotency_store: IdempotencyStore | None = None,
        registry: ToolRegistry | None = None,
        *,
        idempotency_manager: IdempotencyStore | None = None,
    ) -> None:
        if idempotency_manager is not None:
            if idempotency_store is not None:
                raise TypeError("pass idempotency_store or idempotency_manager, not both "
                                "(they name the same argument)")
            idempotency_store = idempotency_manager
        if idempotency_store is not None and not isinstance(idempotency_store, IdempotencyStore):
            raise TypeError(
                f"idempotency_store must be an IdempotencyStore, got "
                f"{type(idempotency_store).__name__}; build one with "
                "steer_llm_sdk.reliability.make_idempotency_store() (SQLite, Redis, Postgres)"
            )
        if planner is None:
            from steer_llm_sdk.planner import RuleBasedPlanner

            planner = RuleBasedPlanner()
        super().__init__(registry, reliability_config=reliability_config,
                         idempotency_store=idempotency_store, planner=planner)

    def get_breaker_states(self) -> dict[str, str]:
        return get_breaker_registry().effective_states()
