"""Example tools: the demo's feasibility analysis, importable by deployments and the CLI
(entry point ``feasibility`` or ``steer_tools.examples:feasibility_tool``)."""

from __future__ import annotations

import os

from pydantic import BaseModel, Field

from steer_tools.llm_bundle import LLMBundleTool
from steer_tools.resolve import tool_factory


class FeasibilityAnalysis(BaseModel):
    feasible: bool = Field(description="Can this be done with the stated resources?")
    score: int = Field(ge=0, le=10, description="0 = impossible, 10 = certain")
    risks: list[str] = Field(
        min_length=1, max_length=5, description="Main risks, most severe first"
    )


@tool_factory
def feasibility_tool() -> LLMBundleTool:
    """Model from STEER_MODEL (default openai:gpt-4o-mini); endpoint from OPENAI_BASE_URL."""
    return LLMBundleTool(
        name="feasibility",
        model=os.environ.get("STEER_MODEL", "openai:gpt-4o-mini"),
        system=("You are a pragmatic delivery lead. Judge feasibility soberly and name the "
                "concrete risks. Answer only with JSON matching the schema."),
        user_template="Assess the feasibility of this plan: {query}",
        output_schema=FeasibilityAnalysis,
        temperature=0.8,
        k=5,
        description="Feasibility analysis: feasible, 0-10 score, main risks",
    )
