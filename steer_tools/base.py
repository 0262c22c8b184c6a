"""The tool contract: what a host application implements to plug analyses into the engine."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any

from pydantic import BaseModel, Field

from steer_llm_sdk.config import CircuitBreakerConfig
from steer_llm_sdk.validation import check_json, check_option_names, current_limits
from steer_tools.evidence import EvidenceBundle, Usage


class ToolResult(BaseModel):
    """What a plain tool returns; a bare dict/str from ``execute`` becomes ``content``."""

    content: Any = None
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    cost_breakdown: dict[str, float] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


def as_tool_result(raw: Any) -> ToolResult:
    """What ``Tool.execute`` returned, as a ToolResult. A plain tool may return an
    ``EvidenceBundle`` (0.3.2 tools did): its usage, cost and bundle facts then reach the
    output as they do for a BundleTool (``metadata.bundle_meta``, ``confidence``)."""
    if isinstance(raw, ToolResult):
        return raw
    if isinstance(raw, EvidenceBundle):
        return ToolResult(
            content=raw.model_dump(mode="json"), usage=raw.usage_total,
            cost_usd=raw.cost_total_usd, cost_breakdown=dict(raw.cost_breakdown),
            metadata={"bundle_meta": raw.meta.model_dump(mode="json"),
                      "confidence": raw.summary.confidence,
                      "replicate_count": len(raw.replicates)},
        )
    return ToolResult(content=raw)


class ToolContext(BaseModel):
    """Run facts a tool may use (IDs for headers and logs, determinism, deadlines)."""

    tool_name: str
    trace_id: str
    request_id: str
    deterministic: bool = False
    deadline_monotonic: float | None = None
    attempt: int = 1
    breaker_config: CircuitBreakerConfig | None = Field(
        None, description="The provider breaker's config for this run; enabled=False disables"
    )
    metadata: dict[str, Any] = Field(default_factory=dict)


class Tool(ABC):
    """A named, versioned analysis. Subclass and implement ``execute``.

    ``provider`` names the circuit breaker that guards the tool's calls (e.g. "openai"), so
    the planner can route around a tool whose provider is failing. ``default_options`` are
    merged under the planner's options when the planner picks this tool; ``capabilities``
    are free-form labels planners may read.
    """

    name: str = ""
    version: str = "1.0.0"
    description: str = ""
    provider: str | None = None
    estimated_cost_usd: float | None = None
    estimated_duration_ms: float | None = None
    default_options: dict[str, Any] | None = None
    capabilities: tuple[str, ...] | list[str] = ()
    # Option names this tool accepts; None = any JSON options (the tool checks them itself).
    option_names: frozenset[str] | None = None

    def check_options(self, options: dict[str, Any]) -> None:
        """Raise InputError naming an unknown or invalid option, before any run exists."""
        limits = current_limits()
        check_json("tool_options", options, max_bytes=limits.request_bytes,
                   max_depth=limits.request_depth)
        if self.option_names is not None:
            check_option_names("tool_options", options, self.option_names | {"fallback_tools"})

    def check_contract(self) -> None:
        """Tool-author mistakes, caught by register_tool with the fix in the message."""
        if not inspect.iscoroutinefunction(self.execute):
            raise TypeError(f"{type(self).__name__}.execute must be a coroutine function: "
                            "declare it `async def execute(self, request, options, "
                            "event_sink=None)`")

    def validate_request(self, request: dict[str, Any]) -> None:
        """Raise ValueError naming the field and the fix; the default accepts any dict."""
        if not isinstance(request, dict):
            raise ValueError(f"request must be a dict, got {type(request).__name__}")

    @abstractmethod
    async def execute(
        self, request: dict[str, Any], options: dict[str, Any] | None = None,
        event_manager: Any = None,
    ) -> ToolResult | dict[str, Any] | str:
        """Run the analysis once. Raise to fail; the engine classifies and may retry.

        ``event_manager`` receives the run's event emitter. Declare an extra
        ``context: ToolContext | None = None`` parameter to receive the run facts (IDs,
        deadline, attempt, breaker config); providers called without an explicit breaker
        config use the run's anyway.
        """

    def metadata(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "provider": self.provider,
            "is_bundle": False,
            "estimated_cost_usd": self.estimated_cost_usd,
            "estimated_duration_ms": self.estimated_duration_ms,
            # BundleTool.default_options() is a method (its BundleOptions); only a dict counts
            "default_options": dict(opts) if isinstance(opts := self.default_options, dict)
            else {},
            "capabilities": list(self.capabilities),
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}@{self.version}>"
