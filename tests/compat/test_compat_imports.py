"""0.3.2 import paths (release notes: "Renamed Files", "Breaking Changes") resolve to the real
classes; the renamed-away names stay absent, as the release notes promise (no shims)."""

from __future__ import annotations

import importlib

import pytest

OLD_NAMES = ["EnhancedOrchestrator", "OrchestratorOptions", "OrchestratorResult",
             "PlanningContext", "PlanningResult", "BundleMeta", "EnhancedRetryManager"]


def test_reliable_orchestrator_module_path_is_the_same_class():
    from steer_llm_sdk.orchestration import ReliableOrchestrator
    from steer_llm_sdk.orchestration.reliable_orchestrator import (
        ReliableOrchestrator as ViaOldPath,
    )

    assert ViaOldPath is ReliableOrchestrator


def test_planning_module_paths_re_export_the_planner():
    import steer_llm_sdk.planner as planner

    from steer_llm_sdk.orchestration import planning
    from steer_llm_sdk.orchestration.planning import rule_based

    for name in ["Planner", "PlanRequest", "PlanDecision", "ToolMetadata", "RuleBasedPlanner",
                 "PlanningRule", "RuleCondition", "RuleAction", "ExecutionStrategy"]:
        assert getattr(planning, name) is getattr(planner, name), name
    for name in ["create_type_based_rule", "create_keyword_based_rule",
                 "create_budget_aware_rule", "RuleBasedPlanner"]:
        assert getattr(rule_based, name) is getattr(planner, name), name


def test_reliability_package_exports_the_0_3_2_names():
    from steer_llm_sdk import config, errors
    from steer_llm_sdk.providers.base import ProviderError
    from steer_llm_sdk.reliability import (
        AdvancedRetryManager,
        CircuitBreakerConfig,
        ErrorCategory,
        RetryPolicy,
        RetryState,
    )
    from steer_llm_sdk.reliability.error_classifier import ErrorClassification, ErrorClassifier

    assert (RetryPolicy, CircuitBreakerConfig) == (config.RetryPolicy, config.CircuitBreakerConfig)
    assert (ErrorCategory, ProviderError) == (errors.ErrorCategory, errors.ProviderError)
    assert AdvancedRetryManager and RetryState and ErrorClassifier and ErrorClassification


def test_llm_bundle_tool_is_exported_from_steer_tools():
    import steer_tools
    from steer_tools.llm_bundle import LLMBundleTool

    assert steer_tools.LLMBundleTool is LLMBundleTool
    assert "LLMBundleTool" in steer_tools.__all__


@pytest.mark.parametrize("name", OLD_NAMES)
def test_renamed_classes_have_no_shims(name):
    import steer_llm_sdk.planner as planner

    import steer_llm_sdk.orchestration as orchestration
    import steer_llm_sdk.reliability as reliability
    import steer_tools

    for module in (orchestration, planner, reliability, steer_tools):
        assert not hasattr(module, name), f"{module.__name__}.{name}"


def test_orchestrator_v2_module_stays_absent():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("steer_llm_sdk.orchestration.orchestrator_v2")
