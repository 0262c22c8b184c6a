"""Data the planner reads and writes (Steer LLM SDK 0.3.2, "Planning & Reliability").

The planner is plain Python so it can be unit-tested without Prefect; a Prefect task wraps it
elsewhere. These models are what crosses that boundary, so they are pydantic v2 and
JSON-serialisable: a ``PlanDecision`` can be logged, stored as a task result, or shown in the UI.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

BREAKER_STATES = ("closed", "open", "half_open")


class ToolMetadata(BaseModel):
    """What the planner knows about a registered tool without running it.

    ``provider`` links the tool to the circuit breaker that guards it, so an open breaker for
    e.g. ``"openai"`` takes every OpenAI-backed tool out of the running at once.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    version: str = "1.0.0"
    description: str = ""
    provider: str | None = Field(
        None, description="Provider whose circuit breaker guards this tool, e.g. 'openai'."
    )
    is_bundle: bool = Field(False, description="Runs k replicates and aggregates them.")
    estimated_cost_usd: float | None = Field(
        None, ge=0, description="Per run, or per replicate for bundle tools."
    )
    estimated_duration_ms: float | None = Field(
        None, ge=0, description="Per run, or per replicate for bundle tools."
    )
    capabilities: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)


class PlanRequest(BaseModel):
    """The run's situation: what it may spend and what has already gone wrong.

    The request payload itself is passed separately (rules match on it); this is the context
    that decides whether a tool the rules want can actually be used right now.
    """

    model_config = ConfigDict(extra="forbid")

    budget: dict[str, float] | None = Field(
        None, description="Same keys as OrchestrationConfig.budget: tokens, cost_usd, ms."
    )
    quality_requirements: dict[str, float] = Field(default_factory=dict)
    previous_failures: list[str] = Field(
        default_factory=list, description="Tool names that already failed in this run."
    )
    circuit_breaker_states: dict[str, str] = Field(
        default_factory=dict,
        description="Provider name or tool name -> 'closed' | 'open' | 'half_open'.",
    )
    user_preferences: dict[str, Any] = Field(default_factory=dict)

    @field_validator("circuit_breaker_states")
    @classmethod
    def _normalise_states(cls, value: dict[str, str]) -> dict[str, str]:
        # pybreaker reports "half-open" and some callers upper-case enum names; normalise so a
        # breaker that is open is never missed because of spelling.
        normalised: dict[str, str] = {}
        for key, state in value.items():
            canonical = str(state).strip().lower().replace("-", "_")
            if canonical not in BREAKER_STATES:
                raise ValueError(
                    f"circuit_breaker_states[{key!r}] is {state!r}; "
                    f"use one of {', '.join(BREAKER_STATES)}"
                )
            normalised[key] = canonical
        return normalised


class PlanDecision(BaseModel):
    """Which tool to run, with what options, and what to try if it fails.

    ``reasoning`` is for humans (logs, UI); ``metadata`` carries the same facts structured
    (matched rule, skipped tools and why) for code.
    """

    model_config = ConfigDict(extra="forbid")

    selected_tool: str
    tool_options: dict[str, Any] = Field(default_factory=dict)
    fallback_tools: list[str] = Field(default_factory=list)
    execution_strategy: Literal["single", "bundle"] = "single"
    estimated_cost: float | None = None
    estimated_duration_ms: float | None = None
    confidence: float = Field(..., ge=0.0, le=1.0)
    reasoning: str
    metadata: dict[str, Any] = Field(default_factory=dict)
