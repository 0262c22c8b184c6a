"""ReliableOrchestrator: a planner picks the tool when none is named; retries, breakers,
fallbacks and persistent idempotency come from its ReliabilityConfig."""

from __future__ import annotations

from typing import Any

from steer_llm_sdk.config import ReliabilityConfig
from steer_llm_sdk.orchestration.orchestrator import BaseOrchestrator
from steer_llm_sdk.reliability.breakers import get_breaker_registry
from steer_tools.registry import ToolRegistry


class ReliableOrchestrator(BaseOrchestrator):
    requires_tool_name = False

    def __init__(
        self,
        planner: Any = None,
        reliability_config: ReliabilityConfig | None = None,
        idempotency_store: Any = None,
        registry: ToolRegistry | None = None,
    ) -> None:
        if planner is None:
            from steer_llm_sdk.planner import RuleBasedPlanner

            planner = RuleBasedPlanner()
        super().__init__(registry, reliability_config=reliability_config,
                         idempotency_store=idempotency_store, planner=planner)

    def get_breaker_states(self) -> dict[str, str]:
        return get_breaker_registry().effective_states()
