"""What a run hands back when time or budget stops it: the replicates that finished.

``BudgetExceeded.partial_output`` is an ``OrchestrationOutput`` with status ``partial`` whose
bundle is computed (same statistics as a complete run) from the replicates that finished
before the stop: those the bundle scheduler collected, and eager first-wave answers no task
run had adopted yet (a run stopped while Prefect was still starting). Unfinished replicates
are listed in ``errors`` so nothing is silently dropped.
"""

from __future__ import annotations

import time
from typing import Any

from steer_llm_sdk.flows.bundle import BundleRun
from steer_llm_sdk.flows.outputs import apply_ledger, bundle_output
from steer_llm_sdk.tasks.replicate import to_replicate
from steer_llm_sdk.tasks.runtime import RunSession

from steer_llm_sdk.config import OrchestrationConfig
from steer_llm_sdk.errors import BudgetExceeded
from steer_llm_sdk.output import OrchestrationOutput
from steer_tools.assembly import assemble_bundle
from steer_tools.bundle import BundleTool
from steer_tools.evidence import Replicate

__all__ = ["attach_partial", "partial_output"]


def _finished_eager(session: RunSession, tool: BundleTool) -> dict[str, Replicate]:
    out: dict[str, Replicate] = {}
    for rid, call in session.eager.items():
        task = call.task
        if call.tool_name != tool.name or not task.done() or task.cancelled() or (
                task.exception() is not None):
            continue
        raw, finished = task.result()
        out[rid] = to_replicate(tool, rid, call.seed, raw, (finished - call.started) * 1000,
                                tool.parse_options(call.options))
    return out


def partial_output(session: RunSession, cfg: OrchestrationConfig,
                   stop: BudgetExceeded) -> OrchestrationOutput | None:
    """The output of what finished, or None when no bundle tool had started."""
    scheduler = session.scheduler
    tool = scheduler.tool if scheduler is not None else session.eager_tool
    if not isinstance(tool, BundleTool):
        return None
    results: dict[str, Replicate] = _finished_eager(session, tool)
    failures: dict[str, dict[str, Any]] = {}
    if scheduler is not None:
        results.update(scheduler.results)
        failures = dict(scheduler.failures)
    options = tool.parse_options(scheduler.raw_options if scheduler else next(
        iter(session.eager.values())).options)
    ordered = [results[f"r{i + 1}"] for i in range(options.k) if f"r{i + 1}" in results]
    elapsed_ms = (time.monotonic() - session.started) * 1000
    bundle = assemble_bundle(tool, ordered, options, elapsed_ms=elapsed_ms)
    out = bundle_output(tool, BundleRun(bundle, failures, []), cfg, elapsed_ms)
    out.status = "partial"
    missing = [f"r{i + 1}" for i in range(options.k) if f"r{i + 1}" not in results]
    errors = dict(out.errors or {})
    errors[f"{tool.name}.{stop.budget_type}"] = {
        **stop.to_dict(), "unfinished_replicates": missing}
    out.errors = errors
    out.metadata.update({"tool_name": tool.name, "tool_version": tool.version,
                         "trace_id": cfg.trace_id, "request_id": cfg.request_id,
                         "stopped_by": stop.budget_type})
    apply_ledger(out, session.ledger)
    return out


def attach_partial(stop: BudgetExceeded, session: RunSession,
                   cfg: OrchestrationConfig) -> BudgetExceeded:
    """Set ``stop.partial_output`` (unless already set) and return ``stop``."""
    if getattr(stop, "partial_output", None) is None:
        try:
            stop.partial_output = partial_output(session, cfg, stop)  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - the stop itself must still reach the caller
            stop.partial_output = None  # type: ignore[attr-defined]
    return stop
