"""A plain (non-bundle) tool as one Prefect task run, retried by Prefect."""

from __future__ import annotations

import inspect
import time
from typing import Any

from prefect import task
from prefect.cache_policies import NONE
from steer_llm_sdk.tasks.runtime import get_session

from steer_llm_sdk.reliability.run_context import use_breaker_config
from steer_tools.base import Tool, ToolContext, ToolResult, as_tool_result


@task(name="run-tool", task_run_name="tool-{tool_name}", cache_policy=NONE, persist_result=False)
async def run_tool(
    session_id: str, tool_name: str, request: dict[str, Any], options: dict[str, Any]
) -> tuple[ToolResult, float]:
    session = get_session(session_id)
    if session is None:
        raise RuntimeError(f"run session {session_id!r} is gone; was the flow run re-run?")
    tool = session.tools[tool_name]
    context = _tool_context(session, tool, tool_name)
    kwargs = {"context": context} if _accepts_context(tool) else {}
    started = time.perf_counter()
    with use_breaker_config(context.breaker_config):  # reaches providers the tool calls
        raw = await tool.execute(request, options, session.emitter, **kwargs)
    elapsed_ms = (time.perf_counter() - started) * 1000
    return as_tool_result(raw), elapsed_ms


def _tool_context(session: Any, tool: Tool, tool_name: str) -> ToolContext:
    """The run facts for this attempt; ``breaker_config`` is the run's ReliabilityConfig entry
    for the tool's provider (its default when the tool names none)."""
    from prefect.context import TaskRunContext

    task_ctx = TaskRunContext.get()
    attempt = task_ctx.task_run.run_count if task_ctx is not None else 1
    emitter = session.emitter
    return ToolContext(
        tool_name=tool_name, trace_id=emitter.trace_id, request_id=emitter.request_id,
        deadline_monotonic=session.deadline, attempt=max(1, attempt),
        breaker_config=session.breaker_config_for(tool.provider or ""),
    )


def _accepts_context(tool: Tool) -> bool:
    """Tools may declare ``execute(..., context=None)`` to receive the ToolContext; 0.3.2
    tools do not, and keep working unchanged."""
    try:
        return "context" in inspect.signature(tool.execute).parameters
    except (TypeError, ValueError):
        return False
