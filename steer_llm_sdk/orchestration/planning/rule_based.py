"""The 0.3.2 import path of the rule-based planner and its rule builders (a re-export)."""

from steer_llm_sdk.planner import (
    PlanningRule,
    RuleAction,
    RuleBasedPlanner,
    RuleCondition,
    create_budget_aware_rule,
    create_keyword_based_rule,
    create_type_based_rule,
)

__all__ = [
    "PlanningRule", "RuleAction", "RuleBasedPlanner", "RuleCondition",
    "create_budget_aware_rule", "create_keyword_based_rule", "create_type_based_rule",
]
