"""The tool contract (Tool, BundleTool), the registry, and Evidence Bundle models.

``LLMBundleTool`` (the built-in prompt bundle tool) loads on first access: it pulls in the
openai client, which plain tools and the planner do not need.
"""

from typing import Any

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
from steer_tools.resolve import tool_factory

__all__ = [
    "Tool", "ToolContext", "ToolResult", "BundleTool", "BundleOptions", "ReplicateContext",
    "ReplicateOutput", "ToolRegistry", "get_global_registry", "EvidenceBundle", "BundleMetadata",
    "BundleSummary", "BundleLimits", "Disagreement", "Replicate", "ReplicateQuality", "Usage",
    "LLMBundleTool",
    "tool_factory",
]


def __getattr__(name: str) -> Any:
    if name == "LLMBundleTool":
        from steer_tools.llm_bundle import LLMBundleTool

        return LLMBundleTool
    raise AttributeError(f"module 'steer_tools' has no attribute {name!r}")
