"""The tool contract: what a host application implements to plug analyses into the engine."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any

from pydantic import BaseModel, Field

from steer_llm_sdk.config import CircuitBreakerConfig
from steer_llm_sdk.validation import check_json, check_option_names, current_limits
from steer_tools.evidence import Usage


class ToolResult(BaseModel):
    """What a plain tool returns; a bare dict/str from ``execute`` becomes ``content``."""

    content: Any = None
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    cost_breakdown: dict[str, float] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


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
    the planner can route around a tool whose provider is failing.
    """

    name: str = ""
    version: str = "1.0.0"
    description: str = ""
    provider: str | None = None
    estimated_cost_usd: float | None = None
    estimated_duration_ms: float | None = None
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
        self, request: dict[str, Any], options: dict[str, Any], event_sink: Any = None
    ) -> ToolResult | dict[str, Any] | str:
        """Run the analysis once. Raise to fail; the engine classifies and may retry."""

    def metadata(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "provider": self.provider,
            "is_bundle": False,
            "estimated_cost_usd": self.estimated_cost_usd,
            "estimated_duration_ms": self.estimated_duration_ms,
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}@{self.version}>"
