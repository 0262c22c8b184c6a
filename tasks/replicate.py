"""One replicate of a bundle tool as one Prefect task run (retried by Prefect).

The seed and replicate id are task inputs and caching is off, so replicates are never served
from another replicate's result (Prefect's default INPUTS+RUN_ID cache would do exactly that).
"""

from __future__ import annotations

import time
from typing import Any

from prefect import task
from prefect.cache_policies import NONE
from prefect.context import TaskRunContext
from steer_llm_sdk.tasks.eager import replicate_context, take_eager_call
from steer_llm_sdk.tasks.runtime import get_session

from steer_llm_sdk.providers.ledger import use_ledger
from steer_llm_sdk.reliability.breaker_state import retry_pending
from steer_tools.bundle import BundleTool, ReplicateOutput
from steer_tools.evidence import Replicate


def _attempt() -> int:
    ctx = TaskRunContext.get()
    return ctx.task_run.run_count if ctx and ctx.task_run else 1


def _retries() -> int:
    ctx = TaskRunContext.get()
    return int(getattr(ctx.task, "retries", 0) or 0) if ctx else 0


@task(
    name="replicate",
    task_run_name="replicate-{replicate_id}",
    cache_policy=NONE,
    persist_result=False,
)
async def run_replicate(
    session_id: str,
    tool_name: str,
    request: dict[str, Any],
    seed: int,
    replicate_id: str,
    options: dict[str, Any],
) -> Replicate:
    session = get_session(session_id)
    if session is None:
        raise RuntimeError(f"run session {session_id!r} is gone; was the flow run re-run?")
    tool: BundleTool = session.tools[tool_name]
    bundle_options = tool.parse_options(options)
    attempt = _attempt()
    emitter = session.emitter
    await emitter.emit("replicate_started", tool_name=tool_name, replicate_id=replicate_id,
                       seed=seed, attempt=attempt)
    # the first attempt may already be in flight (tasks/eager.py); retries always call again
    eager = take_eager_call(session, tool_name, replicate_id, seed, request, options) \
        if attempt == 1 else None
    if eager is not None:
        raw, finished = await eager.task
        elapsed_ms = (finished - eager.started) * 1000
    else:
        context = replicate_context(session, tool, replicate_id, seed, options, attempt)
        started = time.perf_counter()
        # breakers count a failure only when no retry is left for it (breaker_state)
        with retry_pending(attempt <= _retries()), use_ledger(session.ledger):
            raw = await tool.run_replicate(request, seed, context)
        elapsed_ms = (time.perf_counter() - started) * 1000
    return to_replicate(tool, replicate_id, seed, raw, elapsed_ms, bundle_options)


def to_replicate(tool: BundleTool, replicate_id: str, seed: int, raw: Any, elapsed_ms: float,
                 bundle_options: Any) -> Replicate:
    """What ``run_replicate`` returned -> a validated Replicate (also used for eager answers
    handed back by a stopped run)."""
    output = raw if isinstance(raw, ReplicateOutput) else ReplicateOutput(data=raw)
    quality = output.quality or tool.validate_replicate(output.data, bundle_options)
    return Replicate(
        id=replicate_id, data=output.data, quality=quality, usage=output.usage,
        cost_usd=output.cost_usd, elapsed_ms=round(elapsed_ms, 3),
        seed=seed, model=output.model,
    )
