"""Unit tests for the rule-based planner (no Prefect involved)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError
from steer_llm_sdk.planner import (
    PlanDecision,
    PlanningRule,
    PlanRequest,
    RuleAction,
    RuleBasedPlanner,
    RuleCondition,
    ToolMetadata,
    budget_aware_rule,
    keyword_rule,
    type_based_rule,
)
from steer_llm_sdk.planner.base import Planner

from steer_llm_sdk.errors import PlanningError


def tools(*specs: ToolMetadata) -> dict[str, ToolMetadata]:
    return {spec.name: spec for spec in specs}


ALPHA = ToolMetadata(name="alpha", provider="openai", estimated_cost_usd=0.01,
                     estimated_duration_ms=100)
BETA = ToolMetadata(name="beta", provider="anthropic")
GAMMA = ToolMetadata(name="gamma", provider="local")
BUNDLE = ToolMetadata(name="bundle", provider="openai", is_bundle=True,
                      estimated_cost_usd=0.02, estimated_duration_ms=1000)
ALL = tools(ALPHA, BETA, GAMMA, BUNDLE)


def rule(name: str, tool: str, *conditions: RuleCondition, priority: int = 0,
         fallbacks: list[str] | None = None, **action: Any) -> PlanningRule:
    return PlanningRule(
        name=name, conditions=list(conditions), priority=priority,
        action=RuleAction(tool=tool, fallbacks=fallbacks or [], **action),
    )


def cond(field: str, operator: str, value: Any = None, **kw: Any) -> RuleCondition:
    return RuleCondition(field=field, operator=operator, value=value, **kw)


# -- conditions ---------------------------------------------------------------------------------

REQ = {
    "type": "feasibility",
    "meta": {"type": "market", "score": 7, "tags": ["Urgent", "b2b"], "note": None},
    "items": [{"name": "first"}, {"name": "second"}],
    "query": "What is the Market size?",
    "count": "12",
}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (cond("type", "equals", "feasibility"), True),
        (cond("meta.type", "equals", "market"), True),
        (cond("meta.type", "equals", "Market"), False),
        (cond("items.1.name", "equals", "second"), True),
        (cond("items.5.name", "equals", "second"), False),
        (cond("items.x", "equals", "second"), False),
        (cond("query", "contains", "market SIZE"), True),
        (cond("query", "contains", "revenue"), False),
        (cond("meta.tags", "contains", "urgent"), True),
        (cond("meta.tags", "contains", "b2c"), False),
        (cond("meta", "contains", "score"), True),
        (cond("meta.score", "contains", "7"), False),
        (cond("query", "regex", r"market\s+size"), False),
        (cond("query", "regex", r"(?i)market\s+size"), True),
        (cond("meta.score", "regex", r"7"), False),
        (cond("meta.note", "exists"), True),
        (cond("meta.missing", "exists"), False),
        (cond("meta.score", "gt", 5), True),
        (cond("meta.score", "gt", 7), False),
        (cond("meta.score", "lt", 7.5), True),
        (cond("count", "gt", 1), False),
        (cond("meta.note", "lt", 1), False),
        (cond("meta.type", "custom", matcher=lambda v: v.startswith("mar")), True),
        (cond("", "custom", matcher=lambda req: len(req["items"]) == 2), True),
    ],
)
def test_condition_operators(condition: RuleCondition, expected: bool) -> None:
    assert condition.matches(REQ) is expected


def test_negate_inverts_present_paths_only() -> None:
    assert cond("type", "equals", "other", negate=True).matches(REQ)
    assert not cond("type", "equals", "feasibility", negate=True).matches(REQ)
    assert not cond("query", "contains", "market", negate=True).matches(REQ)
    # a missing path never matches ...
    for operator, value in [("equals", 1), ("contains", "x"), ("regex", "x"), ("gt", 1)]:
        assert not cond("nope.deeper", operator, value, negate=True).matches(REQ)
    # ... except "exists" negated, which means "is absent"
    assert cond("nope.deeper", "exists", negate=True).matches(REQ)
    assert not cond("meta.type", "exists", negate=True).matches(REQ)


def test_custom_matcher_errors_do_not_raise() -> None:
    def boom(_: Any) -> bool:
        raise RuntimeError("bad matcher")

    assert not cond("type", "custom", matcher=boom).matches(REQ)
    assert not cond("nope", "custom", matcher=lambda v: True).matches(REQ)


def test_gt_lt_never_raise_on_odd_values() -> None:
    odd = {"a": "ten", "b": None, "c": [1], "d": True}
    for field in odd:
        assert not cond(field, "gt", 0).matches(odd)
        assert not cond(field, "lt", 100).matches(odd)


def test_misconfigured_conditions_fail_at_build_time() -> None:
    with pytest.raises(ValidationError, match="matcher"):
        cond("x", "custom")
    with pytest.raises(ValidationError, match="invalid regex"):
        cond("x", "regex", "(")
    with pytest.raises(ValidationError, match="numeric"):
        cond("x", "gt", "5")
    with pytest.raises(ValidationError):
        cond("x", "startswith", "a")


def test_rule_with_no_conditions_always_matches() -> None:
    assert rule("any", "alpha").matches({})


# -- priorities and rule management -------------------------------------------------------------

async def test_higher_priority_wins_and_ties_keep_insertion_order() -> None:
    planner = RuleBasedPlanner([
        rule("low", "alpha", priority=1),
        rule("tie-first", "beta", priority=5),
        rule("tie-second", "gamma", priority=5),
    ])
    assert [r.name for r in planner.rules] == ["tie-first", "tie-second", "low"]
    decision = await planner.plan({}, ALL, PlanRequest())
    assert decision.selected_tool == "beta"
    assert decision.metadata["rule"] == "tie-first"
    assert decision.confidence == 1.0
    assert "rule 'tie-first' matched; selected beta" in decision.reasoning


async def test_add_and_remove_rule() -> None:
    planner = RuleBasedPlanner(default_tool="gamma")
    planner.add_rule(type_based_rule("market", "beta", field="meta.type"))
    with pytest.raises(ValueError, match="already exists"):
        planner.add_rule(type_based_rule("market", "alpha", field="meta.type",
                                         name="type:meta.type=market->beta"))
    assert (await planner.plan(REQ, ALL, PlanRequest())).selected_tool == "beta"
    assert planner.remove_rule("type:meta.type=market->beta") is True
    assert planner.remove_rule("type:meta.type=market->beta") is False
    assert (await planner.plan(REQ, ALL, PlanRequest())).selected_tool == "gamma"


async def test_non_matching_rules_are_ignored() -> None:
    planner = RuleBasedPlanner([
        rule("high", "alpha", cond("type", "equals", "other"), priority=10),
        rule("low", "beta", cond("type", "equals", "feasibility")),
    ])
    assert (await planner.plan(REQ, ALL, PlanRequest())).selected_tool == "beta"


# -- availability and fallbacks -----------------------------------------------------------------

@pytest.mark.parametrize(
    ("states", "reason"),
    [
        ({"alpha": "open"}, "circuit breaker open for tool 'alpha'"),
        ({"openai": "open"}, "circuit breaker open for provider 'openai'"),
        ({"openai": "OPEN"}, "circuit breaker open for provider 'openai'"),
    ],
)
async def test_fallback_when_breaker_open(states: dict[str, str], reason: str) -> None:
    planner = RuleBasedPlanner([
        rule("r", "alpha", fallbacks=["ghost", "beta", "alpha", "gamma"]),
    ])
    decision = await planner.plan({}, ALL, PlanRequest(circuit_breaker_states=states))
    assert decision.selected_tool == "beta"
    assert decision.fallback_tools == ["gamma"]  # unknown dropped, selected and dupes excluded
    assert decision.confidence == 1.0
    assert decision.metadata["fell_back"] is True
    assert decision.metadata["requested_tool"] == "alpha"
    assert f"alpha ({reason})" in decision.reasoning
    assert "ghost (not registered)" in decision.reasoning
    assert "fell back to beta" in decision.reasoning


async def test_half_open_breaker_counts_as_available() -> None:
    planner = RuleBasedPlanner([rule("r", "alpha", fallbacks=["beta"])])
    context = PlanRequest(circuit_breaker_states={"openai": "half-open"})
    assert context.circuit_breaker_states == {"openai": "half_open"}
    decision = await planner.plan({}, ALL, context)
    assert decision.selected_tool == "alpha"
    assert decision.fallback_tools == ["beta"]


def test_unknown_breaker_state_is_rejected() -> None:
    with pytest.raises(ValidationError, match="closed, open, half_open"):
        PlanRequest(circuit_breaker_states={"openai": "broken"})


async def test_previous_failures_are_skipped() -> None:
    planner = RuleBasedPlanner([rule("r", "alpha", fallbacks=["beta", "gamma"])])
    decision = await planner.plan({}, ALL, PlanRequest(previous_failures=["alpha", "beta"]))
    assert decision.selected_tool == "gamma"
    assert decision.fallback_tools == []
    assert "already failed in this run" in decision.reasoning


async def test_rule_with_no_usable_tool_passes_to_next_rule() -> None:
    planner = RuleBasedPlanner([
        rule("first", "alpha", priority=2, fallbacks=["bundle"]),
        rule("second", "beta", priority=1),
    ])
    decision = await planner.plan({}, ALL, PlanRequest(circuit_breaker_states={"openai": "open"}))
    assert decision.selected_tool == "beta"
    assert decision.metadata["skipped_rules"][0]["rule"] == "first"
    assert decision.reasoning.startswith("rule 'first' matched but skipped")


# -- default choice -----------------------------------------------------------------------------

async def test_default_choice_is_alphabetical_and_explained() -> None:
    planner = RuleBasedPlanner([rule("never", "beta", cond("type", "equals", "x"))])
    shuffled = tools(GAMMA, BUNDLE, BETA, ALPHA)
    for available in (ALL, shuffled):
        decision = await planner.plan({}, available, PlanRequest())
        assert decision.selected_tool == "alpha"
        assert "no rule matched; chose alpha by default" in decision.reasoning
        assert decision.confidence == 0.5
        assert decision.fallback_tools == []
        assert decision.metadata["rule"] is None
    context = PlanRequest(circuit_breaker_states={"alpha": "open"}, previous_failures=["beta"])
    decision = await planner.plan({}, ALL, context)
    assert decision.selected_tool == "bundle"
    assert decision.execution_strategy == "bundle"


async def test_default_tool_is_preferred_when_available() -> None:
    planner = RuleBasedPlanner(default_tool="gamma")
    decision = await planner.plan({}, ALL, PlanRequest())
    assert decision.selected_tool == "gamma"
    assert "no rule matched; chose gamma by default (configured default_tool)" in (
        decision.reasoning
    )
    decision = await planner.plan({}, ALL, PlanRequest(previous_failures=["gamma"]))
    assert decision.selected_tool == "alpha"
    assert "default_tool gamma is unavailable (already failed in this run)" in (
        decision.reasoning
    )


async def test_no_tools_raises_planning_error() -> None:
    with pytest.raises(PlanningError, match=r"no tools registered; register one with "
                       r"SteerLLMClient\(\)\.register_tool"):
        await RuleBasedPlanner().plan({}, {}, PlanRequest())


async def test_all_unavailable_raises_naming_each() -> None:
    context = PlanRequest(
        circuit_breaker_states={"openai": "open", "beta": "open"}, previous_failures=["gamma"]
    )
    with pytest.raises(PlanningError) as info:
        await RuleBasedPlanner([rule("r", "alpha")]).plan({}, ALL, context)
    message = str(info.value)
    assert "'alpha' (circuit breaker open for provider 'openai')" in message
    assert "'bundle' (circuit breaker open for provider 'openai')" in message
    assert "'beta' (circuit breaker open for tool 'beta')" in message
    assert "'gamma' (already failed in this run)" in message
    assert set(info.value.unavailable) == {"alpha", "beta", "gamma", "bundle"}
    assert info.value.code == "planning_error"


# -- estimates ----------------------------------------------------------------------------------

async def test_estimates_scale_with_k_for_bundles() -> None:
    planner = RuleBasedPlanner([rule("b", "bundle", options={"k": 12})])
    decision = await planner.plan({}, ALL, PlanRequest())
    assert decision.execution_strategy == "bundle"
    assert decision.estimated_cost == pytest.approx(0.24)
    assert decision.estimated_duration_ms == 2000  # two waves of max_parallel=10
    decision = await planner.plan({}, ALL, PlanRequest(user_preferences={"max_parallel": 4}))
    assert decision.estimated_duration_ms == 3000


async def test_estimates_without_k_and_for_single_tools() -> None:
    decision = await RuleBasedPlanner([rule("b", "bundle")]).plan({}, ALL, PlanRequest())
    assert decision.estimated_cost == 0.02
    assert "per_replicate" in decision.metadata["estimate_basis"]
    decision = await RuleBasedPlanner([rule("a", "alpha", options={"k": 5})]).plan(
        {}, ALL, PlanRequest()
    )
    assert (decision.execution_strategy, decision.estimated_cost) == ("single", 0.01)
    assert decision.estimated_duration_ms == 100


async def test_over_budget_estimate_is_flagged() -> None:
    planner = RuleBasedPlanner([rule("b", "bundle", options={"k": 10})])
    decision = await planner.plan({}, ALL, PlanRequest(budget={"cost_usd": 0.1}))
    assert "exceeds budget cost_usd" in decision.metadata["budget_warning"]


def test_decision_is_json_serialisable() -> None:
    decision = PlanDecision(selected_tool="a", confidence=1.0, reasoning="r")
    assert PlanDecision.model_validate_json(decision.model_dump_json()) == decision
    with pytest.raises(ValidationError):
        PlanDecision(selected_tool="a", confidence=1.5, reasoning="r")


# -- helpers ------------------------------------------------------------------------------------

async def test_type_and_keyword_rules() -> None:
    planner = RuleBasedPlanner([
        keyword_rule(["market size", "C++"], "beta"),
        type_based_rule("feasibility", "gamma"),
    ])
    assert (await planner.plan(REQ, ALL, PlanRequest())).selected_tool == "gamma"
    assert (await planner.plan({"query": "Estimate MARKET SIZE now"}, ALL,
                               PlanRequest())).selected_tool == "beta"
    assert (await planner.plan({"query": "is c++ fast?"}, ALL, PlanRequest())
            ).selected_tool == "beta"
    kw = keyword_rule(["cost"], "beta")
    assert kw.matches({"query": "The COST, please"})
    assert not kw.matches({"query": "a costume party"})
    assert not kw.matches({"query": ["cost"]})
    assert not kw.matches({})
    with pytest.raises(ValueError, match="non-empty keyword"):
        keyword_rule(["", "  "], "beta")


def budget_context(**budget: float) -> PlanRequest:
    return PlanRequest(budget=budget or None)


async def test_budget_aware_lowers_k_to_fit_cost() -> None:
    planner = RuleBasedPlanner([budget_aware_rule("bundle", 0.02, options={"k": 5})])
    decision = await planner.plan({}, ALL, budget_context(cost_usd=0.05))
    assert decision.tool_options == {"k": 2}
    assert decision.estimated_cost == pytest.approx(0.04)
    decision = await planner.plan({}, ALL, budget_context(cost_usd=1.0))
    assert decision.tool_options == {"k": 5}
    decision = await planner.plan({}, ALL, budget_context(cost_usd=0.06))
    assert decision.tool_options == {"k": 3}  # float division must not lose a replicate


def test_budget_aware_k_bounds() -> None:
    transform = budget_aware_rule("bundle", 0.02, min_k=2, max_k=8).action.build_options
    assert transform({}, budget_context(cost_usd=0.01))["k"] == 2  # never below min_k
    assert transform({}, budget_context())["k"] == 8  # no budget: max_k
    assert transform({}, budget_context(cost_usd=100))["k"] == 8
    prefs = PlanRequest(budget={"cost_usd": 1.0}, user_preferences={"k": 20})
    assert transform({}, prefs)["k"] == 8  # capped at max_k
    prefs = PlanRequest(budget={"cost_usd": 1.0}, user_preferences={"k": 3})
    assert transform({}, prefs)["k"] == 3  # caller's k kept when it fits
    prefs = PlanRequest(budget={"cost_usd": 0.001}, user_preferences={"k": 1})
    assert transform({}, prefs)["k"] == 1  # never raised above the caller's k
    with pytest.raises(ValueError):
        budget_aware_rule("bundle", 0)
    with pytest.raises(ValueError):
        budget_aware_rule("bundle", 0.02, min_k=5, max_k=3)


def test_budget_aware_respects_tokens() -> None:
    with_tokens = budget_aware_rule("bundle", 0.02, tokens_per_replicate=1000).action
    assert with_tokens.build_options({}, budget_context(tokens=3500))["k"] == 3
    assert with_tokens.build_options({}, budget_context(tokens=3500, cost_usd=0.05))["k"] == 2
    assert with_tokens.build_options({}, budget_context(tokens=500))["k"] == 2
    without = budget_aware_rule("bundle", 0.02, max_k=6).action
    assert without.build_options({}, budget_context(tokens=10))["k"] == 6  # tokens ignored


async def test_transformer_does_not_mutate_inputs() -> None:
    budget_rule = budget_aware_rule("bundle", 0.02, options={"k": 5, "nested": {"a": 1}})
    options = {"k": 5, "nested": {"a": 1}}
    request = {"query": "x", "meta": {"k": 9}}
    snapshot = copy.deepcopy(request)
    transform = budget_rule.action.transform
    assert transform is not None
    result = transform(options, request, budget_context(cost_usd=0.05))
    assert result == {"k": 2, "nested": {"a": 1}}
    assert options == {"k": 5, "nested": {"a": 1}}
    assert request == snapshot

    planner = RuleBasedPlanner([budget_rule])
    await planner.plan(request, ALL, budget_context(cost_usd=0.05))
    assert budget_rule.action.options == {"k": 5, "nested": {"a": 1}}
    assert request == snapshot


async def test_careless_transformer_cannot_change_the_rule() -> None:
    def careless(options: dict, request: dict, context: PlanRequest) -> dict:
        options["k"] = 1
        return options

    action_rule = rule("r", "bundle", options={"k": 5}, transform=careless)
    decision = await RuleBasedPlanner([action_rule]).plan({}, ALL, PlanRequest())
    assert decision.tool_options == {"k": 1}
    assert action_rule.action.options == {"k": 5}


async def test_failing_transformer_raises_planning_error() -> None:
    def broken(options: dict, request: dict, context: PlanRequest) -> dict:
        raise KeyError("k")

    with pytest.raises(PlanningError, match="rule 'r': options transformer failed"):
        await RuleBasedPlanner([rule("r", "bundle", transform=broken)]).plan(
            {}, ALL, PlanRequest()
        )


def test_planner_is_abstract() -> None:
    with pytest.raises(TypeError):
        Planner()  # type: ignore[abstract]
