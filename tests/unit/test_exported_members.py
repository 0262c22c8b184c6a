"""The public API is exactly ``steer_llm_sdk.orchestration.__all__``; this pins it."""

import steer_llm_sdk
import steer_llm_sdk.orchestration as orchestration

EXPECTED = {
    "BaseOrchestrator", "Orchestrator", "ReliableOrchestrator", "OrchestrationConfig",
    "OrchestrationOutput", "OrchestrationEvent", "ReliabilityConfig", "RetryPolicy",
    "CircuitBreakerConfig", "AdvancedRetryManager", "Tool", "ToolResult", "BundleTool",
    "BundleOptions", "ReplicateContext", "ReplicateOutput", "ToolRegistry", "get_global_registry",
    "EvidenceBundle", "BundleMetadata", "BundleSummary", "BundleLimits", "Disagreement",
    "Replicate", "ReplicateQuality", "Usage", "Planner", "RuleBasedPlanner", "PlanningRule",
    "RuleCondition", "RuleAction", "PlanRequest", "PlanDecision", "ToolMetadata",
    "OrchestratorError", "ToolExecutionError", "BudgetExceeded", "ConflictError",
    "ToolResolutionError", "PlanningError", "ProviderError", "CircuitOpenError",
    "FallbackExhausted", "ErrorCategory",
    # 0.3.2 compatibility: the tool's run facts (execute(..., context=)) and the strategy enum
    "ToolContext", "ExecutionStrategy",
}


def test_orchestration_exports_exactly_the_api():
    assert set(orchestration.__all__) == EXPECTED
    assert len(orchestration.__all__) == len(EXPECTED)  # no duplicates
    for name in EXPECTED:
        assert getattr(orchestration, name) is not None


def test_top_level_client():
    from steer_llm_sdk import SteerLLMClient

    assert steer_llm_sdk.__all__ == ["SteerLLMClient", "__version__"]
    assert SteerLLMClient.__module__ == "steer_llm_sdk.client"
