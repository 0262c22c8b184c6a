"""A tool the served e2e runs load by import path: the feasibility example with a slow model
(2 s per call at the simulator), so a time budget can stop a deployed run mid-bundle."""

from __future__ import annotations

import os

from steer_tools import tool_factory
from steer_tools.examples import feasibility_tool
from steer_tools.llm_bundle import LLMBundleTool


@tool_factory
def slow_feasibility() -> LLMBundleTool:
    os.environ["STEER_MODEL"] = "openai:gpt-4o-mini+latency=2"  # the served run's own process
    tool = feasibility_tool()
    tool.name = "slow-feasibility"
    return tool
