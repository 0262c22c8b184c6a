"""The 0.3.2 planner API, as its tests use it: rules built with 0.3.2 names and helpers,
tool metadata in the 0.3.2 shape, and the PlanDecision fields those tests read."""

from __future__ import annotations

import pytest

from steer_llm_sdk.errors import PlanningError
from steer_llm_sdk.orchestration.planning import (
    ExecutionStrategy,
    PlanningRule,
    PlanRequest,
    RuleAction,
    RuleBasedPlanner,
    RuleCondition,
    ToolMetadata,
)
from steer_llm_sdk.orchestration.planning.rule_based import (
    create_budget_aware_rule,
    create_keyword_based_rule,
    create_type_based_rule,
)


def meta(name: str, cost: float, duration: float, **defaults) -> ToolMetadata:
    return ToolMetadata(name=name, version="1.0.0", description=None,
                        supported_models=["gpt-4o-mini"], default_options=defaults,
                        capabilities=["analysis"],
                        resource_requirements={"estimated_cost_per_run": cost,
                                               "estimated_duration_ms": duration})


@pytest.fixture
def tools() -> dict[str, ToolMetadata]:
    return {"survey": meta("survey", 0.04, 1500, k=3, epsilon=0.25),
            "lint": meta("lint", 0.01, 300),
            "audit": meta("audit", 0.3, 4000, k=6, epsilon=0.05)}


async def test_rule_action_takes_tool_name_and_tool_options(tools):
    rule = PlanningRule(name="r", conditions=[],
                        action=RuleAction(tool_name="audit", tool_options={"k": 8},
                                          fallback_tools=["survey"]))
    assert (rule.action.tool, rule.action.tool_name) == ("audit", "audit")
    decision = await RuleBasedPlanner([rule]).plan({}, tools)
    assert decision.selected_tool == "audit"
    assert decision.tool_options == {"k": 8, "epsilon": 0.05}  # rule over tool defaults
    assert decision.fallback_tools == ["survey"]


async def test_condition_positional_arguments_and_context_is_optional(tools):
    rule = PlanningRule(name="deep", priority=20, conditions=[
        RuleCondition("type", "equals", "analysis"),
        RuleCondition("metadata.level", "equals", "high"),
        RuleCondition("metadata.budget", "gt", 0.15),
    ], action=RuleAction(tool_name="audit"))
    planner = RuleBasedPlanner([rule])
    hit = await planner.plan({"type": "analysis", "metadata": {"level": "high",
                                                               "budget": 0.2}}, tools)
    assert hit.metadata["matched_rule"] == "deep" and hit.metadata["selection_method"] == "rule"
    miss = await planner.plan({"type": "analysis", "metadata": {"level": "high",
                                                                "budget": 0.1}}, tools)
    assert miss.metadata["selection_method"] == "default"


async def test_custom_matcher_with_exists(tools):
    def urgent(value):
        return "urgent" in [str(v).lower() for v in value]

    rule = PlanningRule(name="urgent", priority=100, action=RuleAction(
        tool_name="lint", tool_options={"timeout_ms": 900}), conditions=[
        RuleCondition("metadata.tags", "exists", None, custom_matcher=urgent)])
    planner = RuleBasedPlanner([rule])
    decision = await planner.plan({"metadata": {"tags": ["URGENT", "x"]}}, tools)
    assert (decision.selected_tool, decision.tool_options) == ("lint", {"timeout_ms": 900})
    calm = await planner.plan({"metadata": {"tags": ["later"]}}, tools)
    assert calm.metadata["selection_method"] == "default"  # exists, but the matcher says no


async def test_type_and_keyword_helpers_with_0_3_2_signatures(tools):
    planner = RuleBasedPlanner([
        create_keyword_based_rule(["thorough", "deep"], "query", "audit", priority=15),
        create_type_based_rule("analysis", "survey", priority=10),
        create_type_based_rule("check", "lint", 10, k=1),
    ])
    typed = await planner.plan({"type": "analysis", "query": "look at it"}, tools)
    assert typed.selected_tool == "survey" and typed.tool_options["k"] == 3  # tool default
    assert typed.metadata["matched_rule"] == "type_analysis_survey"
    keyword = await planner.plan({"type": "analysis", "query": "a Deep look"}, tools)
    assert keyword.selected_tool == "audit" and keyword.tool_options == {"k": 6,
                                                                         "epsilon": 0.05}
    assert keyword.metadata["matched_rule"] == "keywords_audit"
    option = await planner.plan({"type": "check"}, tools)
    assert option.tool_options == {"k": 1}  # helper keyword arguments are tool options


async def test_budget_aware_rule_reads_the_budget_where_0_3_2_put_it(tools):
    planner = RuleBasedPlanner([create_budget_aware_rule("survey", low_budget_k=2,
                                                         high_budget_k=5)])
    low = await planner.plan({"options": {"budget": {"tokens": 1999}}}, tools)
    high = await planner.plan({"options": {"budget": {"tokens": 2000}}}, tools)
    cheap = await planner.plan({"options": {"budget": {"cost_usd": 0.09}}}, tools)
    assert [d.tool_options["k"] for d in (low, high, cheap)] == [2, 5, 2]
    # the run's budget (PlanRequest.budget) counts too, and wins over the request's
    run = await planner.plan({"options": {"budget": {"tokens": 9000}}}, tools,
                             PlanRequest(budget={"tokens": 500}))
    assert run.tool_options["k"] == 2
    # a missing or malformed budget does not crash the plan (0.3.2 raised AttributeError)
    for request in ({}, {"options": None}, {"options": {"budget": None}}):
        assert (await planner.plan(request, tools)).tool_options["k"] == 5


async def test_plan_decision_estimates_scale_with_k(tools):
    rule = PlanningRule(name="four", action=RuleAction(tool_name="survey",
                                                       tool_options={"k": 4}))
    decision = await RuleBasedPlanner([rule]).plan({}, tools)
    assert decision.estimated_cost == pytest.approx(0.04 * 4)
    assert decision.estimated_duration_ms == 1500  # 4 <= max_parallel: one wave
    assert decision.execution_strategy == ExecutionStrategy.BUNDLE == "bundle"
    rule = PlanningRule(name="wide", action=RuleAction(tool_name="survey",
                                                       tool_options={"k": 12,
                                                                     "max_parallel": 5}))
    wide = await RuleBasedPlanner([rule]).plan({}, tools)
    assert wide.estimated_duration_ms == 1500 * 3  # ceil(12 / 5) waves


async def test_default_plan_fields(tools):
    rule = PlanningRule(name="never", conditions=[RuleCondition("nope", "equals", True)],
                        action=RuleAction(tool_name="audit"))
    decision = await RuleBasedPlanner([rule]).plan({}, tools)
    assert decision.selected_tool in tools and decision.confidence == 0.5
    assert decision.metadata["selection_method"] == "default"
    assert decision.tool_options == tools[decision.selected_tool].default_options


async def test_open_breaker_and_missing_primary_are_skipped(tools):
    planner = RuleBasedPlanner([
        create_type_based_rule("analysis", "audit", priority=20),
        create_type_based_rule("analysis", "survey", priority=10),
    ])
    context = PlanRequest(circuit_breaker_states={"audit": "open"}, budget={"cost_usd": 1.0})
    decision = await planner.plan({"type": "analysis"}, tools, context)
    assert decision.selected_tool == "survey" and "audit" not in decision.fallback_tools
    rule = PlanningRule(name="fb", action=RuleAction(tool_name="ghost",
                                                     fallback_tools=["audit", "survey"]))
    fell = await RuleBasedPlanner([rule]).plan({}, tools)
    assert fell.selected_tool == "audit" and fell.fallback_tools == ["survey"]


async def test_no_tools_is_a_value_error():
    with pytest.raises(ValueError, match="No tools available") as caught:
        await RuleBasedPlanner().plan({}, {})
    assert isinstance(caught.value, PlanningError)


async def test_rule_without_action_is_skipped(tools):
    planner = RuleBasedPlanner([PlanningRule(name="broken", conditions=[], action=None)])
    decision = await planner.plan({}, tools)
    assert decision.metadata["selection_method"] == "default"
    assert "rule 'broken' skipped: no action" in decision.reasoning
    assert "no rule matched; chose" in decision.reasoning  # not "no available tool"
