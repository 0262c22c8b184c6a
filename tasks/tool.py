"""A plain (non-bundle) tool as one Prefect task run, retried by Prefect."""

from __future__ import annotations

import time
from typing import Any

from prefect import task
from prefect.cache_policies import NONE
from steer_llm_sdk.tasks.runtime import get_session

from steer_tools.base import ToolResult


@task(name="run-tool", task_run_name="tool-{tool_name}", cache_policy=NONE, persist_result=False)
async def run_tool(
    session_id: str, tool_name: str, request: dict[str, Any], options: dict[str, Any]
) -> tuple[ToolResult, float]:
    session = get_session(session_id)
    if session is None:
        raise RuntimeError(f"run session {session_id!r} is gone; was the flow run re-run?")
    tool = session.tools[tool_name]
    started = time.perf_counter()
    raw = await tool.execute(request, options, session.emitter)
    elapsed_ms = (time.perf_counter() - started) * 1000
    if isinstance(raw, ToolResult):
        return raw, elapsed_ms
    return ToolResult(content=raw), elapsed_ms
