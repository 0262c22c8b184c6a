"""Builders for the rules most deployments need, so they are not rewritten (and mis-written).

Default priorities encode specificity: an exact type match (10) says more about a request than
a keyword in free text (5), and a budget rule (0) is a catch-all that only shapes options.
"""

from __future__ import annotations

import math
import re
from typing import Any

from steer_llm_sdk.planner.models import PlanRequest
from steer_llm_sdk.planner.rules import PlanningRule, RuleAction, RuleCondition

TYPE_RULE_PRIORITY = 10
KEYWORD_RULE_PRIORITY = 5
BUDGET_RULE_PRIORITY = 0

# Division like 0.06 / 0.02 lands just under 3; without this slack a budget that fits exactly
# would lose a replicate.
_EPSILON = 1e-9


def type_based_rule(
    type_value: Any,
    tool: str,
    field: str = "type",
    priority: int = TYPE_RULE_PRIORITY,
    *,
    options: dict[str, Any] | None = None,
    fallbacks: list[str] | None = None,
    name: str | None = None,
    description: str = "",
) -> PlanningRule:
    """Route requests whose ``field`` equals ``type_value`` to ``tool``."""
    return PlanningRule(
        name=name or f"type:{field}={type_value}->{tool}",
        conditions=[RuleCondition(field=field, operator="equals", value=type_value)],
        action=RuleAction(tool=tool, options=dict(options or {}), fallbacks=list(fallbacks or [])),
        priority=priority,
        description=description or f"{field} == {type_value!r}",
    )


def keyword_rule(
    keywords: list[str],
    tool: str,
    field: str = "query",
    priority: int = KEYWORD_RULE_PRIORITY,
    *,
    options: dict[str, Any] | None = None,
    fallbacks: list[str] | None = None,
    name: str | None = None,
    description: str = "",
) -> PlanningRule:
    """Route requests whose ``field`` text contains any keyword as a whole word, ignoring case.

    Whole-word matching keeps "cost" from matching "costume"; the boundaries are lookarounds
    rather than ``\\b`` so keywords that start or end with punctuation ("c++") still work.
    """
    cleaned = [keyword.strip() for keyword in keywords if keyword and keyword.strip()]
    if not cleaned:
        raise ValueError("keyword_rule needs at least one non-empty keyword")
    alternatives = "|".join(re.escape(keyword) for keyword in cleaned)
    pattern = rf"(?i)(?<!\w)(?:{alternatives})(?!\w)"
    return PlanningRule(
        name=name or f"keywords:{field}~{','.join(cleaned)}->{tool}",
        conditions=[RuleCondition(field=field, operator="regex", value=pattern)],
        action=RuleAction(tool=tool, options=dict(options or {}), fallbacks=list(fallbacks or [])),
        priority=priority,
        description=description or f"{field} mentions any of {cleaned}",
    )


def budget_aware_rule(
    tool: str,
    cost_per_replicate_usd: float,
    min_k: int = 2,
    max_k: int = 10,
    priority: int = BUDGET_RULE_PRIORITY,
    *,
    tokens_per_replicate: float | None = None,
    conditions: list[RuleCondition] | None = None,
    options: dict[str, Any] | None = None,
    fallbacks: list[str] | None = None,
    name: str | None = None,
    description: str = "",
) -> PlanningRule:
    """Route to bundle ``tool`` with the largest k the budget allows.

    Starting k is the caller's: ``context.user_preferences["k"]``, else ``options["k"]``, else
    ``max_k``; it is capped at ``max_k``. It is then lowered, never raised, until
    ``k * cost_per_replicate_usd <= budget["cost_usd"]`` and, when ``tokens_per_replicate`` is
    given, ``k * tokens_per_replicate <= budget["tokens"]``. It is not lowered below ``min_k``:
    fewer replicates would make the aggregate statistics meaningless, and if even ``min_k``
    does not fit, the run's budget guard (BudgetExceeded) is the right place to stop it. A
    caller k that already fits is kept unchanged. Matches every request unless ``conditions``
    are given.
    """
    if cost_per_replicate_usd <= 0:
        raise ValueError("cost_per_replicate_usd must be > 0")
    if tokens_per_replicate is not None and tokens_per_replicate <= 0:
        raise ValueError("tokens_per_replicate must be > 0 when given")
    if min_k < 1 or max_k < min_k:
        raise ValueError(f"need 1 <= min_k <= max_k, got min_k={min_k}, max_k={max_k}")

    def fit_k_to_budget(
        current: dict[str, Any], request: dict[str, Any], context: PlanRequest
    ) -> dict[str, Any]:
        requested = (
            _positive_int(context.user_preferences.get("k"))
            or _positive_int(current.get("k"))
            or max_k
        )
        k = min(requested, max_k)
        budget = context.budget or {}
        affordable: list[int] = []
        if _is_number(budget.get("cost_usd")):
            affordable.append(math.floor(budget["cost_usd"] / cost_per_replicate_usd + _EPSILON))
        if tokens_per_replicate is not None and _is_number(budget.get("tokens")):
            affordable.append(math.floor(budget["tokens"] / tokens_per_replicate + _EPSILON))
        if affordable:
            k = min(k, max(min_k, min(affordable)))
        return {**current, "k": k}

    return PlanningRule(
        name=name or f"budget:{tool}",
        conditions=list(conditions or []),
        action=RuleAction(
            tool=tool,
            options=dict(options or {}),
            fallbacks=list(fallbacks or []),
            transform=fit_k_to_budget,
        ),
        priority=priority,
        description=description
        or f"k fitted to budget at ${cost_per_replicate_usd:g}/replicate (min {min_k})",
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


# -- the 0.3.2 builders, same names and signatures --------------------------------------------
# They build the same PlanningRule objects as the builders above; tool options are keyword
# arguments, as in 0.3.2. Rule names follow 0.3.2 ("keywords_<tool>", "budget_aware_<tool>")
# except that a type rule's name also carries its tool ("type_analysis_<tool>"): names are
# unique per planner here (remove_rule needs that), and 0.3.2 code routinely registers two
# type rules for one type at different priorities.

LOW_BUDGET_TOKENS = 2000  # 0.3.2's thresholds: below either, a budget counts as low
LOW_BUDGET_COST_USD = 0.10


def create_type_based_rule(request_type: Any, tool_name: str, priority: int = 10,
                           **tool_options: Any) -> PlanningRule:
    """0.3.2: route requests whose ``type`` equals ``request_type`` to ``tool_name``."""
    return type_based_rule(request_type, tool_name, priority=priority, options=tool_options,
                           name=f"type_{request_type}_{tool_name}",
                           description=f"Use {tool_name} for {request_type} requests")


def create_keyword_based_rule(keywords: list[str], attribute: str, tool_name: str,
                              priority: int = 5, **tool_options: Any) -> PlanningRule:
    """0.3.2: route requests whose ``attribute`` mentions any keyword (whole words here;
    0.3.2 matched substrings, so "cost" also matched "costume")."""
    return keyword_rule(keywords, tool_name, field=attribute, priority=priority,
                        options=tool_options, name=f"keywords_{tool_name}")


def create_budget_aware_rule(tool_name: str, low_budget_k: int = 2, high_budget_k: int = 5,
                             priority: int = 8) -> PlanningRule:
    """0.3.2: ``k = low_budget_k`` when the budget is low (tokens < 2000 or cost_usd < 0.10),
    else ``high_budget_k``. The budget is the run's (``PlanRequest.budget``, filled from
    ``OrchestrationConfig.budget``), else ``request["options"]["budget"]`` where 0.3.2 read
    it; a missing or malformed budget counts as not low instead of crashing the plan."""
    if low_budget_k < 1 or high_budget_k < 1:
        raise ValueError("low_budget_k and high_budget_k must be >= 1")

    def k_for_budget(current: dict[str, Any], request: dict[str, Any],
                     context: PlanRequest) -> dict[str, Any]:
        budget = context.budget
        if budget is None:
            options = request.get("options") if isinstance(request, dict) else None
            budget = options.get("budget") if isinstance(options, dict) else None
        budget = budget if isinstance(budget, dict) else {}
        tokens, cost = budget.get("tokens"), budget.get("cost_usd")
        low = (_is_number(tokens) and tokens < LOW_BUDGET_TOKENS) or (
            _is_number(cost) and cost < LOW_BUDGET_COST_USD)
        return {**current, "k": low_budget_k if low else high_budget_k}

    return PlanningRule(
        name=f"budget_aware_{tool_name}",
        action=RuleAction(tool=tool_name, transform=k_for_budget),
        priority=priority,
        description=f"Adjust {tool_name} K value based on budget",
    )
