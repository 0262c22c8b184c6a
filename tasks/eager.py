"""The eager first wave: replicates that will certainly run first are sent to the provider as
soon as an in-process orchestration starts, while Prefect is still creating the flow run.

Creating a flow run costs several sequential API round trips (register the flow, create the
run, name it, set it Running) and each replicate task run a few milliseconds of engine CPU
before its request would go out; with the first wave already in flight that time overlaps the
provider's latency instead of adding to it. Each replicate is still its own Prefect task run:
its first attempt adopts the call started here (when everything matches), later attempts are
Prefect retries that call the provider again. Calls nobody adopted are cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from steer_llm_sdk.tasks.runtime import BudgetTracker

from steer_llm_sdk.config import OrchestrationConfig
from steer_llm_sdk.providers.ledger import use_ledger
from steer_llm_sdk.reliability.breaker_state import retry_pending
from steer_tools.bundle import BundleTool, ReplicateContext

logger = logging.getLogger("steer_llm_sdk.eager")


@dataclass(frozen=True)
class EagerCall:
    """A first attempt already in flight, and the inputs it was started with."""

    tool_name: str
    seed: int
    request: dict[str, Any]
    options: dict[str, Any]
    started: float  # time.perf_counter() when the call was sent
    task: asyncio.Task[tuple[Any, float]]  # (what run_replicate returned, when it returned)


def replicate_options(options: dict[str, Any], cfg: OrchestrationConfig) -> dict[str, Any]:
    """The options every replicate task run receives (one definition for both paths)."""
    return {**options, "_deterministic": cfg.deterministic}


def replicate_context(session: Any, tool: BundleTool, replicate_id: str, seed: int,
                      options: dict[str, Any], attempt: int) -> ReplicateContext:
    emitter = session.emitter
    return ReplicateContext(
        tool_name=tool.name, trace_id=emitter.trace_id, request_id=emitter.request_id,
        deterministic=bool(options.get("_deterministic", False)),
        deadline_monotonic=session.deadline, attempt=attempt, replicate_id=replicate_id,
        seed=seed, options=options, breaker_config=session.breaker_config_for(tool.provider),
    )


def first_wave(tool: BundleTool, options: dict[str, Any], cfg: OrchestrationConfig,
               budget_limits: dict[str, float]) -> list[tuple[str, int]]:
    """(replicate id, seed) of the replicates the scheduler starts before any result is in:
    the first two under early stop, else as many as max_parallel allows. None when a budget
    would stop the first replicate or the options are invalid (the flow reports that)."""
    try:
        parsed = tool.parse_options(options)
    except Exception:  # the flow raises the same validation error with its context
        return []
    # the check the scheduler makes before each replicate, with nothing spent yet
    budget = BudgetTracker(parsed.budget_limits(budget_limits), time.monotonic())
    if budget.first_exceeded(inclusive=True) is not None:
        return []
    count = 2 if parsed.stops_early else parsed.k
    seeds = parsed.resolved_seeds()
    return [(f"r{i + 1}", seeds[i])
            for i in range(min(count, parsed.parallelism(cfg.max_parallel)))]


def start_eager_replicates(session: Any, tool: BundleTool, request: dict[str, Any],
                           tool_options: dict[str, Any], cfg: OrchestrationConfig,
                           skip: frozenset[str] = frozenset()) -> None:
    """``skip``: replicates whose results are already stored (tasks/durable.py); their task
    runs are served from storage, so sending them would only spend tokens again."""
    options = replicate_options(
        {k: v for k, v in tool_options.items() if k != "fallback_tools"}, cfg)
    wave = [(rid, seed) for rid, seed in first_wave(tool, options, cfg, session.budget.limits)
            if rid not in skip]
    pending = session.task_options(cfg)["retries"] > 0  # attempt 1: a retry follows a failure
    for replicate_id, seed in wave:
        context = replicate_context(session, tool, replicate_id, seed, options, attempt=1)
        with retry_pending(pending), use_ledger(session.ledger):  # copied into the task
            task = asyncio.ensure_future(_timed(tool.run_replicate(request, seed, context)))
        task.add_done_callback(_retrieve)  # an unadopted failure is not "never retrieved"
        session.eager[replicate_id] = EagerCall(tool.name, seed, request, options,
                                                time.perf_counter(), task)
    if wave:
        session.eager_tool = tool
        logger.debug("eager first wave for %s: %s", tool.name, [r for r, _ in wave])


def take_eager_call(session: Any, tool_name: str, replicate_id: str, seed: int,
                    request: dict[str, Any], options: dict[str, Any]) -> EagerCall | None:
    """The call started for this replicate, if it was started with exactly these inputs."""
    call = session.eager.pop(replicate_id, None)
    if call is None:
        return None
    if (call.tool_name, call.seed, call.request, call.options) != (tool_name, seed, request,
                                                                    options):
        call.task.cancel()  # e.g. a planner or fallback changed the tool: call again
        return None
    return call


async def discard_eager_calls(session: Any) -> None:
    """Cancel calls no task run adopted (the flow failed early or ran another tool)."""
    calls = list(session.eager.values())
    session.eager.clear()
    for call in calls:
        call.task.cancel()
    if calls:
        await asyncio.gather(*(c.task for c in calls), return_exceptions=True)


async def _timed(call: Any) -> tuple[Any, float]:
    """The replicate's own duration, not how long its task run took to adopt it."""
    result = await call
    return result, time.perf_counter()


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
