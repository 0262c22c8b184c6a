"""Public orchestration API (the import paths of the Steer LLM SDK 0.3.2 release notes).

``__all__`` is the API; tests/unit/test_exported_members.py pins it.
"""

from steer_llm_sdk.orchestration._shadowing import check_top_level_packages

check_top_level_packages()

# ruff: noqa: E402
from steer_llm_sdk.config import (
    CircuitBreakerConfig,
    OrchestrationConfig,
    ReliabilityConfig,
    RetryPolicy,
)
from steer_llm_sdk.errors import (
    BudgetExceeded,
    CircuitOpenError,
    ConflictError,
    ErrorCategory,
    FallbackExhausted,
    OrchestratorError,
    PlanningError,
    ProviderError,
    ToolExecutionError,
    ToolResolutionError,
)
from steer_llm_sdk.events import OrchestrationEvent
from steer_llm_sdk.orchestration.orchestrator import BaseOrchestrator, Orchestrator
from steer_llm_sdk.orchestration.reliable import ReliableOrchestrator
from steer_llm_sdk.output import OrchestrationOutput
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
from steer_llm_sdk.reliability.retry import AdvancedRetryManager
from steer_tools.base import Tool, ToolContext, ToolResult
from steer_tools.bundle import BundleOptions, BundleTool, ReplicateContext, ReplicateOutput
from steer_tools.evidence import (
    BundleLimits,
    BundleMetadata,
    BundleSummary,
    Disagreement,
    EvidenceBundle,
    Replicate,
    ReplicateQuality,
    Usage,
)
from steer_tools.registry import ToolRegistry, get_global_registry

__all__ = [
    # orchestrators
    "BaseOrchestrator",
    "Orchestrator",
    "ReliableOrchestrator",
    # configuration and output
    "OrchestrationConfig",
    "OrchestrationOutput",
    "OrchestrationEvent",
    "ReliabilityConfig",
    "RetryPolicy",
    "CircuitBreakerConfig",
    "AdvancedRetryManager",
    # tools
    "Tool",
    "ToolContext",
    "ToolResult",
    "BundleTool",
    "BundleOptions",
    "ReplicateContext",
    "ReplicateOutput",
    "ToolRegistry",
    "get_global_registry",
    # evidence bundles
    "EvidenceBundle",
    "BundleMetadata",
    "BundleSummary",
    "BundleLimits",
    "Disagreement",
    "Replicate",
    "ReplicateQuality",
    "Usage",
    # planning
    "Planner",
    "RuleBasedPlanner",
    "PlanningRule",
    "RuleCondition",
    "RuleAction",
    "PlanRequest",
    "PlanDecision",
    "ExecutionStrategy",
    "ToolMetadata",
    # errors
    "OrchestratorError",
    "ToolExecutionError",
    "BudgetExceeded",
    "ConflictError",
    "ToolResolutionError",
    "PlanningError",
    "ProviderError",
    "CircuitOpenError",
    "FallbackExhausted",
    "ErrorCategory",
]
