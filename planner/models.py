"""Data the planner reads and writes (Steer LLM SDK 0.3.2, "Planning & Reliability").

The planner is plain Python so it can be unit-tested without Prefect; a Prefect task wraps it
elsewhere. These models are what crosses that boundary, so they are pydantic v2 and
JSON-serialisable: a ``PlanDecision`` can be logged, stored as a task result, or shown in the UI.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

BREAKER_STATES = ("closed", "open", "half_open")


class ExecutionStrategy(StrEnum):
    """How the chosen tool runs. 0.3.2 also listed CHAIN / PARALLEL / CONDITIONAL as
    "future"; only the strategies the engine implements are offered here."""

    SINGLE = "single"
    BUNDLE = "bundle"


class ToolMetadata(BaseModel):
    """What the planner knows about a registered tool without running it.

    ``provider`` links the tool to the circuit breaker that guards it, so an open breaker for
    e.g. ``"openai"`` takes every OpenAI-backed tool out of the running at once.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    version: str = "1.0.0"
    description: str | None = ""
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
    supported_models: list[str] = Field(default_factory=list)
    default_options: dict[str, Any] = Field(
        default_factory=dict, description="Merged under the rule's options in a decision."
    )
    resource_requirements: dict[str, Any] = Field(
        default_factory=dict,
        description="0.3.2 form of the estimates: estimated_cost_per_run, estimated_duration_ms.",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_resource_requirements(cls, data: Any) -> Any:
        """0.3.2 metadata put estimates in ``resource_requirements`` and had no ``is_bundle``:
        a tool whose default options carry ``k`` runs replicates, so its estimates are per
        replicate (scaled by k), as 0.3.2 scaled them."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        needs = data.get("resource_requirements") or {}
        if data.get("estimated_cost_usd") is None and "estimated_cost_per_run" in needs:
            data["estimated_cost_usd"] = needs["estimated_cost_per_run"]
        if data.get("estimated_duration_ms") is None and "estimated_duration_ms" in needs:
            data["estimated_duration_ms"] = needs["estimated_duration_ms"]
        if "is_bundle" not in data and "k" in (data.get("default_options") or {}):
            data["is_bundle"] = True
        return data


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

    @field_validator("quality_requirements", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value  # 0.3.2 declared it Optional

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
    execution_strategy: ExecutionStrategy = ExecutionStrategy.SINGLE
    estimated_cost: float | None = None
    estimated_duration_ms: float | None = None
    confidence: float = Field(1.0, ge=0.0, le=1.0)
    reasoning: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
