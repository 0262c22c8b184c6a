"""The 0.3.2 import path of the planner (``steer_llm_sdk.orchestration.planning``).

A thin re-export: the planner lives in ``steer_llm_sdk.planner`` (plain Python, no Prefect).
"""

from steer_llm_sdk.planner import (
    ExecutionStrategy,
    PlanDecision,
    Planner,
    PlanningRule,
    PlanRequest,
    RuleAction,
    RuleBasedPlanner,
    RuleCondition,
    ToolMetadata,
)

__all__ = [
    "ExecutionStrategy", "PlanDecision", "PlanRequest", "Planner", "PlanningRule", "RuleAction",
    "RuleBasedPlanner", "RuleCondition", "ToolMetadata",
]
