"""Which tool runs: the planner's choice or the caller's, then fallbacks in order.

A fallback runs when the previous tool failed with a retryable error after its own retries,
or when its provider's circuit breaker is open; a non-retryable failure (bad request, bad key)
would fail the same way elsewhere, so it ends the chain. Every attempt is recorded.
"""

from __future__ import annotations

import time
from typing import Any

from prefect.utilities.annotations import quote
from steer_llm_sdk.flows.bundle import BundleScheduler, error_info
from steer_llm_sdk.flows.labels import label_flow_run
from steer_llm_sdk.flows.outputs import bundle_output, failed_output, tool_output
from steer_llm_sdk.tasks.plan import plan_tool
from steer_llm_sdk.tasks.runtime import RunSession
from steer_llm_sdk.tasks.tool import run_tool

from steer_llm_sdk.config import OrchestrationConfig
from steer_llm_sdk.errors import BudgetExceeded, CircuitOpenError, FallbackExhausted
from steer_llm_sdk.output import OrchestrationOutput
from steer_llm_sdk.reliability.breakers import get_breaker_registry
from steer_tools.base import Tool
from steer_tools.bundle import BundleTool
from steer_tools.resolve import resolve_tool


def open_breaker_error(tool: Tool, cfg: OrchestrationConfig) -> CircuitOpenError | None:
    """The error a run would get from the tool's provider breaker, when it is open."""
    if not cfg.enable_circuit_breaker or not tool.provider:
        return None
    registry = get_breaker_registry()
    if registry.effective_states().get(tool.provider) != "open":
        return None
    return CircuitOpenError(tool.provider, registry.seconds_until_half_open(tool.provider),
                            last_error=registry.last_error(tool.provider))


async def run_tool_once(session: RunSession, session_id: str, tool: Tool,
                        request: dict[str, Any], options: dict[str, Any],
                        cfg: OrchestrationConfig) -> OrchestrationOutput:
    session.tools[tool.name] = tool
    await session.emitter.emit("tool_started", tool_name=tool.name, version=tool.version)
    if isinstance(tool, BundleTool):
        started = time.monotonic()
        run = await BundleScheduler(session, session_id, tool, request, options, cfg).run()
        out = bundle_output(tool, run, cfg, (time.monotonic() - started) * 1000)
        await session.emitter.emit(
            "bundle_ready", tool_name=tool.name, status=out.status,
            confidence=run.bundle.summary.confidence, k_completed=run.bundle.meta.k_completed,
            early_stopped=run.bundle.meta.early_stopped,
        )
        return out
    started = time.monotonic()
    task = run_tool.with_options(**session.task_options(cfg))
    state = await task(session_id, tool.name, quote(request), quote(options), return_state=True)
    elapsed = (time.monotonic() - started) * 1000
    if state.is_completed():
        result, tool_ms = await state.result()
        session.budget.add(result.usage, result.cost_usd)
        return tool_output(tool, result, tool_ms)
    exc = await state.result(raise_on_failure=False)
    if isinstance(exc, BudgetExceeded):
        raise exc
    info = error_info(exc if isinstance(exc, BaseException) else RuntimeError(state.message))
    await session.emitter.emit("error", tool_name=tool.name, error=info)
    return failed_output(tool.name, info, elapsed)


def _should_fall_back(out: OrchestrationOutput, tool_name: str) -> bool:
    """Retryable failures, open breakers and rate limits (even a Retry-After too long to wait
    for) may succeed elsewhere; bad requests or bad keys would fail the same way."""
    errors = out.errors or {}
    infos = [e for name, e in errors.items()
             if name == tool_name or name.startswith(tool_name + ".")]
    return any(e.get("is_retryable") or e.get("category") in {"circuit_open", "rate_limit"}
               for e in infos)


def _combine_spend(final: OrchestrationOutput, earlier: list[OrchestrationOutput]) -> None:
    """What failed attempts spent is still spent: usage, cost and per_agent add up."""
    for out in earlier:
        for key, value in (out.usage or {}).items():
            final.usage[key] = final.usage.get(key, 0) + value
        final.cost_usd = round((final.cost_usd or 0.0) + (out.cost_usd or 0.0), 10)
        for name, agent in out.per_agent.items():
            final.per_agent.setdefault(name, agent)


async def _chain(session: RunSession, session_id: str, request: dict[str, Any],
                 tool_ref: str | None, options: dict[str, Any], cfg: OrchestrationConfig
                 ) -> tuple[list[str], dict[str, Any], Any]:
    """The ordered tool references to try, the options, and the plan (None when named)."""
    fallbacks = list(cfg.fallback_tools) + list(options.pop("fallback_tools", []) or [])
    decision = None
    if tool_ref is None:
        decision = await plan_tool(session, session_id, request, cfg, options)
        tool_ref = decision.selected_tool
        options = {**options, **decision.tool_options}
        fallbacks = [*fallbacks, *(t for t in decision.fallback_tools if t not in fallbacks)]
        await label_flow_run(tool_ref, cfg.trace_id or "")
    chain = [tool_ref, *(t for t in fallbacks if t != tool_ref)]
    if not (cfg.enable_fallback and session.reliability.enable_fallback):
        chain = chain[:1]
    limit = min(1 + session.reliability.max_fallback_attempts,
                session.reliability.max_total_attempts)
    return chain[:limit], options, decision


async def run_with_fallbacks(session: RunSession, session_id: str,
                             request: dict[str, Any], tool_ref: str | None,
                             options: dict[str, Any], cfg: OrchestrationConfig
                             ) -> OrchestrationOutput:
    chain, options, decision = await _chain(session, session_id, request, tool_ref,
                                            dict(options), cfg)
    attempts: list[dict[str, Any]] = []
    outputs: list[OrchestrationOutput] = []
    last: OrchestrationOutput | None = None
    for position, name in enumerate(chain):
        try:
            tool = resolve_tool(name, session.registry)
            tool.validate_request(request)
        except Exception as exc:
            if position == 0:
                raise
            attempts.append({"tool": name, "status": "rejected", "error": error_info(exc)})
            continue
        opened = open_breaker_error(tool, cfg)
        if opened is not None:
            attempts.append({"tool": name, "status": "skipped", "error": opened.to_dict()})
            last = failed_output(name, opened.to_dict(), 0.0)
            await session.emitter.emit("fallback", tool_name=name, reason="circuit_open")
            continue
        if position > 0:
            await session.emitter.emit("fallback", tool_name=name,
                                       previous=attempts[-1]["tool"] if attempts else None)
        last = await run_tool_once(session, session_id, tool, request, options, cfg)
        outputs.append(last)
        attempts.append({"tool": name, "status": last.status,
                         "error": next(iter((last.errors or {}).values()), None)
                         if last.status == "failed" else None})
        if last.status != "failed":
            last.metadata.update({"tool_name": tool.name, "tool_version": tool.version})
            break
        if not _should_fall_back(last, tool.name):
            break
    if last is None:  # every fallback was rejected and the primary was skipped
        last = failed_output(chain[0], attempts[0]["error"], 0.0)
    _combine_spend(last, [o for o in outputs if o is not last])
    last.metadata["attempts"] = attempts
    last.metadata["answered_by"] = attempts[-1]["tool"] if last.status != "failed" else None
    if decision is not None:
        last.metadata["plan"] = decision.model_dump(mode="json")
    if last.status == "failed":
        last.metadata.setdefault("tool_name", chain[0])
        failed = [a for a in attempts if a.get("error")]
        if len(failed) > 1:
            chained = FallbackExhausted(failed)
            last.errors = {**{a["tool"]: a["error"] for a in failed},
                           "fallback": chained.to_dict()}
            last.content = {"error": chained.to_dict()}
    return last
