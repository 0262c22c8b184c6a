"""Tool planning for Steer LLM SDK (0.3.2 "Planning & Reliability").

Plain Python with no Prefect import, so planning logic is unit-testable on its own; a Prefect
task wraps ``Planner.plan`` elsewhere.
"""

from steer_llm_sdk.planner.base import Planner
from steer_llm_sdk.planner.helpers import (
    budget_aware_rule,
    create_budget_aware_rule,
    create_keyword_based_rule,
    create_type_based_rule,
    keyword_rule,
    type_based_rule,
)
from steer_llm_sdk.planner.models import ExecutionStrategy, PlanDecision, PlanRequest, ToolMetadata
from steer_llm_sdk.planner.rule_based import RuleBasedPlanner
from steer_llm_sdk.planner.rules import PlanningRule, RuleAction, RuleCondition

__all__ = [
    "ExecutionStrategy",
    "PlanDecision",
    "PlanRequest",
    "Planner",
    "PlanningRule",
    "RuleAction",
    "RuleBasedPlanner",
    "RuleCondition",
    "ToolMetadata",
    "budget_aware_rule",
    "create_budget_aware_rule",
    "create_keyword_based_rule",
    "create_type_based_rule",
    "keyword_rule",
    "type_based_rule",
]
